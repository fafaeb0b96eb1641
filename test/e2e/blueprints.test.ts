import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, before } from 'node:test';
import { encrypt } from '../../src/vault/index.js';
import { events, hostctl, repo, tempDir } from '../helpers/cli.js';
import { labImages } from '../../src/lab/images.js';
import { labSkip, useLab } from '../helpers/lab.js';
import { validateBlueprint } from '../../roles/authentik/blueprint.js';

const PASSWORD = 'lab-only-example-password';
const CLIENT_SECRET = 'grafana-oidc-secret-lab-4f2a9c';
const TOKEN = 'lab-api-token-0b7e5d1c9a';
type Recap = { hosts: Record<string, { ok: number; changed: number; failed: number }> };
const recapOf = (stdout: string) => events(stdout).find((e) => e.type === 'recap') as unknown as Recap;

const apps = (withWiki: boolean) => `authentik_groups:
  family: {}
  proxmox_admins:
    parents: [family]
authentik_applications:
  copyparty:
    name: Copyparty
    protect: forward_single
    external_host: https://copyparty.home.example.org
    groups: [family]
  jellyfin:
    name: Jellyfin
    protect: forward_single
    external_host: https://jellyfin.home.example.org
${withWiki ? `  wiki:
    name: Wiki
    protect: forward_domain
    external_host: https://wiki.home.example.org
    cookie_domain: home.example.org
` : ''}  grafana:
    name: Grafana
    protect: oidc
    redirect_uris: [https://grafana.home.example.org/login/generic_oauth]
    client_id: grafana
    client_secret: "{{ vault_grafana_client_secret }}"
    groups: [proxmox_admins]
`;

