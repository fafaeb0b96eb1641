import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { inspect, parseArgs } from 'node:util';
import { execa } from 'execa';
import { describeError, HostctlError } from '../../src/core/errors.js';
import { MASK } from '../../src/core/secret.js';
import {
  decryptText,
  encrypt,
  keyringOptions,
  loadKeyring,
  parseVaultIdSlug,
  vaultOptions,
} from '../../src/vault/index.js';
import { passwordFile, tempDir, vector } from './fixtures/helpers.js';

const noEnv = {} as NodeJS.ProcessEnv;
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

async function rejection(promise: Promise<unknown>): Promise<{ text: string; error: HostctlError }> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HostctlError, `expected a HostctlError, got ${String(error)}`);
    assert.equal(error.kind, 'input');
    return { text: describeError(error), error };
  }
  assert.fail('expected a rejection');
}

async function script(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`, { mode: 0o700 });
  return path;
}

describe('password files', () => {
  it('reads a plain file and strips surrounding whitespace', async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'pw');
    await writeFile(file, '  test-vault-password \r\n\n');
    const keyring = await loadKeyring({ passwordFiles: [file], env: noEnv });
    assert.equal(keyring.size, 1);
    assert.equal(keyring.entries[0]!.id, 'default');
    assert.equal(keyring.entries[0]!.source, `--vault-password-file ${file}`);
    assert.equal(decryptText(await readFile(vector('secret.vault'), 'utf8'), keyring, 'secret.vault'), 'VAULT TEST IN WHICH BAD THING HAPPENED\n');
    // the password itself never prints
    assert.match(inspect(keyring.entries), new RegExp(`secret: \\${MASK.split('').join('\\')}`));
    assert.doesNotMatch(inspect(keyring.entries), /test-vault-password/);
    assert.doesNotMatch(JSON.stringify(keyring.entries), /test-vault-password/);
  });

  it('runs an executable file and uses its stdout (CR/LF stripped)', async (t) => {
    const dir = await tempDir(t);
    const exe = await script(dir, 'get-pass.sh', `printf 'test-vault-password\\r\\n'`);
    const keyring = await loadKeyring({ passwordFiles: [exe], env: noEnv });
    assert.equal(keyring.entries[0]!.secret.reveal(), 'test-vault-password');
    assert.equal(decryptText(await readFile(vector('format_1_1_AES256.yml'), 'utf8'), keyring, 'f'), 'foobar\n');
  });

  it('asks a "-client" script for the vault id, and explains its exit code 2', async (t) => {
    const dir = await tempDir(t);
    const client = await script(
      dir,
      'vault-pass-client.sh',
      `[ "$1" = "--vault-id" ] || exit 9
case "$2" in example1) echo example1 ;; example2) echo example2 ;; *) exit 2 ;; esac`,
    );
    const keyring = await loadKeyring({ vaultIds: [`example1@${client}`, `example2@${client}`], env: noEnv });
    assert.deepEqual(keyring.entries.map((e) => [e.id, e.secret.reveal()]), [
      ['example1', 'example1'],
      ['example2', 'example2'],
    ]);
    const { text } = await rejection(loadKeyring({ vaultIds: [`other@${client}`], env: noEnv }));
    assert.match(text, /has no password for vault id "other"/);
  });

  it('refuses an empty password from a file or a script, naming it', async (t) => {
    const dir = await tempDir(t);
    const empty = join(dir, 'empty');
    await writeFile(empty, ' \n\n');
    const fromFile = await rejection(loadKeyring({ passwordFiles: [empty], env: noEnv }));
    assert.equal(fromFile.error.where, empty);
    assert.match(fromFile.text, /the vault password from --vault-password-file .*empty is empty: an empty password is not allowed/);
    const exe = await script(dir, 'nothing.sh', 'echo');
    assert.match((await rejection(loadKeyring({ passwordFiles: [exe], env: noEnv }))).text, /is empty/);
  });

  it('reports a missing file and a failing script', async (t) => {
    const dir = await tempDir(t);
    const missing = await rejection(loadKeyring({ passwordFiles: [join(dir, 'nope')], env: noEnv }));
    assert.match(missing.text, /the vault password file was not found \(--vault-password-file .*nope\)/);
    const failing = await script(dir, 'fail.sh', 'exit 3');
    assert.match((await rejection(loadKeyring({ passwordFiles: [failing], env: noEnv }))).text, /exited with code 3/);
    const notScript = join(dir, 'not-a-script');
    await writeFile(notScript, 'pw\n', { mode: 0o755 });
    assert.match((await rejection(loadKeyring({ passwordFiles: [notScript], env: noEnv }))).text, /executable but is not a program \(no "#!" line\).*\n.*chmod -x/);
  });

  it('opens a vault-encrypted password file with the passwords given before it', async (t) => {
    // vault-secret.txt holds "secret", encrypted with test-vault-password (ansible-core's vector)
    const dir = await tempDir(t);
    const outer = await passwordFile(dir, 'test-vault-password');
    const keyring = await loadKeyring({ vaultIds: [`outer@${outer}`, `inner@${vector('vault-secret.txt')}`], env: noEnv });
    assert.equal(keyring.entries[1]!.secret.reveal(), 'secret');
    const failure = await rejection(loadKeyring({ passwordFiles: [vector('vault-secret.txt')], env: noEnv }));
    assert.match(failure.text, /vault-secret\.txt: vault-encrypted, but no vault password was given/);
  });
});

describe('sources together', () => {
  it('orders --vault-id, then --vault-password-file, then the environment, without duplicates', async (t) => {
    const dir = await tempDir(t);
    const a = await passwordFile(dir, 'pa', 'a');
    const b = await passwordFile(dir, 'pb', 'b');
    const c = await passwordFile(dir, 'pc', 'c');
    const keyring = await loadKeyring({
      passwordFiles: [b],
      vaultIds: [`prod@${a}`],
      env: { HOSTCTL_VAULT_PASSWORD_FILE: c, ANSIBLE_VAULT_PASSWORD_FILE: b },
    });
    assert.deepEqual(keyring.entries.map((e) => [e.id, e.secret.reveal()]), [
      ['prod', 'pa'],
      ['default', 'pb'],
      ['default', 'pc'],
    ]);
    assert.equal(keyring.entries[2]!.source, `$HOSTCTL_VAULT_PASSWORD_FILE (${c})`);
  });

  it('uses ANSIBLE_VAULT_PASSWORD_FILE for compatibility, and ~ in it', async (t) => {
    const dir = await tempDir(t);
    const file = await passwordFile(dir, 'from-env');
    const keyring = await loadKeyring({ env: { ANSIBLE_VAULT_PASSWORD_FILE: file } });
    assert.equal(keyring.entries[0]!.secret.reveal(), 'from-env');
    const missing = await rejection(loadKeyring({ env: { HOSTCTL_VAULT_PASSWORD_FILE: '~/surely-not-here-hostctl' } }));
    assert.match(missing.text, /\$HOSTCTL_VAULT_PASSWORD_FILE \(~\/surely-not-here-hostctl\)/);
    assert.equal((await loadKeyring({ env: { HOSTCTL_VAULT_PASSWORD_FILE: file }, useEnv: false })).size, 0);
  });

  it('parses label@source like Ansible and refuses ids that break the header', () => {
    assert.deepEqual(parseVaultIdSlug('prod@/x/pw'), { id: 'prod', source: '/x/pw' });
    assert.deepEqual(parseVaultIdSlug('/x/pw'), { id: 'default', source: '/x/pw' });
    assert.deepEqual(parseVaultIdSlug('dev@prompt'), { id: 'dev', source: 'prompt' });
    assert.deepEqual(parseVaultIdSlug('a@b@c'), { id: 'a', source: 'b@c' });
    assert.throws(() => parseVaultIdSlug('a;b@x'), /not a valid vault id/);
    assert.throws(() => parseVaultIdSlug('a@'), /names no password source/);
  });

  it('decrypts a 1.2 value with the matching id even when another password comes first', async (t) => {
    const dir = await tempDir(t);
    const keyring = await loadKeyring({
      vaultIds: [`example2@${vector('example2_password')}`, `example1@${vector('example1_password')}`],
      env: noEnv,
    });
    const text = encrypt('hello', 'example1', 'example1');
    assert.equal(decryptText(text, keyring, join(dir, 'x')), 'hello');
  });

  it('shares the flags through vaultOptions and keyringOptions', () => {
    const { values } = parseArgs({
      args: ['--vault-password-file', 'a', '--vault-pass-file', 'b', '--vault-id', 'x@c', '--vault-id', 'y@d', '--ask-vault-password'],
      options: vaultOptions,
      allowPositionals: true,
      strict: true,
    });
    const options = keyringOptions(values, noEnv);
    assert.deepEqual(options.passwordFiles, ['a', 'b']);
    assert.deepEqual(options.vaultIds, ['x@c', 'y@d']);
    assert.equal(options.askVaultPass, true);
  });

  it('with nothing given and no terminal, autoPrompt gives an empty keyring instead of hanging', async () => {
    const keyring = await loadKeyring({ env: noEnv, autoPrompt: true, io: { input: new PassThrough(), output: new PassThrough() } });
    assert.equal(keyring.size, 0);
    assert.throws(() => keyring.forEncryption(), /a vault password is required to encrypt/);
  });
});

describe('prompting on a terminal', () => {
  // A child process on a pseudo-terminal: it loads the keyring with --ask-vault-pass and prints
  // what it decrypts. The terminal output must not show the typed password.
  async function onTerminal(t: import('node:test').TestContext, answers: string[], options: string) {
    const dir = await tempDir(t);
    const child = join(dir, 'child.mts');
    await writeFile(
      child,
      `import { readFileSync } from 'node:fs';
