// `hostctl vault ...` (src/cli/vault.ts run(argv, io)), checked with the real ansible-vault.
import assert from 'node:assert/strict';
import { readFile, readdir, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { describe, it, type TestContext } from 'node:test';
import { parse } from 'yaml';
import { describeError, HostctlError } from '../../src/core/errors.js';
import { run, vaultCommandOptions } from '../../src/cli/vault.js';
import { vaultHelp } from '../../src/cli/vault-help.js';
import { Keyring, VaultedValue, decryptValue, encrypt, splitCommand, vaultTag } from '../../src/vault/index.js';
import { ansibleVault, captureIo, passwordFile, tempDir, vector } from './fixtures/helpers.js';

const PW = 'cli-test-password';

async function fails(promise: Promise<unknown>): Promise<{ text: string; error: HostctlError }> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HostctlError, `expected a HostctlError, got ${String(error)}`);
    return { text: describeError(error), error };
  }
  assert.fail('expected a rejection');
}

// An $EDITOR: a shell script that logs the file it was given (path, file mode, dir mode, the
// text it saw), then runs `action` on it.
async function editor(dir: string, action: string, exitCode = 0) {
  const log = join(dir, `editor-${Math.random().toString(36).slice(2)}.log`);
  const path = join(dir, `editor-${Math.random().toString(36).slice(2)}.sh`);
  await writeFile(
    path,
    `#!/bin/sh
f="$1"
printf '%s\\n' "$f" >> '${log}'
stat -c '%a' "$f" >> '${log}'
stat -c '%a' "$(dirname "$f")" >> '${log}'
cp "$f" '${log}.seen'
${action}
exit ${exitCode}
`,
    { mode: 0o700 },
  );
  return {
    // "sh PATH" also checks that $EDITOR is split into words
    env: { EDITOR: `sh '${path}'` },
    async calls() {
      if (!existsSync(log)) return [];
      const lines = (await readFile(log, 'utf8')).trim().split('\n');
      const calls = [];
      for (let i = 0; i + 2 < lines.length; i += 3) calls.push({ file: lines[i]!, fileMode: lines[i + 1]!, dirMode: lines[i + 2]! });
      return calls;
    },
    seen: () => readFile(`${log}.seen`, 'utf8'),
  };
}

async function ansibleView(dir: string, file: string, ...passwordArgs: string[]) {
  const result = await ansibleVault(dir, ['view', ...passwordArgs, file]);
  assert.equal(result.exitCode, 0, result.stderr);
  return result.stdout.toString('utf8');
}

async function setup(t: TestContext) {
  const dir = await tempDir(t);
  const pw = await passwordFile(dir, PW, 'pw.txt');
  return { dir, pw };
}

describe('hostctl vault --help', () => {
  it('documents every option of every action', () => {
    for (const [action, options] of Object.entries(vaultCommandOptions)) {
      const text = vaultHelp[action as keyof typeof vaultCommandOptions];
      for (const [name, config] of Object.entries(options)) {
        assert.ok(text.includes(`--${name}`), `${action} --help does not mention --${name}`);
        if ('short' in config) assert.ok(text.includes(`-${config.short}, --${name}`), `${action}: -${config.short}`);
      }
    }
    for (const action of Object.keys(vaultCommandOptions)) assert.ok(vaultHelp.summary.includes(`  ${action}`), action);
  });

  it('prints help and returns 0; unknown actions and flags are input errors', async (t) => {
    const { dir } = await setup(t);
    const cli = captureIo(dir);
    assert.equal(await run(['rekey', '--help'], cli.io), 0);
    assert.equal(cli.stdout().toString(), `${vaultHelp.rekey}\n`);
    assert.match((await fails(run(['frobnicate'], captureIo(dir).io))).text, /unknown vault action "frobnicate"/);
    const flag = await fails(run(['view', '--bogus', 'x'], captureIo(dir).io));
    assert.equal(flag.error.kind, 'input');
    assert.match(flag.text, /see `hostctl vault view --help`/);
    assert.match((await fails(run([], captureIo(dir).io))).text, /no action given/);
  });
});

