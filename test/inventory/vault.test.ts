import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { definePlaybook } from '../../src/engine/playbook.js';
import { prepare } from '../../src/engine/prepare.js';
import { defineRole } from '../../src/engine/role.js';
import { secret } from '../../src/core/schema.js';
import { isSecret } from '../../src/core/secret.js';
import { connectionFromVars } from '../../src/inventory/connection-vars.js';
import { loadInventory } from '../../src/inventory/load.js';
import { resolveHostVars } from '../../src/inventory/vars.js';
import { vaultDecoder } from '../../src/inventory/vault.js';
import { Keyring, encrypt } from '../../src/vault/index.js';
import { z } from 'zod';
import { hostctl, tempDir } from '../helpers/cli.js';

const CANARY = 'canary-Zq8xW3vT-secret';
// Vaulted values that YAML reads as a number and a boolean.
const PIN = '98765432';

// An inventory as Ansible users keep it: a vault-encrypted vault.yml beside vars.yml that
// refers to it, plus an inline !vault value, all encrypted by the real ansible-vault.
async function vaultedInventory(dir: string): Promise<{ inventory: string; password: string }> {
  const inventory = join(dir, 'inventory');
  const hv = join(inventory, 'host_vars', 'box');
  await mkdir(hv, { recursive: true });
  const password = join(dir, 'pw');
  await writeFile(password, 'correct horse\n');
  await writeFile(join(inventory, 'hosts.yml'), 'all:\n  hosts:\n    box:\n      ansible_connection: local\n');
  await writeFile(join(hv, 'vault.yml'), `vault_db_pass: ${CANARY}\nvault_pin: ${PIN}\nvault_debug: true\n`);
  await execa('ansible-vault', ['encrypt', '--vault-password-file', password, join(hv, 'vault.yml')]);
  const inline = await execa('ansible-vault', ['encrypt_string', '--vault-password-file', password, '--stdin-name', 'api_token'], { input: 'inline-token-value' });
  await writeFile(join(hv, 'vars.yml'), `db_pass: "{{ vault_db_pass }}"\ndb_user: app\napp_pin: "{{ vault_pin }}"\n${inline.stdout}\n`);
  return { inventory, password };
}

describe('vault values in the inventory', () => {
  it('decrypt at load and print masked in hostctl inventory', async () => {
    await using d = await tempDir();
    const { inventory, password } = await vaultedInventory(d.path);
    const r = await hostctl(['inventory', '-i', inventory, '--host', 'box', '--vault-password-file', password]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      ansible_connection: 'local',
      api_token: '********',
      app_pin: '********',
      db_pass: '********',
      db_user: 'app',
      vault_db_pass: '********',
      vault_debug: '********',
      vault_pin: '********',
    });
    const list = await hostctl(['inventory', '-i', inventory, '--list', '--vault-password-file', password]);
    assert.equal(list.code, 0, list.stderr);
    const box = (JSON.parse(list.stdout) as { _meta: { hostvars: Record<string, Record<string, unknown>> } })._meta.hostvars.box!;
    for (const key of ['vault_pin', 'app_pin', 'vault_debug']) assert.equal(box[key], '********', key);
    for (const out of [r.stdout, list.stdout]) assert.ok(!out.includes(PIN) && !/\btrue\b/.test(out), out);
  });

  it('a vaulted number and boolean validate as z.number() and z.boolean(); secret() keeps the Secret', async () => {
    await using d = await tempDir();
    const { inventory } = await vaultedInventory(d.path);
    const role = defineRole({
      name: 'typed',
      vars: z.object({ app_pin: z.number().int(), vault_debug: z.boolean(), vault_pin: secret(), db_pass: secret() }),
      run: async () => {},
    });
    const loaded = await loadInventory([inventory], vaultDecoder(Keyring.of('correct horse')));
    const [plan] = await prepare(definePlaybook({ name: 'typed', hosts: 'all', roles: [role] }), loaded);
    const vars = plan!.roles[0]!.vars;
    assert.equal(vars.app_pin, Number(PIN));
    assert.equal(vars.vault_debug, true);
    assert.ok(isSecret(vars.vault_pin) && vars.vault_pin.reveal() === PIN);
    assert.ok(isSecret(vars.db_pass) && vars.db_pass.reveal() === CANARY);
  });

  it('a vaulted ansible_port and ansible_become still set up the connection', async () => {
    await using d = await tempDir();
    const hv = join(d.path, 'host_vars', 'box');
    await mkdir(hv, { recursive: true });
    await writeFile(join(d.path, 'hosts.yml'), 'all:\n  hosts:\n    box:\n');
    await writeFile(join(hv, 'vault.yml'), encrypt('ansible_port: 2222\nansible_become: yes\n', 'pw'));
    const loaded = await loadInventory([join(d.path, 'hosts.yml')], vaultDecoder(Keyring.of('pw')));
    const connection = connectionFromVars('box', resolveHostVars(loaded, 'box'));
    assert.equal(connection.port, 2222);
    assert.equal(connection.become?.user, 'root');
  });

  it('without a password: refused, naming the file; with a wrong one: says the password does not match', async () => {
    await using d = await tempDir();
    const { inventory } = await vaultedInventory(d.path);
    const none = await hostctl(['inventory', '-i', inventory, '--list']);
    assert.equal(none.code, 5);
    // Files load in name order: vars.yml comes first, and its inline value is named by key.
    assert.match(none.stderr, /host_vars\/box\/vars\.yml: api_token: vault-encrypted, but no vault password was given\n  hint: pass --vault-password-file/);
    const wrong = join(d.path, 'wrong');
    await writeFile(wrong, 'nope\n');
    const bad = await hostctl(['inventory', '-i', inventory, '--list', '--vault-password-file', wrong]);
    assert.equal(bad.code, 5);
    assert.match(bad.stderr, /vars\.yml: api_token: the vault password does not match: tried vault id "default"/);
  });

  it('HOSTCTL_VAULT_PASSWORD_FILE and ANSIBLE_VAULT_PASSWORD_FILE are read', async () => {
    await using d = await tempDir();
    const { inventory, password } = await vaultedInventory(d.path);
    for (const name of ['HOSTCTL_VAULT_PASSWORD_FILE', 'ANSIBLE_VAULT_PASSWORD_FILE']) {
      const r = await hostctl(['inventory', '-i', inventory, '--host', 'box'], { env: { NO_COLOR: '1', [name]: password } });
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    }
  });
});
