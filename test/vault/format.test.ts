import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { describeError, HostctlError, exitCodes } from '../../src/core/errors.js';
import {
  Keyring,
  decryptText,
  encrypt,
  encryptEnvelope,
  isVaultText,
  openVault,
  parseEnvelope,
  type VaultPassword,
} from '../../src/vault/index.js';
import { Secret } from '../../src/core/secret.js';
import { vector, VECTOR_PLAINTEXTS } from './fixtures/helpers.js';

const PW = 'test-vault-password';

// Run fn, expect an input error, return what the user would see (describeError) and the error.
function inputFailure(fn: () => unknown): { text: string; error: HostctlError } {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof HostctlError, `expected a HostctlError, got ${String(error)}`);
    assert.equal(error.kind, 'input');
    assert.equal(exitCodes[error.kind], 5);
    return { text: describeError(error), error };
  }
  assert.fail('expected an error');
}

describe('reading what Ansible wrote (ansible-core test vectors)', () => {
  for (const [file, plaintext] of VECTOR_PLAINTEXTS) {
    it(`decrypts ${file}`, async () => {
      const text = await readFile(vector(file), 'utf8');
      assert.equal(isVaultText(text), true);
      assert.equal(decryptText(text, Keyring.of(PW), file), plaintext);
    });
  }

  it('reads the 1.2 header id', async () => {
    const envelope = parseEnvelope(await readFile(vector('format_1_2_AES256.yml'), 'utf8'), { where: 'x' });
    assert.equal(envelope.version, '1.2');
    assert.equal(envelope.vaultId, 'test_vault_id');
    assert.equal(envelope.salt.length, 32);
    const v11 = parseEnvelope(await readFile(vector('format_1_1_AES256.yml'), 'utf8'), { where: 'x' });
    assert.equal(v11.version, '1.1');
    assert.equal(v11.vaultId, undefined);
  });

  it('is not fooled by plain YAML', () => {
    assert.equal(isVaultText('a: 1\n'), false);
    assert.equal(isVaultText('# $ANSIBLE_VAULT;1.1;AES256\n'), false);
  });
});

describe('writing', () => {
  it('writes the byte layout ansible-vault writes', () => {
    const text = encrypt('x'.repeat(100), 'pw');
    const lines = text.split('\n');
    assert.equal(lines[0], '$ANSIBLE_VAULT;1.1;AES256');
    assert.equal(lines.at(-1), '', 'ends with one newline');
    const body = lines.slice(1, -1);
    for (const line of body.slice(0, -1)) assert.equal(line.length, 80);
    assert.ok(body.at(-1)!.length <= 80 && body.at(-1)!.length > 0);
    assert.match(body.join(''), /^[0-9a-f]+$/, 'lowercase hex');
    const inner = Buffer.from(body.join(''), 'hex').toString('latin1').split('\n');
    assert.equal(inner.length, 3);
    assert.equal(inner[0]!.length, 64, '32-byte salt');
    assert.equal(inner[1]!.length, 64, '32-byte HMAC');
    // 100 bytes padded to 112 (PKCS#7 even though CTR needs none)
    assert.equal(inner[2]!.length, 112 * 2);
  });

  it('pads a block-sized plaintext with a whole block', () => {
    const text = encrypt(Buffer.alloc(16, 1), 'pw');
    assert.equal(parseEnvelope(text, { where: 'x' }).ciphertext.length, 32);
    assert.deepEqual(openVault(text, Keyring.of('pw'), { where: 'x' }).plaintext, Buffer.alloc(16, 1));
  });

  it('is deterministic for a given salt and differs per salt', () => {
    const salt = Buffer.alloc(32, 7);
    const a = encryptEnvelope(Buffer.from('same'), 'pw', undefined, salt);
    assert.equal(a, encryptEnvelope(Buffer.from('same'), 'pw', undefined, salt));
    assert.notEqual(encrypt('same', 'pw'), encrypt('same', 'pw'));
  });

  it('writes a 1.2 header only for an id other than "default"', () => {
    assert.match(encrypt('a', 'pw', 'prod'), /^\$ANSIBLE_VAULT;1\.2;AES256;prod\n/);
    assert.match(encrypt('a', 'pw', 'default'), /^\$ANSIBLE_VAULT;1\.1;AES256\n/);
    assert.match(encrypt('a', 'pw'), /^\$ANSIBLE_VAULT;1\.1;AES256\n/);
  });

  it('round-trips binary data and UTF-8', () => {
    const bytes = Buffer.from([0, 255, 10, 13, 128, 1]);
    assert.deepEqual(openVault(encrypt(bytes, 'pw'), Keyring.of('pw'), { where: 'x' }).plaintext, bytes);
    assert.equal(decryptText(encrypt('grüße ✓\n', 'pässwört'), Keyring.of('pässwört'), 'x'), 'grüße ✓\n');
  });

  it('refuses an id that would break the header, an empty password, and double encryption', () => {
    assert.match(inputFailure(() => encrypt('a', 'pw', 'a;b')).text, /not a valid vault id/);
    assert.match(inputFailure(() => encrypt('a', 'pw', 'has space')).text, /not a valid vault id/);
    assert.match(inputFailure(() => encrypt('a', '')).text, /empty vault password/);
    assert.match(inputFailure(() => encrypt(encrypt('a', 'pw'), 'pw')).text, /already vault-encrypted/);
  });
});

