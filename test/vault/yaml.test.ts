import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { LineCounter, parse, parseDocument, stringify } from 'yaml';
import { describeError, HostctlError } from '../../src/core/errors.js';
import { MASK, isSecret, redact } from '../../src/core/secret.js';
import {
  Keyring,
  VaultedValue,
  decryptText,
  decryptTree,
  decryptValue,
  encrypt,
  secretLeaves,
  encryptString,
  locateVaultedValues,
  vaultTag,
} from '../../src/vault/index.js';
import { vector } from './fixtures/helpers.js';

const load = (text: string) => parse(text, { customTags: [vaultTag] }) as Record<string, unknown>;

function failure(fn: () => unknown): HostctlError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof HostctlError);
    assert.equal(error.kind, 'input');
    return error;
  }
  assert.fail('expected an error');
}

describe('the !vault tag', () => {
  it('parses inline values into markers without needing a password', async () => {
    const data = load(await readFile(vector('inline_1_2_ids.yml'), 'utf8'));
    for (const key of Object.keys(data)) assert.ok(data[key] instanceof VaultedValue, key);
    // the marker prints as a tag, not as its envelope
    assert.equal(String(data['vault_encrypted_example2_hello']), '!vault');
    assert.equal(JSON.stringify({ a: data['vault_encrypted_example2_hello'] }), '{"a":"!vault"}');
  });

  it('decrypts the ansible-core inline vectors into Secrets with their origin', async () => {
    const file = 'vectors/inline_1_1.yml';
    const data = load(await readFile(vector('inline_1_1.yml'), 'utf8'));
    const keyring = Keyring.of('test-vault-password');
    const multi = decryptValue(data['vault_encrypted_var'] as VaultedValue, keyring, `${file}: vault_encrypted_var`);
    const one = decryptValue(data['vault_encrypted_one_line_var'] as VaultedValue, keyring, `${file}: vault_encrypted_one_line_var`);
    assert.ok(isSecret(multi));
    assert.equal(multi.reveal(), 'Setec Astronomy\n');
    assert.equal(one.reveal(), 'Setec Astronomy');
    assert.equal(multi.origin, `${file}: vault_encrypted_var`);
    // a decrypted value never prints, and is scrubbed from any output text
    assert.throws(() => String(multi), /was used as text/);
    assert.equal(inspect({ multi }), `{ multi: ${MASK} }`);
    assert.equal(redact('password is Setec Astronomy!'), `password is ${MASK}!`);
  });

  it('picks each value\'s password by its vault id (inline_1_2_ids.yml)', async () => {
    const data = load(await readFile(vector('inline_1_2_ids.yml'), 'utf8'));
    const keyring = new Keyring([...Keyring.of('example1', 'example1').entries, ...Keyring.of('example2', 'example2').entries]);
    assert.equal(decryptValue(data['vault_encrypted_example2_hello'] as VaultedValue, keyring, 'f: hello').reveal(), 'Hello world');
    const releases = decryptValue(data['vault_encrypted_example1_releases'] as VaultedValue, keyring, 'f: releases').reveal();
    assert.ok(releases.startsWith('Ansible Releases at a Glance\n'));
    // the value without a known password fails only when asked for, naming file and key
    const error = failure(() => decryptValue(data['vault_encrypted_example4_unknown_password'] as VaultedValue, keyring, 'f.yml: vault_encrypted_example4_unknown_password'));
    assert.equal(error.where, 'f.yml: vault_encrypted_example4_unknown_password');
    assert.match(describeError(error), /^f\.yml: vault_encrypted_example4_unknown_password: the vault password does not match: tried vault id "example1" \(the API\), vault id "example2" \(the API\)$/m);
  });

  it('no password: the error names file and key and how to pass a password', () => {
    const data = load(`db_password: ${encryptString('s3cret', 'pw', { indent: 2 })}\n`);
    const error = failure(() => decryptValue(data['db_password'] as VaultedValue, new Keyring(), 'group_vars/all.yml: db_password'));
    assert.equal(
      describeError(error).split('\n')[0],
      'group_vars/all.yml: db_password: vault-encrypted, but no vault password was given',
    );
    assert.match(error.hint ?? '', /--vault-password-file FILE/);
  });

  it('locateVaultedValues gives damage errors the line of the YAML file', () => {
    const block = encryptString('value', 'pw', { name: 'token' }).split('\n');
    block[3] = block[3]!.replace(/[0-9a-f]{4}$/, 'XYZW');
    const text = ['# vars', 'plain: 1', ...block, 'after: 2', ''].join('\n');
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { customTags: [vaultTag], lineCounter });
    locateVaultedValues(doc, lineCounter);
    const data = doc.toJS() as Record<string, unknown>;
    const vaulted = data['token'] as VaultedValue;
    assert.equal(vaulted.line, 4, 'the $ANSIBLE_VAULT line of the file');
    const error = failure(() => decryptValue(vaulted, Keyring.of('pw'), 'host_vars/a.yml: token'));
    // block[3] is file line 6 (two lines before the block, the key line is block[0])
    assert.match(describeError(error), /^host_vars\/a\.yml: token: the vault text is damaged: line 6 column \d+ is not hexadecimal/);
    // without locating, the line is relative to the value
    const bare = failure(() => decryptValue(load(text)['token'] as VaultedValue, Keyring.of('pw'), 'x: token'));
    assert.match(bare.message, /line 3 of the vault value/);
  });

  it('decryptTree replaces every marker, with the key path in the origin', () => {
    const pw = 'pw';
    const yamlText = [
      `top: ${encryptString('a', pw, { indent: 4 })}`,
      'nested:',
      `  inner: ${encryptString('b', pw, { indent: 4 })}`,
      'list:',
      `  - ${encryptString('c', pw, { indent: 4 })}`,
      'plain: 3',
      '',
    ].join('\n');
    const tree = decryptTree(load(yamlText), Keyring.of(pw), 'vars.yml') as Record<string, any>;
    assert.equal(tree['top'].reveal(), 'a');
    assert.equal(tree['nested'].inner.reveal(), 'b');
    assert.equal(tree['nested'].inner.origin, 'vars.yml: nested.inner');
    assert.equal(tree['list'][0].origin, 'vars.yml: list[0]');
    assert.equal(tree['plain'], 3);
  });

  it('secretLeaves makes every leaf of a whole vault file a Secret, numbers and booleans typed', () => {
    const plain = decryptText(encrypt('db:\n  user: app\n  password: very-secret\nport: 5432\ntls: false\n', 'pw'), Keyring.of('pw'), 'vault.yml');
    const tree = secretLeaves(parse(plain), 'vault.yml') as any;
    assert.equal(tree.db.password.reveal(), 'very-secret');
    assert.equal(tree.db.password.origin, 'vault.yml: db.password');
    assert.equal(inspect(tree.db.user), MASK);
    assert.ok(isSecret(tree.port) && tree.port.revealTyped() === 5432 && tree.port.origin === 'vault.yml: port');
    assert.ok(isSecret(tree.tls) && tree.tls.revealTyped() === false);
    assert.equal(JSON.stringify(tree), `{"db":{"user":"${MASK}","password":"${MASK}"},"port":"${MASK}","tls":"${MASK}"}`);
  });

  it('stringifies a marker back into a !vault block that parses to the same envelope', () => {
    const inline = load(`k: ${encryptString('v', 'pw')}\n`)['k'] as VaultedValue;
    const text = stringify({ group: { k: inline } }, { customTags: [vaultTag] });
    assert.match(text, /^group:\n {2}k: !vault \|\n {4}\$ANSIBLE_VAULT;1\.1;AES256\n/);
    const back = (parse(text, { customTags: [vaultTag] }) as any).group.k as VaultedValue;
    assert.equal(back.envelope, inline.envelope);
    assert.equal(decryptValue(back, Keyring.of('pw'), 'x').reveal(), 'v');
  });
});

describe('encryptString', () => {
  it('prints the block as ansible-vault encrypt_string does', () => {
    const block = encryptString('bar', 'pw', { name: 'foo' });
    const lines = block.split('\n');
    assert.equal(lines[0], 'foo: !vault |');
    assert.equal(lines[1], '          $ANSIBLE_VAULT;1.1;AES256');
    for (const line of lines.slice(2)) assert.match(line, /^ {10}[0-9a-f]{1,80}$/);
    assert.ok(!block.endsWith('\n'), 'no final newline, like ansible-vault');
    assert.equal(encryptString('bar', 'pw').split('\n')[0], '!vault |');
    assert.equal(encryptString('bar', 'pw', { id: 'prod' }).split('\n')[1], '          $ANSIBLE_VAULT;1.2;AES256;prod');
  });
});
