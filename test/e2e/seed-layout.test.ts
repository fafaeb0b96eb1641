import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { execa } from 'execa';
import { hostctl, repo, tempDir } from '../helpers/cli.js';
import { labImages } from '../../src/lab/images.js';
import { labSkip, useLab } from '../helpers/lab.js';

const PASSWORD_FILE = join(repo, 'lab', 'vault-password');

// The inventory as the Ansible job seeds it: vars.yml without any authentik_pg_pass /
// authentik_secret_key line, vault.yml with nothing but the vault_* names, encrypted by the
// real ansible-vault. The role's defaults refer to those names, as the Ansible role's do.
describe('the seed layout of the Ansible job', { skip: labSkip, timeout: 1_800_000 }, () => {
  const t = useLab(13, ['authentik']);
  let inventory = '';

  before(async () => {
    const dir = await tempDir('hostctl-seed-');
    inventory = join(dir.path, 'inventory');
    const hostVars = join(inventory, 'host_vars', 'authentik');
    await mkdir(hostVars, { recursive: true });
    await writeFile(join(inventory, 'hosts.yml'), 'all:\n  children:\n    authentik:\n      hosts:\n        authentik:\n');
    const key = (await readFile(join(repo, 'inventory', 'host_vars', 'authentik', 'vars.yml'), 'utf8')).match(/- (ssh-ed25519 .*)/)![1]!;
    await writeFile(join(hostVars, 'vars.yml'), `authentik_version: "2026.2.1"\nadmin_user: admin\nadmin_authorized_keys:\n  - ${key}\n`);
    const vault = join(hostVars, 'vault.yml');
    await writeFile(vault, 'vault_authentik_pg_pass: seed-layout-pg-password\nvault_authentik_secret_key: seed-layout-secret-key-0123456789abcdef\n');
    await execa('ansible-vault', ['encrypt', '--vault-password-file', PASSWORD_FILE, vault]);
    assert.match(await readFile(vault, 'utf8'), /^\$ANSIBLE_VAULT;1\.1;AES256\n/);
    await labImages(t.lab, { authentikTags: ['2026.2.1'], postgresMajors: [17] });
  });

  it('runs the authentik playbook unchanged: the vault_* values reach the stack', async () => {
    const r = await hostctl([
      'run', join(repo, 'playbooks', 'authentik.ts'), '-i', inventory, '-i', t.lab.inventoryPath, '-e', `@${join(repo, 'lab', 'authentik.yml')}`,
      '--vault-password-file', PASSWORD_FILE, '--plain',
    ]);
    assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    const address = t.lab.targets.find((x) => x.name === 'authentik')!.address;
    assert.equal((await fetch(`http://${address}:9000/-/health/ready/`)).status, 200);
    const env = await t.sh('authentik', 'grep -E "^(POSTGRES_PASSWORD|AUTHENTIK_SECRET_KEY)=" /srv/authentik/.env');
    assert.equal(env.stdout, 'POSTGRES_PASSWORD=seed-layout-pg-password\nAUTHENTIK_SECRET_KEY=seed-layout-secret-key-0123456789abcdef');
  });
});
