import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { events, fixture, hostctl } from '../helpers/cli.js';
import { labSkip, useLab } from '../helpers/lab.js';

const names = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'];

describe('fan-out over six lab targets', { skip: labSkip, timeout: 900_000 }, () => {
  const t = useLab(3, names);

  it('--forks bounds the hosts at once; every host converges; the re-run changes nothing', async () => {
    const first = await hostctl(['run', fixture('e2e', 'playbook.ts'), '-i', t.lab.inventoryPath, '--forks', '3', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const all = events(first.stdout);
    // Never more than 3 hosts between host-start and host-end.
    let open = 0;
    let most = 0;
    for (const e of all) {
      if (e.type === 'host-start') most = Math.max(most, ++open);
      if (e.type === 'host-end') open -= 1;
    }
    assert.equal(most, 3);
    const recap = all.at(-1) as { hosts: Record<string, { changed: number; failed: number }> };
    assert.deepEqual(Object.keys(recap.hosts), names);
    for (const n of names) assert.ok(recap.hosts[n]!.changed > 0 && recap.hosts[n]!.failed === 0, n);

    const second = await hostctl(['run', fixture('e2e', 'playbook.ts'), '-i', t.lab.inventoryPath, '--forks', '6', '--json']);
    assert.equal(second.code, 0, second.stderr);
    const again = events(second.stdout).at(-1) as { hosts: Record<string, { changed: number }> };
    for (const n of names) assert.equal(again.hosts[n]!.changed, 0, n);
  });
});