// The authentik playbook with a declaration on a lab target: the blueprint the worker sees,
// its apply verified through the (stand-in's) API, a converged re-run, a removal.
describe('authentik as code: the blueprint', { skip: labSkip, timeout: 1_800_000 }, () => {
  const t = useLab(15, ['bp']);
  let inventory = '';
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    dir = await tempDir('hostctl-blueprints-');
    inventory = join(dir.path, 'inventory');
    await cp(join(repo, 'inventory'), inventory, { recursive: true });
    await writeFile(join(inventory, 'hosts.yml'), 'all:\n  children:\n    authentik:\n      hosts:\n        bp:\n');
    await cp(join(inventory, 'host_vars', 'authentik'), join(inventory, 'host_vars', 'bp'), { recursive: true });
    await writeFile(join(inventory, 'host_vars', 'bp', 'apps.yml'), apps(true));
    await writeFile(
      join(inventory, 'host_vars', 'bp', 'vault-apps.yml'),
      encrypt(`vault_grafana_client_secret: ${CLIENT_SECRET}\nauthentik_api_token: ${TOKEN}\n`, PASSWORD),
    );
    await labImages(t.lab, { authentikTags: ['2026.2.1'], postgresMajors: [17] });
  });

  const run = (...args: string[]) =>
    hostctl([
      'run', join(repo, 'playbooks', 'authentik.ts'), '-i', inventory, '-i', t.lab.inventoryPath, '-e', `@${join(repo, 'lab', 'authentik.yml')}`,
      '--vault-password-file', join(repo, 'lab', 'vault-password'), ...args,
    ]);
  // (t.sh trims its output: the hash is taken on the target.)
  const inWorker = async () => (await t.sh('bp', 'podman exec authentik-worker cat /blueprints/hostctl/hostctl.yaml')).stdout;
  const workerHash = async () => (await t.sh('bp', 'podman exec authentik-worker sha512sum /blueprints/hostctl/hostctl.yaml')).stdout.split(' ')[0];
  const notes = (stdout: string) => (events(stdout).find((e) => e.type === 'host-end') as { notes: string[] }).notes;
  const instance = async () => {
    const address = t.lab.targets.find((x) => x.name === 'bp')!.address;
    const r = await fetch(`http://${address}:9000/api/v3/managed/blueprints/?path=hostctl%2Fhostctl.yaml`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    return ((await r.json()) as { results: Array<{ status: string; last_applied_hash: string }> }).results[0]!;
  };

  it('writes a schema-valid blueprint the worker sees, keeps the secret in the 0600 .env, and verifies the apply', async () => {
    const r = await run('--json');
    assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    const text = await inWorker();
    validateBlueprint(text, '2026.2');
    assert.equal((text.match(/^ {6}mode: forward_(single|domain)$/gm) ?? []).length, 3);
    assert.match(text, /client_secret: !Env AUTHENTIK_HOSTCTL_CLIENT_SECRET_GRAFANA$/m);
    assert.ok(!text.includes(CLIENT_SECRET) && !r.stdout.includes(CLIENT_SECRET) && !r.stderr.includes(CLIENT_SECRET) && !r.stdout.includes(TOKEN));
    const env = await t.sh('bp', 'stat -c "%a %U" /srv/authentik/.env; grep -c -e "^AUTHENTIK_HOSTCTL_CLIENT_SECRET_GRAFANA=" -e "^AUTHENTIK_BOOTSTRAP_TOKEN=" /srv/authentik/.env; stat -c "%a %U" /srv/authentik/blueprints/hostctl.yaml');
    assert.equal(env.stdout, '600 root\n2\n644 root');
    assert.ok(notes(r.stdout).includes('blueprint hostctl/hostctl.yaml: applied by authentik (status successful, sha512 verified; schema 2026.2)'), notes(r.stdout).join('\n'));
    const now = await instance();
    assert.deepEqual([now.status, now.last_applied_hash], ['successful', await workerHash()]);
  });

  it('the stand-in\'s outpost (served by the image\'s ak) answers forward auth for the blueprint\'s hosts only', async () => {
    const ask = async (host: string) =>
      (await t.sh('bp', `curl -s -o /dev/null -w '%{http_code}' -H 'Host: ${host}' -H 'X-Original-URL: https://${host}/x' http://127.0.0.1:9000/outpost.goauthentik.io/auth/nginx`)).stdout;
    assert.equal(await ask('copyparty.home.example.org'), '401');
    // Not a proxy provider's host, nor under the forward_domain app's cookie domain.
    assert.equal(await ask('grafana.example.net'), '400');
  });

  it('a second run changes nothing, in one round trip', async () => {
    const r = await run('--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(recapOf(r.stdout).hosts.bp!.changed, 0, r.stdout.split('\n').filter((l) => l.includes('"changed"')).join('\n'));
    assert.equal((events(r.stdout).find((e) => e.type === 'host-end') as { roundTrips: number }).roundTrips, 1);
  });

  it('--check --diff shows the removal as state: absent and changes nothing; the real run removes and verifies', async () => {
    await writeFile(join(inventory, 'host_vars', 'bp', 'apps.yml'), apps(false));
    const before = await inWorker();
    const check = await run('--check', '--diff');
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /\+ {2}- model: authentik_core\.application\n {4}\+ {4}state: absent\n {4}\+ {4}identifiers:\n {4}\+ {6}slug: wiki/);
    assert.ok(!check.stdout.includes(CLIENT_SECRET));
    assert.equal(await inWorker(), before);

    const r = await run('--json');
    assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    const text = await inWorker();
    validateBlueprint(text, '2026.2');
    assert.match(text, /- model: authentik_providers_proxy\.proxyprovider\n {4}state: absent\n {4}identifiers:\n {6}name: hostctl-wiki/);
    assert.equal((await instance()).last_applied_hash, await workerHash());
    // Verified applied, the removals leave the file (the names are free again), then it is converged.
    const next = await run('--json');
    assert.equal(next.code, 0, next.stderr);
    assert.ok(!(await inWorker()).includes('state: absent'));
    const again = await run('--json');
    assert.equal(recapOf(again.stdout).hosts.bp!.changed, 0);
  });
});