describe('create and edit', () => {
  it('create: encrypts what the editor saved (0600), from a 0600 file in a 0700 dir that is then gone', async (t) => {
    const { dir, pw } = await setup(t);
    const ed = await editor(dir, `printf 'db: created\\n' > "$f"`);
    const cli = captureIo(dir, '', ed.env);
    assert.equal(await run(['create', '--vault-password-file', pw, 'group_vars/all/vault.yml'], cli.io), 0);
    const file = join(dir, 'group_vars/all/vault.yml');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(await ansibleView(dir, file, '--vault-password-file', pw), 'db: created\n');
    const [call] = await ed.calls();
    assert.ok(call);
    assert.equal(call.fileMode, '600');
    assert.equal(call.dirMode, '700');
    assert.ok(call.file.endsWith('/vault.yml'), 'keeps the name so the editor knows the syntax');
    assert.equal(existsSync(call.file), false, 'plaintext removed');
    assert.equal(existsSync(dirname(call.file)), false, 'private dir removed');
    // a second create refuses to overwrite
    assert.match((await fails(run(['create', '--vault-password-file', pw, 'group_vars/all/vault.yml'], captureIo(dir, '', ed.env).io))).text, /already exists/);
  });

  it('create: an empty save creates nothing', async (t) => {
    const { dir, pw } = await setup(t);
    const ed = await editor(dir, ': nothing');
    const cli = captureIo(dir, '', ed.env);
    assert.equal(await run(['create', '--vault-password-file', pw, 'empty.yml'], cli.io), 0);
    assert.equal(existsSync(join(dir, 'empty.yml')), false);
    assert.match(cli.stderr(), /the file was not created/);
  });

  it('edit: the editor sees the plaintext, the change is re-encrypted with the same vault id', async (t) => {
    const { dir, pw } = await setup(t);
    const file = join(dir, 'prod.yml');
    await writeFile(file, encrypt('a: 1\n', PW, 'prod'), { mode: 0o640 });
    const ed = await editor(dir, `printf 'b: 2\\n' >> "$f"`);
    assert.equal(await run(['edit', '--vault-id', `prod@${pw}`, 'prod.yml'], captureIo(dir, '', ed.env).io), 0);
    assert.equal(await ed.seen(), 'a: 1\n');
    const text = await readFile(file, 'utf8');
    assert.match(text, /^\$ANSIBLE_VAULT;1\.2;AES256;prod\n/);
    assert.equal((await stat(file)).mode & 0o777, 0o640, 'mode kept');
    assert.equal(await ansibleView(dir, file, '--vault-id', `prod@${pw}`), 'a: 1\nb: 2\n');
    const [call] = await ed.calls();
    assert.equal(existsSync(call!.file), false);
    assert.equal(existsSync(dirname(call!.file)), false);
  });

  it('edit: no change, no rewrite', async (t) => {
    const { dir, pw } = await setup(t);
    const file = join(dir, 'same.yml');
    const original = encrypt('same\n', PW);
    await writeFile(file, original);
    const before = await stat(file);
    const ed = await editor(dir, ': look only');
    const cli = captureIo(dir, '', ed.env);
    assert.equal(await run(['edit', '--vault-password-file', pw, 'same.yml'], cli.io), 0);
    assert.equal(await readFile(file, 'utf8'), original, 'same ciphertext (a rewrite would have a new salt)');
    assert.equal((await stat(file)).ino, before.ino);
    assert.match(cli.stderr(), /same\.yml: unchanged/);
  });

  it('edit: an editor that fails leaves the file alone and the plaintext removed', async (t) => {
    const { dir, pw } = await setup(t);
    const file = join(dir, 'keep.yml');
    const original = encrypt('keep: me\n', PW);
    await writeFile(file, original);
    const ed = await editor(dir, `printf 'half-edited\\n' >> "$f"`, 1);
    const { text, error } = await fails(run(['edit', '--vault-password-file', pw, 'keep.yml'], captureIo(dir, '', ed.env).io));
    assert.equal(error.kind, 'input');
    assert.match(text, /exited with code 1: nothing was saved/);
    assert.equal(await readFile(file, 'utf8'), original);
    const [call] = await ed.calls();
    assert.ok(call, 'the editor ran');
    assert.equal(existsSync(call.file), false, 'plaintext removed after a failure');
    assert.equal(existsSync(dirname(call.file)), false, 'private dir removed after a failure');
  });

  it('edit: an editor that does not exist is reported, nothing is left behind', async (t) => {
    const { dir, pw } = await setup(t);
    const file = join(dir, 'x.yml');
    await writeFile(file, encrypt('x\n', PW));
    const { text } = await fails(run(['edit', '--vault-password-file', pw, 'x.yml'], captureIo(dir, '', { EDITOR: '/nonexistent/editor --wait' }).io));
    assert.match(text, /cannot run the editor "\/nonexistent\/editor": ENOENT/);
  });

  it('edit: a wrong password names the file and changes nothing', async (t) => {
    const { dir } = await setup(t);
    const other = await passwordFile(dir, 'other-password');
    await writeFile(join(dir, 'x.yml'), encrypt('x\n', PW));
    const ed = await editor(dir, ': never');
    const { text, error } = await fails(run(['edit', '--vault-password-file', other, 'x.yml'], captureIo(dir, '', ed.env).io));
    assert.equal(error.where, 'x.yml');
    assert.match(text, /^x\.yml: the vault password does not match: tried vault id "default" \(--vault-password-file .*\)/);
    assert.deepEqual(await ed.calls(), [], 'the editor never ran');
  });

  it('splits $EDITOR like a shell', () => {
    assert.deepEqual(splitCommand(`code --wait`), ['code', '--wait']);
    assert.deepEqual(splitCommand(`"/opt/my editor/bin" -n 'a b' c\\ d ""`), ['/opt/my editor/bin', '-n', 'a b', 'c d', '']);
  });
});

