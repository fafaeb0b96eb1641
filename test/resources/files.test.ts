import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, chown, lchown, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Secret } from '../../src/core/secret.js';
import type { Tasks } from '../../src/engine/tasks.js';
import { LocalChannel } from '../../src/transport/local.js';
import type { RunOptions } from '../../src/transport/transport.js';
import { renderFolder } from '../../src/resources/template.js';
import { apply, statuses } from '../helpers/apply.js';
import { fixture, tempDir } from '../helpers/cli.js';

const mode = async (p: string) => (await stat(p)).mode & 0o7777;

describe('file', () => {
  it('creates, then is ok; check mode reports without writing; diff is unified', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'a.conf');
    // 0644: a file others may read is diffed in clear (a private one is masked, see below).
    const write = (content: string, check = false) => apply((h) => h.file({ path, content, mode: '0644' }), { check });

    const checked = await write('one\ntwo\n', true);
    assert.deepEqual(statuses(checked), ['changed']);
    assert.match(checked.ends[0]!.reason, /^would create/);
    await assert.rejects(stat(path));

    assert.deepEqual(statuses(await write('one\ntwo\n')), ['changed']);
    assert.equal(await readFile(path, 'utf8'), 'one\ntwo\n');
    assert.equal(await mode(path), 0o644);
    assert.deepEqual(statuses(await write('one\ntwo\n')), ['ok']);

    const changed = await write('one\nthree\n');
    assert.deepEqual(statuses(changed), ['changed']);
    assert.match(changed.ends[0]!.diff!, /^--- .*a\.conf \(before\)\n\+\+\+ .*a\.conf \(after\)\n@@ -1,2 \+1,2 @@\n one\n-two\n\+three$/);
  });

  it('fixes mode and owner in place, without rewriting the content', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'b');
    await writeFile(path, 'same\n');
    await chmod(path, 0o666);
    const r = await apply((h) => h.file({ path, content: 'same\n', mode: 0o600, owner: 'root', group: 'root' }));
    assert.deepEqual(statuses(r), ['changed']);
    assert.equal(r.ends[0]!.reason, 'set mode 0600');
    assert.match(r.ends[0]!.diff!, /mode 0666 -> 0600/);
    assert.equal(await mode(path), 0o600);
  });

  it('writes atomically: a 0600 file is never readable by others, and no temp file is left', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'secret.env');
    await writeFile(path, 'OLD=1\n', { mode: 0o600 });
    // Watch the directory while the write happens: every entry ever seen must be 0600.
    const seen: number[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const name of await readdir(d.path)) seen.push(await mode(join(d.path, name)).catch(() => 0o600));
        await new Promise((r) => setImmediate(r));
      }
    })();
    const r = await apply((h) => h.file({ path, content: 'NEW=2\n'.repeat(50_000), mode: '0600' }));
    watching = false;
    await watcher;
    assert.deepEqual(statuses(r), ['changed']);
    assert.ok(seen.length > 0 && seen.every((m) => (m & 0o077) === 0), `modes seen: ${[...new Set(seen)].map((m) => m.toString(8))}`);
    assert.deepEqual(await readdir(d.path), ['secret.env']);
  });

  it('validate runs on the temp file and keeps the old file when it fails', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'c.conf');
    await writeFile(path, 'good\n');
    const r = await apply((h) => h.file({ path, content: 'bad\n', validate: 'grep -q good %s' }));
    assert.deepEqual(statuses(r), ['failed']);
    assert.match(r.ends[0]!.reason, /validation failed: grep -q good %s/);
    assert.equal(await readFile(path, 'utf8'), 'good\n');
    assert.deepEqual(await readdir(d.path), ['c.conf']);
    assert.deepEqual(statuses(await apply((h) => h.file({ path, content: 'good too\n', validate: 'grep -q good %s' }))), ['changed']);
    assert.equal(await readFile(path, 'utf8'), 'good too\n');
    // A validate command that ends with `exit` still lets the write finish.
    assert.deepEqual(statuses(await apply((h) => h.file({ path, content: 'good three\n', validate: 'grep -q good %s; exit $?' }))), ['changed']);
    assert.equal(await readFile(path, 'utf8'), 'good three\n');
  });

  it('absent removes, then is ok', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'gone');
    await writeFile(path, 'x');
    assert.deepEqual(statuses(await apply((h) => h.file({ path, state: 'absent' }))), ['changed']);
    assert.deepEqual(statuses(await apply((h) => h.file({ path, state: 'absent' }))), ['ok']);
  });

  it('bad input fails clearly: a directory in the way, a bad mode, both content and source', async () => {
    await using d = await tempDir();
    await mkdir(join(d.path, 'dir'));
    const inTheWay = await apply((h) => h.file({ path: join(d.path, 'dir'), content: 'x' }));
    assert.match(inTheWay.ends[0]!.reason, /is a directory, not a file/);
    const badMode = await apply((h) => h.file({ path: join(d.path, 'm'), content: 'x', mode: '999' }));
    assert.match(badMode.ends[0]!.reason, /mode "999" is not an octal mode/);
    const both = await apply((h) => h.file({ path: join(d.path, 'b'), content: 'x', source: '/etc/hostname' }));
    assert.match(both.ends[0]!.reason, /give content or source, not both/);
    assert.equal(inTheWay.code, 2);
  });

  it('a diff of a file holding secrets keeps the keys and masks every value, old ones too', async () => {
    await using d = await tempDir();
    const path = join(d.path, '.env');
    await writeFile(path, 'USER=app\nPASSWORD=old-password-value\n');
    const secret = new Secret('new-password-value', 'test');
    const r = await apply((h) => h.file({ path, content: `USER=app\nPASSWORD=${secret.reveal()}\n`, mode: '0600' }));
    const diff = r.ends[0]!.diff!;
    assert.match(diff, /-PASSWORD=\*{8}\n\+PASSWORD=\*{8}/);
    assert.ok(!diff.includes('old-password-value') && !diff.includes('new-password-value'));
    assert.equal(await readFile(path, 'utf8'), 'USER=app\nPASSWORD=new-password-value\n');
  });
  it('a diff of a private file masks every value, even an old secret hostctl does not know', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'app.conf');
    // The old token was rotated away: no known secret matches it, only the mode says it is private.
    await writeFile(path, 'user = app\ntoken = rotated-away-token-3f9a\n', { mode: 0o600 });
    const r = await apply((h) => h.file({ path, content: 'user = app\ntoken = new-token-value\n', mode: '0600' }));
    const diff = r.ends[0]!.diff!;
    assert.match(diff, /-token = \*{8}\n\+token = \*{8}/);
    assert.ok(!diff.includes('rotated-away-token-3f9a') && !diff.includes('new-token-value'), diff);
    // `sensitive: false` is the way to show a private file's diff (public keys, say).
    const shown = await apply((h) => h.file({ path, content: 'user = app\n', mode: '0600', sensitive: false }));
    assert.match(shown.ends[0]!.diff!, /-token = new-token-value/);
  });

  it('a readable file whose text holds a short secret inside a URL path is diffed masked, old value too', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'client.conf');
    new Secret('ab12', 'test: api key');
    await writeFile(path, 'url = https://h/api/old-key-9d2c/x\n', { mode: 0o644 });
    const r = await apply((h) => h.file({ path, content: 'url = https://h/api/ab12/x\n', mode: '0644' }));
    const diff = r.ends[0]!.diff!;
    assert.match(diff, /-url = \*{8}\n\+url = \*{8}/);
    assert.ok(!diff.includes('old-key-9d2c') && !diff.includes('ab12'), diff);
  });

  it('setuid and setgid survive an owner: mode 4755/2755 end as asked, the next run is ok', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'tool');
    const write = (m: string) => apply((h) => h.file({ path, content: '#!/bin/sh\n', mode: m, owner: 'root', group: 'root' }));
    assert.deepEqual(statuses(await write('4755')), ['changed']);
    assert.equal(await mode(path), 0o4755);
    assert.deepEqual(statuses(await write('4755')), ['ok']);
    // The in-place fix (content already right) too.
    await chmod(path, 0o755);
    assert.deepEqual(statuses(await write('2755')), ['changed']);
    assert.equal(await mode(path), 0o2755);
    assert.deepEqual(statuses(await write('2755')), ['ok']);
  });

  it('refuses to write, chmod or remove under a directory another user owns or may write', async () => {
    await using d = await tempDir();
    const theirs = join(d.path, 'theirs');
    await mkdir(theirs);
    await chown(theirs, 65534, 65534);
    await writeFile(join(theirs, 'present'), 'x\n');
    const linked = join(d.path, 'linked');
    await symlink(theirs, linked);
    await lchown(linked, 65534, 65534);
    const shared = join(d.path, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o1777);
    const cases: Array<[string, (h: Tasks) => Promise<unknown>, RegExp]> = [
      ['write', (h) => h.file({ path: join(theirs, 'new'), content: 'x\n' }), /refusing to write under .*\/theirs: .*\/theirs is owned by nobody \(mode 755\), not by root/],
      ['chmod', (h) => h.file({ path: join(theirs, 'present'), mode: '0600' }), /is owned by nobody/],
      ['remove', (h) => h.file({ path: join(theirs, 'present'), state: 'absent' }), /is owned by nobody/],
      ['mkdir', (h) => h.directory({ path: join(theirs, 'sub', 'dir') }), /is owned by nobody/],
      ['a link another user owns', (h) => h.file({ path: join(linked, 'new'), content: 'x\n' }), /\/linked is a symbolic link owned by nobody/],
      ['a sticky directory', (h) => h.file({ path: join(shared, 'f'), content: 'x\n' }), /\/shared \(owner root, mode 1777\) is writable by other users/],
    ];
    for (const [what, body, reason] of cases) {
      const r = await apply(body);
      assert.deepEqual(statuses(r), ['failed'], what);
      assert.match(r.ends[0]!.reason, reason, what);
    }
    assert.deepEqual((await readdir(theirs)).sort(), ['present']);
    assert.equal(await mode(join(theirs, 'present')), 0o644);
    assert.deepEqual(await readdir(shared), []);
    // Root-owned links on the way are fine: only what a user other than root controls is refused.
    const viaRootLink = join(d.path, 'via');
    await mkdir(join(d.path, 'real'));
    await symlink(join(d.path, 'real'), viaRootLink);
    assert.deepEqual(statuses(await apply((h) => h.file({ path: join(viaRootLink, 'f'), content: 'x\n' }))), ['changed']);
    assert.equal(await readFile(join(d.path, 'real', 'f'), 'utf8'), 'x\n');
  });

  it('a root-owned link in a sticky directory is not followed (a user may have moved it there)', async () => {
    await using d = await tempDir();
    const shared = join(d.path, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o1777);
    await mkdir(join(d.path, 'target'));
    // Root made the link elsewhere; a user renamed it into the sticky directory.
    await symlink(join(d.path, 'target'), join(shared, 'x'));
    const r = await apply((h) => h.file({ path: join(shared, 'x', 'f'), content: 'x\n' }));
    assert.deepEqual(statuses(r), ['failed']);
    assert.match(r.ends[0]!.reason, /\/shared \(owner root, mode 1777\) is writable by other users/);
    assert.deepEqual(await readdir(join(d.path, 'target')), []);
  });

  it('a path component "-" is a directory of that name, not the previous directory', async () => {
    await using d = await tempDir();
    const made = await apply((h) => h.directory({ path: join(d.path, 's1', '-') }).then(() => h.file({ path: join(d.path, 's1', '-', 'x'), content: 'x\n' })));
    assert.deepEqual(statuses(made), ['changed', 'changed']);
    assert.equal(await readFile(join(d.path, 's1', '-', 'x'), 'utf8'), 'x\n');
    assert.deepEqual((await readdir(join(d.path, 's1'))).sort(), ['-']);
  });

  it('the upload checksum travels on stdin: no hash of the content is in any command line', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'token');
    const content = 'short-pw\n';
    const sha = createHash('sha256').update(content).digest('hex');
    const commands: string[] = [];
    // The real local channel; only the command lines it is given are kept.
    class Recording extends LocalChannel {
      override run(command: string, options?: RunOptions) {
        commands.push(command);
        return super.run(command, options);
      }
    }
    assert.deepEqual(statuses(await apply((h) => h.file({ path, content, mode: '0600' }), { channel: () => new Recording() })), ['changed']);
    assert.equal(await readFile(path, 'utf8'), content);
    assert.ok(commands.length > 0 && commands.every((c) => !c.includes(sha)), 'a command line holds the sha256 of the content');
  });
});

