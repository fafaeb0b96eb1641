import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { loadInventory, type VaultDecoder } from '../../src/inventory/load.js';
import { selectHosts } from '../../src/inventory/patterns.js';
import type { HostctlError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/cli.js';

const noVault: VaultDecoder = { customTags: [], decryptFile: () => undefined, locate: () => {}, reveal: (v) => v, secretLeaves: (v) => v };

const INVENTORY = `all:
  hosts:
    app1: {}
    xapp2: {}
  children:
    web:
      hosts: {cobweb: {}, webbing: {}, weber: {}}
      children:
        webextra:
          hosts: {web9: {}}
    db:
      hosts: {db1: {}, db2: {}}
`;

// The hosts the real `ansible --list-hosts` selects, in its order.
async function ansibleHosts(inventory: string, pattern: string): Promise<string[]> {
  const r = await execa('ansible', ['-i', inventory, pattern, '--list-hosts'], { reject: false, env: { ANSIBLE_LOCALHOST_WARNING: 'false' } });
  return r.stdout.split('\n').slice(1).map((l) => l.trim()).filter(Boolean);
}

describe('host patterns', () => {
  it('select what the real ansible selects: groups, globs with classes, regexes, subscripts', async () => {
    await using d = await tempDir();
    const file = join(d.path, 'hosts.yml');
    await writeFile(file, INVENTORY);
    const inventory = await loadInventory([file], noVault);
    const patterns = [
      'web', 'web[0]', 'web[-1]', 'web[0:1]', 'web[1:]', 'web[2:0]', 'web[0-1]', 'web[9]', 'web[0:9]',
      'we[bx]', 'web[c-w]*', '[cd]*', 'db[1]', 'web:db[0]', 'web:!web[0]', 'web:&web[1:]',
      '~app\\d', '~x?app', 'app*', '*app*', 'all:!db',
    ];
    for (const pattern of patterns) {
      const theirs = await ansibleHosts(file, pattern);
      const ours = selectHosts(inventory, pattern);
      // hostctl runs hosts in inventory order; which hosts is what must agree.
      assert.deepEqual([...ours].sort(), [...theirs].sort(), pattern);
    }
  });

  it('a bad regex is an input error naming where the pattern came from', async () => {
    await using d = await tempDir();
    const file = join(d.path, 'hosts.yml');
    await writeFile(file, INVENTORY);
    const inventory = await loadInventory([file], noVault);
    assert.throws(() => selectHosts(inventory, '~(', '--limit'), (e: HostctlError) => e.kind === 'input' && e.where === '--limit');
  });
});
