import { createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { inputError } from '../core/errors.js';

// The Ansible Vault envelope (ansible-core lib/ansible/parsing/vault/__init__.py), byte for byte:
//   "$ANSIBLE_VAULT;1.1;AES256" | "$ANSIBLE_VAULT;1.2;AES256;<vault id>"
//   then hex(hex(salt) "\n" hex(hmac) "\n" hex(ciphertext)) wrapped at 80 columns, "\n" at the end.
// Keys: PBKDF2-HMAC-SHA256(password, salt, 10000, 80) = aesKey[32] | hmacKey[32] | counter[16];
// AES-256-CTR over the PKCS#7-padded plaintext; HMAC-SHA256(hmacKey, ciphertext).

export const VAULT_HEADER = '$ANSIBLE_VAULT';
// The label Ansible gives a password that has none (`--vault-password-file`, `--ask-vault-pass`);
// encrypting with it writes a 1.1 header without an id.
export const DEFAULT_VAULT_ID = 'default';

const ITERATIONS = 10000;
const KEY_LENGTH = 32;
const COUNTER_LENGTH = 16;
const SALT_LENGTH = 32;
const HMAC_LENGTH = 32;
const BLOCK = 16;
const LINE_WIDTH = 80;

export type VaultVersion = '1.1' | '1.2';

// A parsed envelope: everything needed to check a password and decrypt, nothing secret.
export interface Envelope {
  readonly version: VaultVersion;
  readonly cipher: 'AES256';
  // The id from a 1.2 header (only a hint for picking the password: it is not authenticated).
  readonly vaultId: string | undefined;
  readonly salt: Buffer;
  readonly hmac: Buffer;
  readonly ciphertext: Buffer;
}

// Where an envelope came from, for messages: `where` is "file" or "file: key"; `firstLine` is the
// file's line number of the "$ANSIBLE_VAULT" header when known (whole files: 1).
export interface EnvelopeSource {
  readonly where: string;
  readonly firstLine?: number | undefined;
}

const CONFLICT_MARKERS = ['<<<<<<<', '=======', '>>>>>>>', '|||||||'] as const;

// True when a text is a vault envelope (what ansible's is_encrypted checks: the header prefix).
export function looksEncrypted(text: string | Buffer): boolean {
  const head = typeof text === 'string' ? text.slice(0, VAULT_HEADER.length) : text.subarray(0, VAULT_HEADER.length).toString('latin1');
  return head === VAULT_HEADER;
}

// The first merge-conflict marker line in a text (1-based index in the text), if any.
export function findConflictMarker(text: string): { line: number; marker: string } | undefined {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trimStart();
    for (const marker of CONFLICT_MARKERS) {
      if (line.startsWith(marker) && (line.length === marker.length || line[marker.length] === ' ')) {
        return { line: i + 1, marker };
      }
    }
  }
  return undefined;
}

const damagedHint =
  'the vault text was cut or edited by hand: restore it from version control (or re-create it with `hostctl vault encrypt`)';

// "line 7" for whole files, "line 3 of the vault value" when the value's place in the file is unknown.
function lineLabel(source: EnvelopeSource, index: number): string {
  return source.firstLine !== undefined ? `line ${source.firstLine + index}` : `line ${index + 1} of the vault value`;
}

// Parse an envelope; every way it can be damaged is an input error that says where and how.
export function parseEnvelope(text: string, source: EnvelopeSource): Envelope {
  const { where } = source;
  const conflict = findConflictMarker(text);
  if (conflict) {
    throw inputError(`merge conflict marker "${conflict.marker}" at ${lineLabel(source, conflict.line - 1)}: a vault text cannot be merged line by line`, {
      where,
      hint:
        'keep one side whole (e.g. `git checkout --ours -- FILE` or `--theirs`), then re-apply the other side\'s change with `hostctl vault edit` (or `ansible-vault edit`)',
    });
  }
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').trim();
  const parts = header.split(';').map((part) => part.trim());
  if (parts[0] !== VAULT_HEADER) {
    throw inputError(`not an Ansible Vault text: the first line must start with "${VAULT_HEADER};"`, { where });
  }
  if (parts.length < 3) {
    throw inputError(`the vault header "${header}" is incomplete: expected "${VAULT_HEADER};1.1;AES256" or "${VAULT_HEADER};1.2;AES256;<vault id>"`, {
      where,
      hint: damagedHint,
    });
  }
  const version = parts[1] ?? '';
  const cipher = parts[2] ?? '';
  if (version !== '1.1' && version !== '1.2') {
    throw inputError(`unsupported vault format version "${version}": hostctl reads versions 1.1 and 1.2`, {
      where,
      hint:
        version === '1.0'
          ? 'format 1.0 (cipher AES) is from Ansible before 2.0: rekey it with an old ansible-vault that still reads it'
          : 'was it written by a newer tool? re-encrypt it with `ansible-vault rekey` or `hostctl vault rekey`',
    });
  }
  if (cipher !== 'AES256') {
    throw inputError(`unsupported vault cipher "${cipher}": hostctl reads AES256 only`, {
      where,
      hint: 'decrypt it with the tool that wrote it and encrypt it again with `hostctl vault encrypt`',
    });
  }
  // Like Ansible: a fourth field is the vault id whatever the version says.
  const vaultId = parts.length >= 4 && parts[3] !== '' ? parts[3] : undefined;

  let hex = '';
  for (let i = 1; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    const bad = line.search(/[^0-9a-fA-F]/);
    if (bad >= 0) {
      throw inputError(`the vault text is damaged: ${lineLabel(source, i)} column ${bad + 1} is not hexadecimal`, {
        where,
        hint: damagedHint,
      });
    }
    hex += line;
  }
  if (hex.length === 0) throw inputError('the vault text is damaged: there is no data after the header', { where, hint: damagedHint });
  if (hex.length % 2 !== 0) {
    throw inputError('the vault text is damaged: an odd number of hex digits (the text was cut short)', { where, hint: damagedHint });
  }
  const inner = Buffer.from(hex, 'hex').toString('latin1').split('\n');
  const damaged = (what: string) => inputError(`the vault text is damaged: ${what}`, { where, hint: damagedHint });
  if (inner.length !== 3) throw damaged(`expected salt, HMAC and ciphertext, found ${inner.length} part(s)`);
  const [saltHex, hmacHex, ciphertextHex] = inner as [string, string, string];
  const isHex = (s: string) => s.length > 0 && s.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(s);
  if (!isHex(saltHex)) throw damaged('the salt is not hexadecimal');
  if (!isHex(hmacHex) || hmacHex.length !== HMAC_LENGTH * 2) throw damaged(`the HMAC is not ${HMAC_LENGTH} bytes of hex`);
  if (!isHex(ciphertextHex)) throw damaged('the ciphertext is not hexadecimal');
  const ciphertext = Buffer.from(ciphertextHex, 'hex');
  if (ciphertext.length % BLOCK !== 0) throw damaged(`the ciphertext length ${ciphertext.length} is not a multiple of ${BLOCK}`);
  return {
    version,
    cipher: 'AES256',
    vaultId,
    salt: Buffer.from(saltHex, 'hex'),
    hmac: Buffer.from(hmacHex, 'hex'),
    ciphertext,
  };
}