describe('encrypt, decrypt, view', () => {
  it('encrypt in place: atomic, keeps the mode, follows symlinks; ansible-vault reads it', async (t) => {
    const { dir, pw } = await setup(t);
    const file = join(dir, 'vars.yml');
    await writeFile(file, 'x: 1\n', { mode: 0o640 });
    await symlink('vars.yml', join(dir, 'link.yml'));
    const before = await stat(file);
    const cli = captureIo(dir);
    assert.equal(await run(['encrypt', '--vault-password-file', pw, 'link.yml'], cli.io), 0);
    assert.equal(await readlink(join(dir, 'link.yml')), 'vars.yml', 'the link is still a link');
    const after = await stat(file);
    assert.equal(after.mode & 0o777, 0o640);
    assert.notEqual(after.ino, before.ino, 'replaced by rename, not rewritten in place');
    assert.equal(await ansibleView(dir, file, '--vault-password-file', pw), 'x: 1\n');
    assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
    assert.match((await fails(run(['encrypt', '--vault-password-file', pw, 'vars.yml'], captureIo(dir).io))).text, /^vars\.yml: already vault-encrypted/);
  });

  it('encrypt from stdin to stdout, with a chosen vault id among several', async (t) => {
    const { dir, pw } = await setup(t);
    const devPw = await passwordFile(dir, 'dev-password');
    const several = await fails(run(['encrypt', '--vault-id', `prod@${pw}`, '--vault-id', `dev@${devPw}`], captureIo(dir, 'data\n').io));
    assert.match(several.text, /vault ids prod, dev are all available.*\n.*--encrypt-vault-id/);
    const cli = captureIo(dir, 'data\n');
    assert.equal(await run(['encrypt', '--vault-id', `prod@${pw}`, '--vault-id', `dev@${devPw}`, '--encrypt-vault-id', 'dev'], cli.io), 0);
    const out = join(dir, 'out.vault');
    await writeFile(out, cli.stdout());
    assert.match(cli.stdout().toString(), /^\$ANSIBLE_VAULT;1\.2;AES256;dev\n/);
    assert.equal(await ansibleView(dir, out, '--vault-id', `dev@${devPw}`), 'data\n');
  });

  it('decrypt in place keeps the mode; --output - prints; view prints several files', async (t) => {
    const { dir, pw } = await setup(t);
    const a = join(dir, 'a.yml');
    const b = join(dir, 'b.yml');
    await writeFile(a, encrypt('a: 1\n', PW), { mode: 0o604 });
    assert.equal((await ansibleVault(dir, ['encrypt', '--vault-password-file', pw, '--output', b, '-'], 'b: 2\n')).exitCode, 0);
    const view = captureIo(dir);
    assert.equal(await run(['view', '--vault-password-file', pw, 'a.yml', 'b.yml'], view.io), 0);
    assert.equal(view.stdout().toString(), 'a: 1\nb: 2\n');
    const printed = captureIo(dir);
    assert.equal(await run(['decrypt', '--vault-password-file', pw, '--output', '-', 'b.yml'], printed.io), 0);
    assert.equal(printed.stdout().toString(), 'b: 2\n');
    assert.equal(await run(['decrypt', '--vault-password-file', pw, 'a.yml'], captureIo(dir).io), 0);
    assert.equal(await readFile(a, 'utf8'), 'a: 1\n');
    assert.equal((await stat(a)).mode & 0o777, 0o604);
    assert.match((await fails(run(['decrypt', '--vault-password-file', pw, 'a.yml'], captureIo(dir).io))).text, /^a\.yml: the input is not vault-encrypted/);
  });

  it('no password and no terminal: says how to give one', async (t) => {
    const { dir } = await setup(t);
    await writeFile(join(dir, 'x.yml'), encrypt('x', PW));
    const { text } = await fails(run(['view', 'x.yml'], captureIo(dir).io));
    assert.match(text, /a vault password is required to view a vault file\n {2}hint: pass --vault-password-file FILE/);
  });

  it('takes the password from HOSTCTL_VAULT_PASSWORD_FILE or an executable password file', async (t) => {
    const { dir, pw } = await setup(t);
    await writeFile(join(dir, 'x.yml'), encrypt('from env\n', PW));
    const env = captureIo(dir, '', { HOSTCTL_VAULT_PASSWORD_FILE: pw });
    assert.equal(await run(['view', 'x.yml'], env.io), 0);
    assert.equal(env.stdout().toString(), 'from env\n');
    const exe = join(dir, 'pass.sh');
    await writeFile(exe, `#!/bin/sh\ncat '${pw}'\n`, { mode: 0o755 });
    const script = captureIo(dir);
    assert.equal(await run(['view', '--vault-password-file', exe, 'x.yml'], script.io), 0);
    assert.equal(script.stdout().toString(), 'from env\n');
  });

  it('damaged files: bad hex and merge conflicts are reported with the file and line', async (t) => {
    const { dir, pw } = await setup(t);
    const lines = encrypt('x: 1\n', PW).split('\n');
    await writeFile(join(dir, 'hex.yml'), [...lines.slice(0, 2), 'not hex at all', ...lines.slice(2)].join('\n'));
    const hex = await fails(run(['view', '--vault-password-file', pw, 'hex.yml'], captureIo(dir).io));
    assert.match(hex.text, /^hex\.yml: the vault text is damaged: line 3 column 1 is not hexadecimal/);
    await writeFile(join(dir, 'conflict.yml'), [lines[0], lines[1], '=======', ...lines.slice(2)].join('\n'));
    const conflict = await fails(run(['view', '--vault-password-file', pw, 'conflict.yml'], captureIo(dir).io));
    assert.match(conflict.text, /^conflict\.yml: merge conflict marker "=======" at line 3/);
  });
});

