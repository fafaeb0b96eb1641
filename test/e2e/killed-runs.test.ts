import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { encrypt } from '../../src/vault/index.js';
import { events, hostctl, repo, tempDir } from '../helpers/cli.js';
import { labImages } from '../../src/lab/images.js';
import { labSkip, useLab } from '../helpers/lab.js';

type Event = Record<string, unknown>;
const HOST = 'authentik';
const PASSWORD = 'lab-only-example-password';
const DRILL = 'SELECT count(*) FROM drill;\n';

// A run of the authentik playbook killed with SIGKILL (the controller dies: no handler, no
// cleanup) at the moment its JSON events say, and the next run, which must finish what the
// killed one began. On one lab target, in the order a user meets them.
describe('a killed run: the next run finishes what it began', { skip: labSkip, timeout: 1_800_000 }, () => {
  const t = useLab(12, [HOST]);
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let inventory = '';
  let labVars = '';

  before(async () => {
    dir = await tempDir('hostctl-killed-');
    inventory = join(dir.path, 'inventory');
    await cp(join(repo, 'inventory'), inventory, { recursive: true });
    labVars = join(dir.path, 'lab.yml');
    await writeFile(labVars, (await readFile(join(repo, 'lab', 'authentik.yml'), 'utf8')).replace(/_delay: \d+/g, '_delay: 1'));
    await labImages(t.lab, { authentikTags: ['2026.2.1'], brokenTags: ['2026.3.0'], postgresMajors: [17] });
  });
  after(async () => {
    await dir?.[Symbol.asyncDispose]();
  });

  const args = (extra: string[]) => [
    'run', join(repo, 'playbooks', 'authentik.ts'), '-i', inventory, '-i', t.lab.inventoryPath, '-e', `@${labVars}`,
    '--vault-password-file', join(repo, 'lab', 'vault-password'), '--json', ...extra,
  ];
  const run = (...extra: string[]) => hostctl(args(extra));
  // The CLI in a child process, SIGKILLed on the first event `at` accepts.
  const killedAt = async (at: (e: Event) => boolean, ...extra: string[]): Promise<Event[]> => {
    const child = execa('node', [join(repo, 'bin', 'hostctl.js'), ...args(extra)], { reject: false, cwd: repo, env: { NO_COLOR: '1' }, buffer: false });
    const seen: Event[] = [];
    for await (const line of createInterface({ input: child.stdout! })) {
      if (!line.trim()) continue;
      const e = JSON.parse(line) as Event;
      seen.push(e);
      if (at(e)) {
        child.kill('SIGKILL');
        break;
      }
    }
    const r = await child;
    assert.equal(r.signal, 'SIGKILL', `the run ended before the moment to kill it:\n${seen.map((e) => JSON.stringify(e)).join('\n').slice(-3000)}`);
    return seen;
  };
  // The killed run held at its wait for Postgres (paused) until it is dead: the kill lands
  // before the restarts that come after that wait, never by luck of timing.
  const postgresPaused = async <T>(body: () => Promise<T>): Promise<T> => {
    await sh('podman pause authentik-postgresql');
    try {
      return await body();
    } finally {
      await sh('podman unpause authentik-postgresql');
    }
  };
  const changed = (task: RegExp) => (e: Event) => e.type === 'task-end' && e.status === 'changed' && task.test(String(e.task));
  const sh = async (command: string, input?: string) => {
    const r = await t.sh(HOST, command, input === undefined ? {} : { input });
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const setVar = async (from: RegExp, to: string) => {
    const file = join(inventory, 'host_vars', HOST, 'vars.yml');
    const text = await readFile(file, 'utf8');
    await writeFile(file, from.test(text) ? text.replace(from, to) : `${text}${to}\n`);
  };
  const address = () => t.lab.targets.find((x) => x.name === HOST)!.address;
  const ready = async (port: number) => (await fetch(`http://${address()}:${port}/-/health/ready/`).catch(() => ({ status: 0 }))).status;
  const notes = (stdout: string) => (events(stdout).find((e) => e.type === 'host-end') as { notes: string[] }).notes;
  const ends = (stdout: string) => events(stdout).filter((e) => e.type === 'task-end') as Array<{ task: string; status: string; reason: string; role: string; handler?: boolean }>;
  const invocation = (unit: string) => sh(`systemctl show -p InvocationID --value ${unit}`);
  // A service task (titled by its unit) that restarted it; `would restart` in check mode.
  type End = ReturnType<typeof ends>[number];
  const restarted = (unit: string, role = 'authentik') => (e: End) => e.role === role && e.task === unit && e.status === 'changed' && /^(would )?restart$/.test(e.reason);
  const entries = () => sh('ls -A /var/lib/hostctl/journal | sort');

  it('deploys the stack; a converged run leaves no journal entry', async () => {
    const r = await run();
    assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    assert.equal(await ready(9000), 200);
    assert.equal(await sh('ls -A /var/lib/hostctl/journal 2>/dev/null | wc -l'), '0');
  });

  it('killed after the server unit changed, before its restart: the next run restarts it, the new port is live', async () => {
    await setVar(/^authentik_http_port: .*$/m, 'authentik_http_port: 9001');
    const server = await invocation('authentik-server.service');
    await postgresPaused(() => killedAt(changed(/^quadlet units/)));
    // The unit is written, the restart did not happen, and the journal says it is due.
    assert.match(await sh('grep PublishPort /etc/containers/systemd/authentik-server.container'), /9001/);
    assert.equal(await invocation('authentik-server.service'), server);
    assert.equal(await sh('stat -c "%a %U" /var/lib/hostctl /var/lib/hostctl/journal'), '700 root\n700 root');
    assert.match(await sh('cat /var/lib/hostctl/journal/*.json'), /"name":"restart authentik-server.service"/);

    const r = await run();
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    const journal = ends(r.stdout).find((e) => e.task === 'finish what an interrupted run left' && e.role === 'authentik');
    assert.match(journal?.reason ?? '', /restart authentik-server\.service/, r.stdout.slice(-3000));
    assert.ok(notes(r.stdout).some((n) => /^authentik: finishing what an interrupted run left: .*restart authentik-server\.service/.test(n)), notes(r.stdout).join('\n'));
    assert.ok(ends(r.stdout).some(restarted('authentik-server.service')), r.stdout.slice(-3000));
    assert.equal(await ready(9001), 200);
    assert.equal(await sh('ls -A /var/lib/hostctl/journal | wc -l'), '0');
  });

  it('killed after .env changed: the next run restarts server and worker, the new key is in the containers', async () => {
    const vaultFile = join(inventory, 'host_vars', HOST, 'vault.yml');
    const view = (await hostctl(['vault', 'view', '--vault-password-file', join(repo, 'lab', 'vault-password'), vaultFile])).stdout;
    const pg = /vault_authentik_pg_pass: (\S+)/.exec(view)![1]!;
    const key = 'rotated-secret-key-after-a-kill-0123456789';
    await writeFile(vaultFile, encrypt(`vault_authentik_pg_pass: ${pg}\nvault_authentik_secret_key: ${key}\n`, PASSWORD));
    await postgresPaused(() => killedAt(changed(/\.env$/)));
    const inContainer = (c: string) => sh(`podman exec ${c} printenv AUTHENTIK_SECRET_KEY`);
    assert.notEqual(await inContainer('authentik-server'), key);

    const r = await run();
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    for (const unit of ['authentik-server.service', 'authentik-worker.service']) {
      assert.ok(ends(r.stdout).some(restarted(unit)), `${unit}: ${r.stdout.slice(-3000)}`);
    }
    assert.equal(await inContainer('authentik-server'), key);
    assert.equal(await inContainer('authentik-worker'), key);
  });

  it('killed after a notified template changed: the next run runs the handler', async () => {
    await setVar(/^common_journal_max_use: .*$/m, 'common_journal_max_use: 150M');
    const journald = await invocation('systemd-journald.service');
    await killedAt(changed(/50-hostctl\.conf$/));
    assert.equal(await invocation('systemd-journald.service'), journald);

    // --check: the handler a killed run owes is a change to come; the journal stays as it was.
    const before = await entries();
    const check = await run('--check');
    assert.equal(check.code, 0, check.stdout.slice(-3000));
    assert.ok(ends(check.stdout).some((e) => e.handler === true && restarted('systemd-journald.service', 'common')(e)), check.stdout.slice(-3000));
    assert.ok(ends(check.stdout).some((e) => e.role === 'common' && e.task === 'finish what an interrupted run left' && e.status === 'changed'), check.stdout.slice(-3000));
    assert.equal(await entries(), before);
    assert.equal(await invocation('systemd-journald.service'), journald);

    const r = await run();
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    assert.ok(ends(r.stdout).some((e) => e.handler === true && restarted('systemd-journald.service', 'common')(e)), r.stdout.slice(-3000));
    assert.notEqual(await invocation('systemd-journald.service'), journald);
    assert.equal(await sh('ls -A /var/lib/hostctl/journal | wc -l'), '0');
    const again = await run();
    assert.ok(!ends(again.stdout).some((e) => e.handler), again.stdout.slice(-3000));
  });

  it('killed while waiting for a broken upgrade: the next run rolls back, restores the pre-upgrade dump, exit 2', async () => {
    const psql = (sql: string) => sh('podman exec -i authentik-postgresql psql -X -q -At -v ON_ERROR_STOP=1 -U authentik -d authentik', sql);
    await psql('CREATE TABLE drill (id int); INSERT INTO drill VALUES (1), (2);\n');
    await setVar(/^authentik_version: .*$/m, 'authentik_version: "2026.3.0"');
    await killedAt((e) => e.type === 'task-progress' && e.task === 'wait for authentik live', '-e', '{"authentik_ready_timeout": 30}');
    // What the broken version "migrated" after the dump: the rollback must take it out again.
    await psql('INSERT INTO drill VALUES (3);\n');
    assert.match(await sh('cat /var/lib/hostctl/journal/*.json'), /"name":"authentik upgrade".*"dump":"\/srv\/authentik\/backup\/authentik-\d{8}T\d{6}Z-pre-2026\.3\.0\.sql\.gz"/);
    assert.equal(await sh('stat -c "%a %U" /var/lib/hostctl/authentik-upgrade/.env'), '600 root');

    const r = await run('-e', '{"authentik_ready_timeout": 30}');
    assert.equal(r.code, 2, r.stdout.slice(-3000));
    const said = notes(r.stdout).join('\n');
    assert.match(said, /finishing what an interrupted run left: authentik upgrade/);
    assert.match(said, /finished an interrupted upgrade: rolled back to localhost\/lab-authentik:2026\.2\.1 \(ready again\); database restored from \/srv\/authentik\/backup\/authentik-\d{8}T\d{6}Z-pre-2026\.3\.0\.sql\.gz/);
    assert.ok(!ends(r.stdout).some((e) => /^dump database/.test(e.task)), 'no fresh dump of the migrated database');
    assert.equal(await ready(9001), 200);
    assert.equal(await psql(DRILL), '2');
    assert.match(await sh('grep -h ^Image= /etc/containers/systemd/authentik-server.container'), /2026\.2\.1$/);
    assert.equal(await sh('ls -A /var/lib/hostctl/journal | wc -l'), '0');
  });
});