interface Keys {
  aesKey: Buffer;
  hmacKey: Buffer;
  counter: Buffer;
}

function splitKeys(dk: Buffer): Keys {
  return {
    aesKey: dk.subarray(0, KEY_LENGTH),
    hmacKey: dk.subarray(KEY_LENGTH, 2 * KEY_LENGTH),
    counter: dk.subarray(2 * KEY_LENGTH),
  };
}

function deriveKeys(password: string | Buffer, salt: Buffer): Keys {
  return splitKeys(pbkdf2Sync(password, salt, ITERATIONS, 2 * KEY_LENGTH + COUNTER_LENGTH, 'sha256'));
}

// Decrypt with one password. `undefined` means the HMAC did not match (wrong password, or the
// ciphertext was altered): nothing is decrypted before the HMAC is checked, in constant time.
export function decryptEnvelope(envelope: Envelope, password: string | Buffer, where: string): Buffer | undefined {
  return decryptWithKeys(envelope, deriveKeys(password, envelope.salt), where);
}

function decryptWithKeys(envelope: Envelope, keys: Keys, where: string): Buffer | undefined {
  const expected = createHmac('sha256', keys.hmacKey).update(envelope.ciphertext).digest();
  if (expected.length !== envelope.hmac.length || !timingSafeEqual(expected, envelope.hmac)) return undefined;
  const decipher = createDecipheriv('aes-256-ctr', keys.aesKey, keys.counter);
  const padded = Buffer.concat([decipher.update(envelope.ciphertext), decipher.final()]);
  const pad = padded[padded.length - 1] ?? 0;
  if (pad < 1 || pad > BLOCK || pad > padded.length || !padded.subarray(padded.length - pad).every((b) => b === pad)) {
    throw inputError('the vault text is damaged: the HMAC matches but the padding is invalid', { where, hint: damagedHint });
  }
  return padded.subarray(0, padded.length - pad);
}

// Check a vault id before it goes into a header: ';' splits header fields, and whitespace at the
// ends would be stripped by every reader.
export function checkVaultId(id: string, where = 'vault id'): void {
  if (id === '' || /[;\s]/.test(id) || /[^\x21-\x7e]/.test(id)) {
    throw inputError(`"${id}" is not a valid vault id: use printable ASCII without ';' or spaces`, { where });
  }
}

// Encrypt bytes into a full envelope (header, 80-column hex, final newline), as ansible-vault writes
// it. A vault id other than "default" gives a 1.2 header carrying the id.
export function encryptEnvelope(plaintext: Buffer, password: string | Buffer, vaultId?: string, salt: Buffer = randomBytes(SALT_LENGTH)): string {
  const keys = deriveKeys(password, salt);
  const pad = BLOCK - (plaintext.length % BLOCK);
  const padded = Buffer.concat([plaintext, Buffer.alloc(pad, pad)]);
  const cipher = createCipheriv('aes-256-ctr', keys.aesKey, keys.counter);
  const ciphertext = Buffer.concat([cipher.update(padded), cipher.final()]);
  const hmac = createHmac('sha256', keys.hmacKey).update(ciphertext).digest();
  const inner = `${salt.toString('hex')}\n${hmac.toString('hex')}\n${ciphertext.toString('hex')}`;
  const outer = Buffer.from(inner, 'latin1').toString('hex');
  let header = `${VAULT_HEADER};1.1;AES256`;
  if (vaultId !== undefined && vaultId !== DEFAULT_VAULT_ID) {
    checkVaultId(vaultId);
    header = `${VAULT_HEADER};1.2;AES256;${vaultId}`;
  }
  const lines = [header];
  for (let i = 0; i < outer.length; i += LINE_WIDTH) lines.push(outer.slice(i, i + LINE_WIDTH));
  return `${lines.join('\n')}\n`;
}