describe('rekey', () => {
  it('rekeys several files to a new password file (1.1), keeping modes', async (t) => {
    const { dir, pw } = await setup(t);
    const newPw = await passwordFile(dir, 'brand-new-password');
    await writeFile(join(dir, 'a.yml'), encrypt('a\n', PW, 'old'), { mode: 0o640 });
    await writeFile(join(dir, 'b.yml'), encrypt('b\n', PW));
    const cli = captureIo(dir);
    assert.equal(await run(['rekey', '--vault-id', `old@${pw}`, '--new-vault-password-file', newPw, 'a.yml', 'b.yml'], cli.io), 0);
    assert.match(cli.stderr(), /Rekey successful/);
    assert.match(await readFile(join(dir, 'a.yml'), 'utf8'), /^\$ANSIBLE_VAULT;1\.1;AES256\n/);
    assert.equal((await stat(join(dir, 'a.yml'))).mode & 0o777, 0o640);
    assert.equal(await ansibleView(dir, join(dir, 'a.yml'), '--vault-password-file', newPw), 'a\n');
    assert.equal(await ansibleView(dir, join(dir, 'b.yml'), '--vault-password-file', newPw), 'b\n');
  });

  it('refuses both new-password flags, and a missing new password without a terminal', async (t) => {
    const { dir, pw } = await setup(t);
    await writeFile(join(dir, 'a.yml'), encrypt('a\n', PW));
    const both = await fails(run(['rekey', '--vault-password-file', pw, '--new-vault-password-file', pw, '--new-vault-id', `x@${pw}`, 'a.yml'], captureIo(dir).io));
    assert.match(both.text, /cannot be used together/);
    const none = await fails(run(['rekey', '--vault-password-file', pw, 'a.yml'], captureIo(dir).io));
    assert.match(none.text, /a new vault password is required to rekey/);
  });
});

