import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { encrypt } from '../../src/vault/index.js';
import { fixture, hostctl, tempDir } from '../helpers/cli.js';
import { labSkip, useLab } from '../helpers/lab.js';

// Made at run time: a literal would sit in this file's compiled copy in tsx's cache.
const CANARY = `canary-${randomBytes(9).toString('hex')}`;
const ROTATED = `canary-${randomBytes(9).toString('hex')}`;
// A vaulted number (YAML reads it as one): the blob's size, so the role's z.number() takes it.
const BLOB_SIZE = 1_000_000 + (randomBytes(3).readUIntBE(0, 3) % 1_000_000);

// A vault value used by a playbook with --diff, --json, -v and a deliberately failing task:
// it must appear in no output, in no process argument on the target while the runs go on,
// and in no file but its destination, on the target or the controller. A vaulted number and
// boolean feed the role's z.number() and z.boolean() and are masked the same way.
describe('no secret leaks', { skip: labSkip, timeout: 900_000 }, () => {
  const t = useLab(4, ['c1']);

  it('the canary shows up only in its destination file', async () => {
    await using d = await tempDir('hostctl-canary-');
    const inventory = join(d.path, 'inventory');
    await mkdir(join(inventory, 'host_vars', 'c1'), { recursive: true });
    const password = join(d.path, 'pw');
    await writeFile(password, 'canary vault password\n');
    const vaultFile = join(inventory, 'host_vars', 'c1', 'vault.yml');
    const writeVault = (value: string) =>
      writeFile(vaultFile, encrypt(`vault_demo_token: ${value}\nvault_demo_blob_size: ${BLOB_SIZE}\nvault_demo_fail: false\n`, 'canary vault password'));
    await writeVault(CANARY);
    await writeFile(
      join(inventory, 'host_vars', 'c1', 'vars.yml'),
      'demo_token: "{{ vault_demo_token }}"\ndemo_blob_size: "{{ vault_demo_blob_size }}"\ndemo_fail: "{{ vault_demo_fail }}"\n',
    );
    const run = (...args: string[]) =>
      hostctl(['run', fixture('e2e', 'playbook.ts'), '-i', t.lab.inventoryPath, '-i', inventory, '--vault-password-file', password, ...args]);

    // Watch every process's arguments on the target for the whole test.
    const watcher = execa('ssh', ['-i', t.lab.keyPath, '-o', `UserKnownHostsFile=${t.lab.knownHostsPath}`, '-o', 'StrictHostKeyChecking=yes', `root@${t.lab.targets[0]!.address}`, 'while :; do ps -eo args; sleep 0.02; done'], { reject: false, buffer: true, maxBuffer: 1e9 });

    const outputs: string[] = [];
    const keep = async (r: Promise<{ code: number; stdout: string; stderr: string }>, code: number) => {
      const x = await r;
      outputs.push(x.stdout, x.stderr);
      assert.equal(x.code, code, x.stdout.slice(-1500) + x.stderr);
      return x;
    };
    await keep(run('--diff', '--json'), 0);
    assert.equal((await t.sh('c1', 'cat /srv/demo/token; echo; stat -c %a /srv/demo/token')).stdout, `${CANARY}\n600`);
    assert.equal((await t.sh('c1', 'stat -c %s /srv/demo/blob')).stdout.trim(), String(BLOB_SIZE));
    await writeVault(ROTATED);
    const rotated = await keep(run('--diff', '-v', '--plain'), 0);
    assert.match(rotated.stdout, /file \/srv\/demo\/token \| changed/);
    assert.match(rotated.stdout, /^\s+-\*{8}\n\s+\\ No newline at end of file\n\s+\+\*{8}$/m);
    await keep(run('--diff', '--json', '-e', '{"demo_fail": true}'), 2);
    const failed = await keep(run('-v', '--plain', '-e', '{"demo_fail": true}'), 2);
    assert.match(failed.stdout, /fails on purpose \| failed .*it went wrong/s);
    const list = await keep(hostctl(['inventory', '-i', t.lab.inventoryPath, '-i', inventory, '--vault-password-file', password, '--list']), 0);
    const c1 = (JSON.parse(list.stdout) as { _meta: { hostvars: Record<string, Record<string, unknown>> } })._meta.hostvars.c1!;
    for (const key of ['vault_demo_blob_size', 'demo_blob_size', 'vault_demo_fail', 'demo_fail']) assert.equal(c1[key], '********', key);

    watcher.kill();
    const ps = String((await watcher).stdout);
    assert.ok(ps.includes('ps -eo args'), 'the watcher saw processes');
    for (const secret of [CANARY, ROTATED, String(BLOB_SIZE)]) {
      assert.ok(!ps.includes(secret), `${secret} in a process argument on the target`);
      outputs.forEach((o, i) => assert.ok(!o.includes(secret), `${secret} in output ${i}`));
      // Seven digits could be anywhere in a file system; the canaries cannot.
      if (secret === String(BLOB_SIZE)) continue;
      // Files on the target: everything but /proc, /sys and the intended destination.
      const found = await t.sh('c1', `grep -rlsF ${secret} / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=run/credentials | grep -vx /srv/demo/token; true`);
      assert.equal(found.stdout.trim(), '', `${secret} found on the target in: ${found.stdout}`);
      // Controller temp dirs, except the labs' target roots (searched above as the target).
      const local = await execa('sh', ['-c', `grep -rlsF ${secret} /tmp /var/tmp /dev/shm --exclude-dir='hostctl-e2e-*' --exclude-dir=devlab; true`]);
      assert.equal(local.stdout.trim(), '', `${secret} found on the controller in: ${local.stdout}`);
    }
  });
});