import { loadKeyring, decryptText } from ${JSON.stringify(join(repoRoot, 'src/vault/index.ts'))};
import { describeError } from ${JSON.stringify(join(repoRoot, 'src/core/errors.ts'))};
try {
  const keyring = await loadKeyring(${options});
  process.stdout.write('ids=' + keyring.ids.join(',') + '\\n');
  process.stdout.write('plain=' + decryptText(readFileSync(${JSON.stringify(vector('format_1_1_AES256.yml'))}, 'utf8'), keyring, 'f'));
} catch (error) { process.stdout.write('error=' + describeError(error) + '\\n'); process.exitCode = 5; }
`,
    );
    return execa('/usr/bin/python3', [fileURLToPath(new URL('./fixtures/pty-driver.py', import.meta.url)), process.execPath, '--import', 'tsx', child], {
      cwd: repoRoot,
      env: { ...process.env, ANSWERS: answers.join('\n'), HOSTCTL_VAULT_PASSWORD_FILE: '', ANSIBLE_VAULT_PASSWORD_FILE: '' },
      reject: false,
    });
  }

  it('--ask-vault-pass reads the password without echo', async (t) => {
    const result = await onTerminal(t, ['test-vault-password'], '{ askVaultPass: true }');
    assert.match(result.stdout, /Vault password: /);
    assert.match(result.stdout, /plain=foobar/);
    assert.doesNotMatch(result.stdout, /test-vault-password/, 'the typed password is not echoed');
    assert.equal(result.exitCode, 0);
  });

  it('label@prompt asks with the label; a new password must be confirmed', async (t) => {
    const ok = await onTerminal(t, ['test-vault-password', 'test-vault-password'], "{ vaultIds: ['dev@prompt'], newPassword: true }");
    assert.match(ok.stdout, /New vault password \(dev\): /);
    assert.match(ok.stdout, /Confirm new vault password \(dev\): /);
    assert.match(ok.stdout, /ids=dev/);
    const mismatch = await onTerminal(t, ['one-password', 'another-one'], "{ vaultIds: ['dev@prompt'], newPassword: true }");
    assert.match(mismatch.stdout, /error=the two passwords typed do not match \(--vault-id dev@prompt\)/);
    assert.doesNotMatch(mismatch.stdout, /one-password|another-one/);
  });

  it('refuses an empty password typed at the prompt', async (t) => {
    const result = await onTerminal(t, [' '], '{ askVaultPass: true }');
    assert.match(result.stdout, /error=an empty vault password is not allowed/);
  });

  it('says what to do when there is no terminal to ask on', async () => {
    const { text } = await rejection(loadKeyring({ askVaultPass: true, env: noEnv, io: { input: new PassThrough(), output: new PassThrough() } }));
    assert.match(text, /cannot ask: there is no terminal to ask on\n {2}hint: pass --vault-password-file FILE/);
  });
});