describe('directory', () => {
  it('creates with mode, then ok, fixes mode, removes', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'x/y');
    assert.deepEqual(statuses(await apply((h) => h.directory({ path, mode: '0750' }), { check: true })), ['changed']);
    await assert.rejects(stat(path));
    assert.deepEqual(statuses(await apply((h) => h.directory({ path, mode: '0750' }))), ['changed']);
    assert.equal(await mode(path), 0o750);
    assert.deepEqual(statuses(await apply((h) => h.directory({ path, mode: '0750' }))), ['ok']);
    const fix = await apply((h) => h.directory({ path, mode: '0700' }));
    assert.equal(fix.ends[0]!.diff, `${path}: mode 0750 -> 0700`);
    assert.deepEqual(statuses(await apply((h) => h.directory({ path, state: 'absent' }))), ['changed']);
    await assert.rejects(stat(path));
  });
});

describe('template', () => {
  it('renders in strict mode: a missing variable names the template and the variable', async () => {
    await using d = await tempDir();
    await writeFile(join(d.path, 'x.hbs'), 'a={{a}}\nb={{b}}\n');
    await assert.rejects(renderFolder(d.path, { a: 1 }), (e: Error & { where?: string }) => {
      assert.match(e.message, /variable "b" is not defined \(line 2\)/);
      assert.match(e.where!, /x\.hbs$/);
      return true;
    });
    const out = await renderFolder(d.path, { a: 1, b: 'two' });
    assert.equal(out.get('x.hbs'), 'a=1\nb=two\n');
  });

  it('does not HTML-escape, and the resource writes what was rendered', async () => {
    await using d = await tempDir();
    const templates = await renderFolder(fixture('sample', 'roles', 'site', 'templates'), { app_name: '<&>', app_port: 1, app_workers: 1, app_debug: true });
    const dest = join(d.path, 'app.conf');
    const r = await apply((h) => h.template({ src: 'app.conf.hbs', dest }), { templates });
    assert.deepEqual(statuses(r), ['changed']);
    assert.equal(await readFile(dest, 'utf8'), '# <&>: managed by hostctl\nport = 1\nworkers = 1\ndebug = true\n');
    const unknown = await apply((h) => h.template({ src: 'nope.hbs', dest }), { templates });
    assert.match(unknown.ends[0]!.reason, /template nope\.hbs is not in the role's templates folder/);
  });
});

describe('command', () => {
  it('guards: creates, removes, unless, onlyIf; a guard-less command reports changed', async () => {
    await using d = await tempDir();
    const marker = join(d.path, 'marker');
    const run = (args: { creates?: string; removes?: string; unless?: string; onlyIf?: string }) =>
      apply((h) => h.command({ cmd: `echo ran >> ${join(d.path, 'log')}`, ...args }));
    assert.deepEqual(statuses(await run({})), ['changed']);
    assert.deepEqual(statuses(await run({ creates: marker })), ['changed']);
    await writeFile(marker, '');
    assert.deepEqual(statuses(await run({ creates: marker })), ['ok']);
    assert.deepEqual(statuses(await run({ removes: join(d.path, 'missing') })), ['ok']);
    assert.deepEqual(statuses(await run({ unless: 'true' })), ['ok']);
    assert.deepEqual(statuses(await run({ onlyIf: 'false' })), ['ok']);
    assert.equal(await readFile(join(d.path, 'log'), 'utf8'), 'ran\nran\n');
  });

  it('changedWhen and failedWhen judge the result; check mode does not run it', async () => {
    await using d = await tempDir();
    const quiet = await apply((h) => h.command({ cmd: 'echo nothing-to-do', changedWhen: (r) => !r.stdout.includes('nothing-to-do') }));
    assert.deepEqual(statuses(quiet), ['ok']);
    const failed = await apply((h) => h.command({ cmd: 'echo ERROR', failedWhen: (r) => r.stdout.includes('ERROR') }));
    assert.deepEqual(statuses(failed), ['failed']);
    const checked = await apply((h) => h.command({ cmd: `touch ${join(d.path, 't')}` }), { check: true });
    assert.match(checked.ends[0]!.reason, /^would run/);
    await assert.rejects(stat(join(d.path, 't')));
  });

  it('stdin carries secrets; a secret in the command line is refused', async () => {
    await using d = await tempDir();
    const s = new Secret('stdin-secret-value', 'test');
    const ok = await apply((h) => h.command({ cmd: `cat > ${join(d.path, 'out')}`, stdin: s }));
    assert.deepEqual(statuses(ok), ['changed']);
    assert.equal(await readFile(join(d.path, 'out'), 'utf8'), 'stdin-secret-value');
    const leak = await apply((h) => h.command({ cmd: `echo ${s.reveal()}` }));
    assert.deepEqual(statuses(leak), ['failed']);
    assert.match(leak.ends[0]!.reason, /a secret value would appear in a command line: echo \*{8}/);
  });
});

describe('wait', () => {
  it('retries a probe and shows the attempts; fails after the retries', async () => {
    await using d = await tempDir();
    const flag = join(d.path, 'ready');
    setTimeout(() => void writeFile(flag, ''), 700);
    const ok = await apply((h) => h.wait({ what: 'flag', command: `test -e ${flag}`, retries: 10, delaySeconds: 0.3 }));
    assert.deepEqual(statuses(ok), ['ok']);
    assert.match(ok.ends[0]!.reason, /^ready after [2-5] attempts$/);
    assert.ok(ok.events.some((e) => e.type === 'task-progress' && /attempt 1\/11/.test(e.message)));
    const never = await apply((h) => h.wait({ what: 'never', command: 'false', retries: 2, delaySeconds: 0.05 }));
    assert.deepEqual(statuses(never), ['failed']);
    assert.match(never.ends[0]!.reason, /never not ready after 3 attempts/);
  });
});
