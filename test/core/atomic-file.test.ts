import assert from 'node:assert/strict';
import { chmod, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileAtomic } from '../../src/core/atomic-file.js';
import { tempDir } from '../helpers/cli.js';

// The one local "whole or not at all" write (vault files, backup copies, the playbook cache).
describe('writeFileAtomic', () => {
  it('writers racing on one file each succeed, and the file is one of them whole, with no temp left', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'set.sql.gz');
    const contents = Array.from({ length: 16 }, (_, i) => Buffer.alloc(256 * 1024, i + 1));
    await Promise.all(contents.map((c) => writeFileAtomic(path, c)));
    const final = await readFile(path);
    assert.ok(contents.some((c) => c.equals(final)), 'the file is one writer\'s content, whole');
    assert.deepEqual(await readdir(d.path), ['set.sql.gz']);
  });

  it('a new file is 0600; an existing one keeps its mode', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'f');
    await writeFileAtomic(path, 'a');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    await chmod(path, 0o640);
    await writeFileAtomic(path, 'c');
    assert.equal((await stat(path)).mode & 0o777, 0o640);
    assert.equal(await readFile(path, 'utf8'), 'c');
  });
});
