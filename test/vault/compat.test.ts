// hostctl against the real ansible-vault (ansible-core 2.14), both directions.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { parse } from 'yaml';
import {
  Keyring,
  VaultedValue,
  decryptText,
  decryptValue,
  encrypt,
  encryptEnvelope,
  encryptString,
  formatInline,
  openVault,
  parseEnvelope,
  vaultTag,
} from '../../src/vault/index.js';
import { run } from '../../src/cli/vault.js';
import { ansibleEnv, ansibleVault, captureIo, passwordFile, tempDir, vector, VECTOR_PLAINTEXTS } from './fixtures/helpers.js';

const PW = 'test-vault-password';

// Ansible's own Python code, fed JSON on stdin (so no secret is in argv).
async function ansiblePython(code: string, input: unknown): Promise<string> {
  const result = await execa('/usr/bin/python3', ['-c', code], { input: JSON.stringify(input), stripFinalNewline: false });
  return result.stdout;
}

// `ansible localhost -m debug` on a vars file: what Ansible itself makes of inline values.
async function ansibleDebug(dir: string, varsFile: string, name: string, passwordArgs: string[]): Promise<unknown> {
  const result = await execa('ansible', ['localhost', '-m', 'debug', '-a', `var=${name}`, '-e', `@${varsFile}`, ...passwordArgs], {
    env: ansibleEnv(dir),
    extendEnv: false,
    reject: false,
  });
  assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  const json = result.stdout.slice(result.stdout.indexOf('=>') + 2);
  return (JSON.parse(json) as Record<string, unknown>)[name];
}

describe('ansible-core vectors: hostctl and ansible-vault agree', () => {
  for (const [file, plaintext] of VECTOR_PLAINTEXTS) {
    it(file, async (t) => {
      const dir = await tempDir(t);
      const pw = await passwordFile(dir, PW);
      const ansible = await ansibleVault(dir, ['decrypt', '--vault-password-file', pw, '--output', '-', vector(file)]);
      assert.equal(ansible.exitCode, 0, ansible.stderr);
      assert.equal(ansible.stdout.toString('utf8'), plaintext);
      const ours = openVault(await readFile(vector(file), 'utf8'), Keyring.of(PW), { where: file }).plaintext;
      assert.deepEqual(ours, ansible.stdout);
    });
  }

  it('inline values (inline_1_1.yml, inline_1_2_ids.yml) decrypt to what ansible-vault gives for their envelopes', async (t) => {
    const dir = await tempDir(t);
    const passwords = {
      default: await passwordFile(dir, PW),
      example1: vector('example1_password'),
      example2: vector('example2_password'),
    };
    const keyring = new Keyring([
      ...Keyring.of(PW).entries,
      ...Keyring.of('example1', 'example1').entries,
      ...Keyring.of('example2', 'example2').entries,
    ]);
    const cases: [string, string, keyof typeof passwords][] = [
      ['inline_1_1.yml', 'vault_encrypted_var', 'default'],
      ['inline_1_1.yml', 'vault_encrypted_one_line_var', 'default'],
      ['inline_1_2_ids.yml', 'vault_encrypted_example2_hello', 'example2'],
      ['inline_1_2_ids.yml', 'vault_encrypted_example1_releases', 'example1'],
    ];
    for (const [file, key, id] of cases) {
      const value = (parse(await readFile(vector(file), 'utf8'), { customTags: [vaultTag] }) as Record<string, VaultedValue>)[key]!;
      const envelopeFile = join(dir, `${key}.vault`);
      await writeFile(envelopeFile, value.envelope);
      const ansible = await ansibleVault(dir, ['decrypt', '--vault-id', `${id}@${passwords[id]}`, '--output', '-', envelopeFile]);
      assert.equal(ansible.exitCode, 0, ansible.stderr);
      assert.equal(decryptValue(value, keyring, `${file}: ${key}`).reveal(), ansible.stdout.toString('utf8'), key);
    }
  });
});

