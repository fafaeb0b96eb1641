import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hostctl, tempDir } from '../helpers/cli.js';

// A playbook is bundled into one cached module (src/cli/bundle.ts): these are the ways a
// cache goes wrong, tried through the real CLI with its own cache directory.
describe('loading a TypeScript playbook', () => {
  const role = (word: string) => `import { readFileSync } from 'node:fs';
import { defineRole } from 'hostctl';
// Beside this file, found through its own import.meta.url, not the bundle's.
const extra = readFileSync(new URL('./extra.txt', import.meta.url), 'utf8');
export const words = defineRole({ name: 'words', async run(h) { await h.file({ path: process.env.OUT!, content: '${word} ' + extra }); } });
`;
  const setUp = async (dir: string) => {
    await mkdir(join(dir, 'roles'));
    await writeFile(join(dir, 'site.ts'), `import { definePlaybook } from 'hostctl';\nimport { words } from './roles/words.js';\nexport default definePlaybook({ name: 'site', hosts: 'all', roles: [words] });\n`);
    await writeFile(join(dir, 'roles', 'words.ts'), role('one'));
    await writeFile(join(dir, 'roles', 'extra.txt'), 'beside\n');
    await writeFile(join(dir, 'hosts.yml'), 'all:\n  hosts:\n    me:\n      ansible_connection: local\n');
  };
  const run = (dir: string) =>
    hostctl(['run', join(dir, 'site.ts'), '-i', join(dir, 'hosts.yml'), '--plain'], { env: { XDG_CACHE_HOME: join(dir, 'cache'), OUT: join(dir, 'out') } });

  it('an edited role is used on the next run, even at the same size; unchanged, the bundle is reused', async () => {
    await using d = await tempDir();
    await setUp(d.path);
    const first = await run(d.path);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.equal(await readFile(join(d.path, 'out'), 'utf8'), 'one beside\n');
    const cached = await readdir(join(d.path, 'cache', 'hostctl', 'playbooks'));

    assert.equal((await run(d.path)).code, 0);
    assert.deepEqual(await readdir(join(d.path, 'cache', 'hostctl', 'playbooks')), cached);

    await writeFile(join(d.path, 'roles', 'words.ts'), role('two'));
    const edited = await run(d.path);
    assert.equal(edited.code, 0, edited.stdout + edited.stderr);
    assert.equal(await readFile(join(d.path, 'out'), 'utf8'), 'two beside\n');
    // The old bundle is replaced, not kept beside the new one.
    assert.equal((await readdir(join(d.path, 'cache', 'hostctl', 'playbooks'))).length, cached.length);
  });

  it('a syntax error names the file, line and column; exit code 5', async () => {
    await using d = await tempDir();
    await setUp(d.path);
    await writeFile(join(d.path, 'roles', 'words.ts'), `${role('one')}\nexport const broken = (;\n`);
    const r = await run(d.path);
    assert.equal(r.code, 5);
    assert.match(r.stdout + r.stderr, /playbook .*site\.ts cannot be loaded: .*roles\/words\.ts:7:\d+: /);
  });

  it('a package the playbook imports that is not installed is named', async () => {
    await using d = await tempDir();
    await setUp(d.path);
    await writeFile(join(d.path, 'roles', 'words.ts'), `import 'no-such-package-here';\n${role('one')}`);
    const r = await run(d.path);
    assert.equal(r.code, 5);
    assert.match(r.stdout + r.stderr, /roles\/words\.ts:1:\d+: Could not resolve "no-such-package-here"/);
  });
});