describe('choosing the password', () => {
  const entry = (id: string, password: string): VaultPassword => ({ id, source: `test ${id}`, secret: new Secret(password, id) });

  it('tries the password labelled with the envelope id first, then the others', () => {
    const keyring = new Keyring([entry('a', 'pa'), entry('b', 'pb'), entry('default', 'pd')]);
    assert.deepEqual(keyring.candidates('b').map((e) => e.id), ['b', 'a', 'default']);
    assert.deepEqual(keyring.candidates(undefined).map((e) => e.id), ['default', 'a', 'b']);
    // and the one that opens it is reported, whatever its label
    const opened = openVault(encrypt('x', 'pb', 'other'), keyring, { where: 'f' });
    assert.equal(opened.password.id, 'b');
  });

  it('encrypts with the only id, or the one named by --encrypt-vault-id', () => {
    assert.equal(new Keyring([entry('a', 'pa')]).forEncryption().id, 'a');
    const two = new Keyring([entry('a', 'pa'), entry('b', 'pb')]);
    assert.equal(two.forEncryption('b').id, 'b');
    assert.match(inputFailure(() => two.forEncryption()).text, /vault ids a, b.*\n.*--encrypt-vault-id/);
    assert.match(inputFailure(() => two.forEncryption('c')).text, /--encrypt-vault-id c matches none of the known vault ids \(a, b\)/);
  });
});

