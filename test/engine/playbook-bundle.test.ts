import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, rename, utimes, writeFile } from 'node:fs/promises';
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

    // An old bundle stays a while (a run started before may still load it), then goes.
    const cache = join(d.path, 'cache', 'hostctl', 'playbooks');
    const oldest = cached.find((n) => n.endsWith('.mjs'))!;
    assert.ok((await readdir(cache)).includes(oldest));
    const past = new Date(Date.now() - 11 * 60_000);
    await utimes(join(cache, oldest), past, past);
    await writeFile(join(d.path, 'roles', 'words.ts'), role('three'));
    assert.equal((await run(d.path)).code, 0);
    assert.equal(await readFile(join(d.path, 'out'), 'utf8'), 'three beside\n');
    const left = await readdir(cache);
    assert.ok(!left.includes(oldest), left.join(' '));
    assert.equal(left.filter((n) => n.endsWith('.mjs')).length, 2);
  });

  it('a package is loaded as node finds it, also after an upgrade moved its entry file', async () => {
    await using d = await tempDir();
    await setUp(d.path);
    const pkg = join(d.path, 'node_modules', 'greeting');
    await mkdir(pkg, { recursive: true });
    // A bundler's "module" build beside node's: node's must be the one that runs.
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'greeting', exports: { module: './bundler.js', default: './node.js' } }));
    await writeFile(join(pkg, 'node.js'), "export const word = 'node';\n");
    await writeFile(join(pkg, 'bundler.js'), "export const word = 'bundler';\n");
    await writeFile(join(d.path, 'roles', 'words.ts'), `import { word } from 'greeting';\n${role('${word}')}`.replace("'${word} '", '`${word} `'));
    assert.equal((await run(d.path)).code, 0);
    assert.equal(await readFile(join(d.path, 'out'), 'utf8'), 'node beside\n');

    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'greeting', version: '2.0.0', exports: { default: './lib/index.js' } }));
    await mkdir(join(pkg, 'lib'));
    await rename(join(pkg, 'node.js'), join(pkg, 'lib', 'index.js'));
    const upgraded = await run(d.path);
    assert.equal(upgraded.code, 0, upgraded.stdout + upgraded.stderr);
  });

  it('a bare import that reaches TypeScript in the repository (tsconfig paths) is bundled', async () => {
    await using d = await tempDir();
    await setUp(d.path);
    await writeFile(join(d.path, 'tsconfig.json'), JSON.stringify({ compilerOptions: { baseUrl: '.', paths: { '@shared/*': ['./shared/*'] } } }));
    await mkdir(join(d.path, 'shared'));
    await writeFile(join(d.path, 'shared', 'word.ts'), "export const word: string = 'shared';\n");
    await writeFile(join(d.path, 'roles', 'words.ts'), `import { word } from '@shared/word';\n${role('${word}')}`.replace("'${word} '", '`${word} `'));
    const r = await run(d.path);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await readFile(join(d.path, 'out'), 'utf8'), 'shared beside\n');
  });

  it('a cache folder others may write to is not used; the playbook still runs', async () => {
    await using d = await tempDir();
    await setUp(d.path);
    const cache = join(d.path, 'cache', 'hostctl', 'playbooks');
    await mkdir(cache, { recursive: true });
    await chmod(cache, 0o777);
    const r = await run(d.path);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await readFile(join(d.path, 'out'), 'utf8'), 'one beside\n');
    assert.deepEqual(await readdir(cache), []);
  });

  it('a bug in a role body is reported at its line in the role\'s file', async () => {
    await using d = await tempDir();
    await setUp(d.path);
    await writeFile(
      join(d.path, 'roles', 'words.ts'),
      `import { defineRole } from 'hostctl';\nconst none = undefined as unknown as { word: string };\nexport const words = defineRole({ name: 'words', async run() {\n  return none.word;\n} });\n`,
    );
    const r = await run(d.path);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /FAILED: Cannot read properties of undefined \(reading 'word'\) \(at \S*roles\/words\.ts:4:\d+\)$/m);
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