describe('byte compatibility with ansible-core\'s own code', () => {
  it('encrypts byte for byte like VaultLib.encrypt with the same salt', async () => {
    const salt = Buffer.from('0123456789abcdef0123456789abcdef');
    for (const [plaintext, id] of [
      ['hello world\n', undefined],
      ['x'.repeat(200), 'prod'],
      ['', undefined],
    ] as const) {
      const python = await ansiblePython(
        `import json, sys
from ansible.parsing.vault import VaultLib, VaultSecret
a = json.load(sys.stdin)
out = VaultLib().encrypt(a['plaintext'].encode(), VaultSecret(a['password'].encode()), vault_id=a['id'], salt=a['salt'].encode())
sys.stdout.write(out.decode())`,
        { plaintext, password: PW, id: id ?? null, salt: salt.toString('latin1') },
      );
      assert.equal(encryptEnvelope(Buffer.from(plaintext), PW, id, salt), python);
    }
  });

  it('formats inline values like ansible-vault encrypt_string (VaultCLI.format_ciphertext_yaml)', async () => {
    const envelope = encrypt('bar', PW, 'prod');
    const python = await ansiblePython(
      `import json, sys
from ansible.cli.vault import VaultCLI
a = json.load(sys.stdin)
sys.stdout.write(VaultCLI.format_ciphertext_yaml(a['envelope'].encode(), name=a['name']))`,
      { envelope, name: 'foo' },
    );
    assert.equal(formatInline(envelope, 'foo'), python);
  });
});

describe('files written by hostctl are read by ansible-vault', () => {
  const plaintexts = ['db_password: s3cret\n', 'no final newline', 'ünïcödé ✓\n', Buffer.from([0, 1, 2, 255, 254, 10]).toString('latin1')];

  it('without a vault id (1.1)', async (t) => {
    const dir = await tempDir(t);
    const pw = await passwordFile(dir, PW);
    for (const [i, text] of plaintexts.entries()) {
      const bytes = Buffer.from(text, 'latin1');
      const file = join(dir, `f${i}.yml`);
      await writeFile(file, encrypt(bytes, PW));
      const ansible = await ansibleVault(dir, ['decrypt', '--vault-password-file', pw, '--output', '-', file]);
      assert.equal(ansible.exitCode, 0, ansible.stderr);
      assert.deepEqual(ansible.stdout, bytes);
    }
    const view = await ansibleVault(dir, ['view', '--vault-password-file', pw, join(dir, 'f0.yml')]);
    assert.equal(view.stdout.toString('utf8'), 'db_password: s3cret\n');
  });

  it('with vault ids (1.2): ansible-vault picks the password by id', async (t) => {
    const dir = await tempDir(t);
    const prodPw = await passwordFile(dir, 'prod-password');
    const devPw = await passwordFile(dir, 'dev-password');
    const file = join(dir, 'prod.yml');
    await writeFile(file, encrypt('env: prod\n', 'prod-password', 'prod'));
    assert.match(await readFile(file, 'utf8'), /^\$ANSIBLE_VAULT;1\.2;AES256;prod\n/);
    const ansible = await ansibleVault(dir, ['view', '--vault-id', `dev@${devPw}`, '--vault-id', `prod@${prodPw}`, file]);
    assert.equal(ansible.exitCode, 0, ansible.stderr);
    assert.equal(ansible.stdout.toString('utf8'), 'env: prod\n');
    const wrong = await ansibleVault(dir, ['view', '--vault-id', `prod@${devPw}`, file]);
    assert.notEqual(wrong.exitCode, 0, 'the dev password must not open the prod file');
  });

  it('inline !vault values: Ansible itself reads them as variables', async (t) => {
    const dir = await tempDir(t);
    const pw = await passwordFile(dir, PW);
    const prodPw = await passwordFile(dir, 'prod-password');
    const varsFile = join(dir, 'vars.yml');
    const multiline = 'line one\nline "two" \\ \n';
    await writeFile(
      varsFile,
      [
        encryptString('hunter2', PW, { name: 'db_password' }),
        encryptString(multiline, PW, { name: 'multi' }),
        encryptString('prod-secret', 'prod-password', { name: 'prod_token', id: 'prod' }),
        'plain: 1',
        '',
      ].join('\n'),
    );
    const passwordArgs = ['--vault-id', `default@${pw}`, '--vault-id', `prod@${prodPw}`];
    assert.equal(await ansibleDebug(dir, varsFile, 'db_password', passwordArgs), 'hunter2');
    assert.equal(await ansibleDebug(dir, varsFile, 'multi', passwordArgs), multiline);
    assert.equal(await ansibleDebug(dir, varsFile, 'prod_token', passwordArgs), 'prod-secret');
  });

  it('hostctl vault encrypt-string output pasted into a vars file is read by Ansible', async (t) => {
    const dir = await tempDir(t);
    const pw = await passwordFile(dir, PW);
    const cli = captureIo(dir, 'from stdin\n');
    assert.equal(await run(['encrypt-string', '--vault-password-file', pw, '--stdin-name', 'api_key'], cli.io), 0);
    const varsFile = join(dir, 'vars.yml');
    await writeFile(varsFile, cli.stdout());
    assert.equal(await ansibleDebug(dir, varsFile, 'api_key', ['--vault-password-file', pw]), 'from stdin\n');
  });
});