describe('encrypt-string', () => {
  it('reads stdin with --stdin-name and prints the block with a final newline', async (t) => {
    const { dir, pw } = await setup(t);
    const cli = captureIo(dir, 'exact bytes\n');
    assert.equal(await run(['encrypt-string', '--vault-password-file', pw, '--stdin-name', 'db_password'], cli.io), 0);
    const out = cli.stdout().toString();
    assert.match(out, /^db_password: !vault \|\n {10}\$ANSIBLE_VAULT;1\.1;AES256\n( {10}[0-9a-f]{1,80}\n)+$/);
    const value = (parse(out, { customTags: [vaultTag] }) as Record<string, VaultedValue>)['db_password']!;
    assert.equal(decryptValue(value, Keyring.of(PW), 'x').reveal(), 'exact bytes\n');
    assert.doesNotMatch(cli.stderr(), /visible to other users/, 'no argv warning for stdin');
  });

  it('values in argv: paired with --name, warned about, several marked on stderr; --output writes a 0600 file', async (t) => {
    const { dir, pw } = await setup(t);
    const cli = captureIo(dir);
    assert.equal(await run(['encrypt_string', '--vault-password-file', pw, '-n', 'one', '--name', 'two', '--output', 'out.yml', 'v1', 'v2'], cli.io), 0);
    assert.match(cli.stderr(), /visible to other users \(ps\).*prefer --stdin-name or --prompt/);
    assert.match(cli.stderr(), /# The encrypted version of variable \("one", the string #1 from the command line args\)\./);
    assert.doesNotMatch(cli.stderr(), /v1|v2/, 'values are never echoed');
    const file = join(dir, 'out.yml');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const data = parse(await readFile(file, 'utf8'), { customTags: [vaultTag] }) as Record<string, VaultedValue>;
    assert.equal(decryptValue(data['one']!, Keyring.of(PW), 'x').reveal(), 'v1');
    assert.equal(decryptValue(data['two']!, Keyring.of(PW), 'x').reveal(), 'v2');
  });

  it('refuses empty input and --prompt together with stdin', async (t) => {
    const { dir, pw } = await setup(t);
    assert.match((await fails(run(['encrypt-string', '--vault-password-file', pw], captureIo(dir, '').io))).text, /standard input was empty/);
    assert.match((await fails(run(['encrypt-string', '--vault-password-file', pw, '-p', '-'], captureIo(dir).io))).text, /--prompt cannot be combined/);
  });
});


describe('on a terminal', () => {
  // The CLI in a child process on a pseudo-terminal (fixtures/pty-driver.py answers the prompts).
  const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
  async function terminal(t: TestContext, answers: string[], command: string) {
    const dir = await tempDir(t);
    const cli = join(dir, 'cli.mts');
    await writeFile(
      cli,
      `import { run } from ${JSON.stringify(join(repoRoot, 'src/cli/vault.ts'))};
import { describeError } from ${JSON.stringify(join(repoRoot, 'src/core/errors.ts'))};
try { process.exitCode = await run(process.argv.slice(2)); } catch (e) { process.stderr.write(describeError(e) + '\\n'); process.exitCode = 5; }
`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env, ANSWERS: answers.join('\n'), CLI: `${process.execPath} --import tsx ${cli}`, DIR: dir };
    delete env['HOSTCTL_VAULT_PASSWORD_FILE'];
    delete env['ANSIBLE_VAULT_PASSWORD_FILE'];
    const result = await execa('/usr/bin/python3', [fileURLToPath(new URL('./fixtures/pty-driver.py', import.meta.url)), 'sh', '-c', command], {
      cwd: repoRoot,
      env,
      reject: false,
    });
    return { ...result, dir };
  }

  it('view without a password source asks for it, without echo', async (t) => {
    const result = await terminal(t, ['test-vault-password'], `$CLI view ${vector('format_1_1_AES256.yml')}`);
    assert.equal(result.exitCode, 0, result.stdout);
    assert.match(result.stdout, /Vault password: \s*\r?\n?foobar/);
    assert.doesNotMatch(result.stdout, /test-vault-password/);
  });

  it('encrypt from a pipe asks for a new password twice on the terminal', async (t) => {
    const result = await terminal(t, ['piped-password', 'piped-password'], 'printf "piped text\\n" | $CLI encrypt > "$DIR/out.vault"');
    assert.equal(result.exitCode, 0, result.stdout);
    assert.match(result.stdout, /New vault password: [\s\S]*Confirm new vault password: /);
    const pw = await passwordFile(result.dir, 'piped-password');
    assert.equal(await ansibleView(result.dir, join(result.dir, 'out.vault'), '--vault-password-file', pw), 'piped text\n');
  });
});
