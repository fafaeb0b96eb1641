import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Connection } from '../../src/transport/connection.js';
import { LocalChannel } from '../../src/transport/local.js';
import { tempDir } from '../helpers/cli.js';

// Connection.stat against what node itself reads of the same paths: names a shell or a
// separator could trip over, links (dangling too), a setuid file, a directory, absent paths.
describe('stat of many paths in one command', () => {
  it('reports exactly what lstat and sha256 say, in the order asked, whatever the names', async () => {
    await using dir = await tempDir('hostctl-stat-');
    const at = (name: string) => join(dir.path, name);
    const names = ['plain', 'with space', 'new\nline', 'back\\slash', '-dash', 'pipe|name', '  lead', 'S', 'ünï', 'empty'];
    for (const [i, name] of names.entries()) await writeFile(at(name), name === 'empty' ? '' : `content ${i} ${name}\n`);
    await chmod(at('plain'), 0o4755);
    await mkdir(at('sub dir'), { mode: 0o750 });
    await symlink(at('plain'), at('link'));
    await symlink(at('nowhere'), at('dangling'));
    const paths = [at('absent'), ...names.map(at), at('sub dir'), at('link'), at('dangling'), at('plain'), at('absent/deeper')];

    const conn = new Connection(new LocalChannel());
    await conn.open();
    try {
      const got = await conn.stat(paths);
      assert.equal(conn.roundTrips, 1);
      assert.deepEqual(got.map((s) => s.path), paths);
      for (const s of got) {
        const st = await lstat(s.path).catch(() => undefined);
        if (!st) {
          assert.deepEqual(s, { path: s.path, exists: false });
          continue;
        }
        assert.equal(s.exists, true, s.path);
        if (!s.exists) continue;
        assert.equal(s.type, st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'link' : 'file', s.path);
        assert.equal(s.mode, st.mode & 0o7777, s.path);
        assert.equal(s.size, st.size, s.path);
        assert.equal(s.sha256, st.isFile() ? createHash('sha256').update(await readFile(s.path)).digest('hex') : undefined, s.path);
        assert.equal(s.linkTarget, st.isSymbolicLink() ? await readlink(s.path) : undefined, s.path);
      }
    } finally {
      await conn.close();
    }
  });
});