describe('files written by ansible-vault are read by hostctl', () => {
  it('encrypt, with and without a vault id', async (t) => {
    const dir = await tempDir(t);
    const pw = await passwordFile(dir, PW);
    const prodPw = await passwordFile(dir, 'prod-password');
    const plain = join(dir, 'plain.yml');
    const withId = join(dir, 'with-id.yml');
    await writeFile(plain, 'a: 1\nb: [x, y]\n');
    await writeFile(withId, 'token: abc\n');
    assert.equal((await ansibleVault(dir, ['encrypt', '--vault-password-file', pw, plain])).exitCode, 0);
    assert.equal((await ansibleVault(dir, ['encrypt', '--vault-id', `prod@${prodPw}`, withId])).exitCode, 0);
    const keyring = new Keyring([...Keyring.of('prod-password', 'prod').entries, ...Keyring.of(PW).entries]);
    assert.equal(decryptText(await readFile(plain, 'utf8'), keyring, plain), 'a: 1\nb: [x, y]\n');
    const text = await readFile(withId, 'utf8');
    assert.equal(parseEnvelope(text, { where: withId }).vaultId, 'prod');
    const opened = openVault(text, keyring, { where: withId });
    assert.equal(opened.plaintext.toString(), 'token: abc\n');
    assert.equal(opened.password.id, 'prod');
  });

  it('encrypt_string values, with and without a vault id', async (t) => {
    const dir = await tempDir(t);
    const pw = await passwordFile(dir, PW);
    const prodPw = await passwordFile(dir, 'prod-password');
    const a = await ansibleVault(dir, ['encrypt_string', '--vault-password-file', pw, '--stdin-name', 'one'], 'first value');
    const b = await ansibleVault(dir, ['encrypt_string', '--vault-id', `prod@${prodPw}`, '--stdin-name', 'two'], 'second\nvalue\n');
    assert.equal(a.exitCode, 0, a.stderr);
    assert.equal(b.exitCode, 0, b.stderr);
    const data = parse(`${a.stdout}\n${b.stdout}\n`, { customTags: [vaultTag] }) as Record<string, VaultedValue>;
    const keyring = new Keyring([...Keyring.of(PW).entries, ...Keyring.of('prod-password', 'prod').entries]);
    assert.equal(decryptValue(data['one']!, keyring, 'vars.yml: one').reveal(), 'first value');
    assert.equal(decryptValue(data['two']!, keyring, 'vars.yml: two').reveal(), 'second\nvalue\n');
  });
});

describe('rekey round trip', () => {
  it('ansible-vault -> hostctl rekey (new id) -> ansible-vault view -> ansible-vault rekey -> hostctl view', async (t) => {
    const dir = await tempDir(t);
    const oldPw = await passwordFile(dir, 'old-password');
    const newPw = await passwordFile(dir, 'new-password');
    const lastPw = await passwordFile(dir, 'last-password');
    const file = join(dir, 'secrets.yml');
    await writeFile(file, 'api: token\n', { mode: 0o640 });
    assert.equal((await ansibleVault(dir, ['encrypt', '--vault-password-file', oldPw, file])).exitCode, 0);

    const cli = captureIo(dir);
    assert.equal(await run(['rekey', '--vault-password-file', oldPw, '--new-vault-id', `ops@${newPw}`, 'secrets.yml'], cli.io), 0);
    assert.match(await readFile(file, 'utf8'), /^\$ANSIBLE_VAULT;1\.2;AES256;ops\n/);
    const viewed = await ansibleVault(dir, ['view', '--vault-id', `ops@${newPw}`, file]);
    assert.equal(viewed.stdout.toString(), 'api: token\n', viewed.stderr);
    assert.notEqual((await ansibleVault(dir, ['view', '--vault-password-file', oldPw, file])).exitCode, 0, 'the old password no longer opens it');

    const back = await ansibleVault(dir, ['rekey', '--vault-id', `ops@${newPw}`, '--new-vault-password-file', lastPw, file]);
    assert.equal(back.exitCode, 0, back.stderr);
    const out = captureIo(dir);
    assert.equal(await run(['view', '--vault-password-file', lastPw, 'secrets.yml'], out.io), 0);
    assert.equal(out.stdout().toString(), 'api: token\n');
  });
});