describe('errors that help', () => {
  const file = 'inventory/group_vars/all/vault.yml';
  const secretText = 'p4ss-plaintext-value';
  const good = encrypt(`db: ${secretText}\n`, 'right-password');

  it('wrong password: names the file and the vault id tried, never the password or plaintext', () => {
    const { text, error } = inputFailure(() => decryptText(good, Keyring.of('wrong-password', 'default', '--vault-password-file pw.txt'), file));
    assert.equal(error.where, file);
    assert.match(text, new RegExp(`^${file}: the vault password does not match: tried vault id "default" \\(--vault-password-file pw.txt\\)`));
    assert.doesNotMatch(text, /wrong-password|right-password|p4ss/);
  });

  it('wrong password for a 1.2 file without that id: says which id to pass', () => {
    const { text } = inputFailure(() => decryptText(encrypt('x', 'pw', 'prod'), Keyring.of('nope'), file));
    assert.match(text, /encrypted with vault id "prod": pass that password with --vault-id prod@FILE/);
  });

  it('HMAC is checked before decrypting: a tampered ciphertext is a mismatch, not a padding error', () => {
    const envelope = parseEnvelope(good, { where: file });
    const tampered = Buffer.from(envelope.ciphertext);
    tampered[tampered.length - 1]! ^= 0xff; // would break the PKCS#7 padding if it were decrypted
    const inner = `${envelope.salt.toString('hex')}\n${envelope.hmac.toString('hex')}\n${tampered.toString('hex')}`;
    const text = `$ANSIBLE_VAULT;1.1;AES256\n${Buffer.from(inner, 'latin1').toString('hex')}\n`;
    assert.match(inputFailure(() => decryptText(text, Keyring.of('right-password'), file)).text, /the vault password does not match/);
  });

  it('no password given: names the file and says how to pass one', () => {
    const { text, error } = inputFailure(() => decryptText(good, new Keyring(), file));
    assert.equal(error.where, file);
    assert.match(text, new RegExp(`^${file}: vault-encrypted, but no vault password was given`));
    assert.match(text, /--vault-password-file FILE/);
    assert.match(text, /HOSTCTL_VAULT_PASSWORD_FILE/);
    const withId = inputFailure(() => decryptText(encrypt('x', 'pw', 'prod'), new Keyring(), file)).text;
    assert.match(withId, /with vault id "prod", but no vault password was given/);
    assert.match(withId, /--vault-id prod@FILE/);
  });

  it('bad hex: says so with the line number of the file', () => {
    const lines = good.split('\n');
    lines[3] = `${lines[3]!.slice(0, 10)}zz${lines[3]!.slice(12)}`;
    const { text, error } = inputFailure(() => decryptText(lines.join('\n'), Keyring.of('right-password'), file));
    assert.equal(error.where, file);
    assert.match(text, /the vault text is damaged: line 4 column 11 is not hexadecimal/);
    assert.match(text, /hint: .*restore it from version control/);
  });

  it('merge conflict markers: says so and gives the line', () => {
    const other = encrypt(`db: other\n`, 'right-password').split('\n');
    const ours = good.split('\n');
    const conflicted = [ours[0], '<<<<<<< HEAD', ...ours.slice(1, -1), '=======', ...other.slice(1, -1), '>>>>>>> feature', ''].join('\n');
    const { text } = inputFailure(() => decryptText(conflicted, Keyring.of('right-password'), file));
    assert.match(text, new RegExp(`^${file}: merge conflict marker "<<<<<<<" at line 2`));
    assert.match(text, /hint: keep one side whole/);
    // a conflict on the header line itself still reads as a (conflicted) vault file
    const top = ['<<<<<<< HEAD', ...ours.slice(0, -1), '=======', ...other.slice(0, -1), '>>>>>>> x', ''].join('\n');
    assert.equal(isVaultText(top), true);
    assert.match(inputFailure(() => decryptText(top, Keyring.of('right-password'), file)).text, /merge conflict marker "<<<<<<<" at line 1/);
  });

  it('unsupported version, cipher, incomplete header, truncated data: says which', () => {
    const body = good.split('\n').slice(1).join('\n');
    const cases: [string, RegExp][] = [
      [`$ANSIBLE_VAULT;1.0;AES\n${body}`, /unsupported vault format version "1.0": hostctl reads versions 1.1 and 1.2/],
      [`$ANSIBLE_VAULT;2.0;AES256\n${body}`, /unsupported vault format version "2.0"/],
      [`$ANSIBLE_VAULT;1.1;AES128\n${body}`, /unsupported vault cipher "AES128": hostctl reads AES256 only/],
      [`$ANSIBLE_VAULT;1.1\n${body}`, /the vault header "\$ANSIBLE_VAULT;1.1" is incomplete/],
      [good.slice(0, good.length - 2), /odd number of hex digits/],
      [good.split('\n').slice(0, 3).join('\n').slice(0, -1), /odd number of hex digits|damaged/],
      ['$ANSIBLE_VAULT;1.1;AES256\n', /no data after the header/],
      [`$ANSIBLE_VAULT;1.1;AES256\n${Buffer.from('abcd\nef').toString('hex')}\n`, /expected salt, HMAC and ciphertext, found 2/],
    ];
    for (const [text, expected] of cases) {
      const failure = inputFailure(() => decryptText(text, Keyring.of('right-password'), file));
      assert.match(failure.text, expected);
      assert.equal(failure.error.where, file);
    }
  });
});
