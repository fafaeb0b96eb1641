import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { definePlaybook } from '../../src/engine/playbook.js';
import { prepare } from '../../src/engine/prepare.js';
import { loadInventory } from '../../src/inventory/load.js';
import { vaultDecoder } from '../../src/inventory/vault.js';
import { Keyring } from '../../src/vault/index.js';
import { events, fixture, hostctl, tempDir } from '../helpers/cli.js';

const playbook = fixture('shard', 'playbook.ts');

// An inventory of local hosts web01..webNN (and db01..dbMM in group db).
async function inventory(dir: string, file: string, web: number, db = 0): Promise<string> {
  const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(2, '0')}`);
  const hosts = (ns: string[]) => ns.map((n) => `        ${n}: { ansible_connection: local }`).join('\n');
  const text = `all:\n  children:\n    web:\n      hosts:\n${hosts(names('web', web))}\n${db ? `    db:\n      hosts:\n${hosts(names('db', db))}\n` : ''}`;
  const path = join(dir, file);
  await writeFile(path, text);
  return path;
}

const selected = async (path: string, limit: string | undefined, shard?: { index: number; count: number }) =>
  (await prepare(definePlaybook({ name: 'shard', hosts: 'all', roles: [] }), await loadInventory([path], vaultDecoder(new Keyring())), { limit, shard })).map((p) => p.name);

// The hosts a real CLI run selected, from its run-start event.
async function cliHosts(path: string, ...args: string[]): Promise<string[]> {
  const r = await hostctl(['run', playbook, '-i', path, '--json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return events(r.stdout).find((e) => e.type === 'run-start')!.hosts as string[];
}

describe('--shard I/N', () => {
  it('splits the selection into N disjoint parts whose union is the selection, for any N', async () => {
    await using d = await tempDir();
    const path = await inventory(d.path, 'hosts.yml', 60, 20);
    for (const limit of [undefined, 'web']) {
      const all = await selected(path, limit);
      for (const count of [1, 2, 3, 7]) {
        const parts = [];
        for (let index = 1; index <= count; index++) parts.push(await selected(path, limit, { index, count }));
        const union = parts.flat();
        assert.equal(union.length, all.length, `N=${count}: a host in two shards or in none`);
        assert.deepEqual(new Set(union), new Set(all));
        // Every part has a share of a fleet this size (a hash that sent all to one would pass the rest).
        if (count > 1) for (const p of parts) assert.ok(p.length >= all.length / count / 3, `N=${count}: part sizes ${parts.map((x) => x.length)}`);
      }
    }
  });

  it("a host's shard depends on its name only: the same across runs and when the inventory grows", async () => {
    await using d = await tempDir();
    const small = await inventory(d.path, 'small.yml', 30);
    const grown = await inventory(d.path, 'grown.yml', 45, 15);
    // Two separate processes on each inventory: nothing per-process (a seed, an order) leaks in.
    const a = await cliHosts(small, '--shard', '2/3');
    assert.deepEqual(await cliHosts(small, '--shard', '2/3'), a);
    const b = await cliHosts(grown, '--shard', '2/3');
    assert.deepEqual(b.filter((h) => /^web(0\d|[12]\d|30)$/.test(h)), a, 'the hosts of the small inventory keep their shard');
    // And the CLI's part is the same as the library's.
    assert.deepEqual(a, await selected(small, undefined, { index: 2, count: 3 }));
  });

  it('a shard that draws no host of a small fleet is a run with nothing to do (exit 0)', async () => {
    await using d = await tempDir();
    const path = await inventory(d.path, 'hosts.yml', 2);
    const parts = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((index) => selected(path, undefined, { index, count: 8 })));
    const empty = parts.findIndex((p) => p.length === 0) + 1;
    assert.ok(empty > 0);
    assert.deepEqual(await cliHosts(path, '--shard', `${empty}/8`), []);
  });

  it('bad values exit 5 naming --shard, before any host is touched', async () => {
    await using d = await tempDir();
    const path = await inventory(d.path, 'hosts.yml', 3);
    for (const bad of ['0/3', '4/3', 'x', '1/0', '2', '1/2/3', '-1/3', '1.5/3']) {
      const r = await hostctl(['run', playbook, '-i', path, '--json', '--shard', bad]);
      assert.equal(r.code, 5, `--shard ${bad}: ${r.stderr}`);
      assert.match(r.stderr, /--shard/);
      assert.equal(r.stdout, '', `--shard ${bad} started a run`);
    }
  });
});
