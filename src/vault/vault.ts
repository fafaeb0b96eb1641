import { inputError } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import {
  DEFAULT_VAULT_ID,
  decryptEnvelope,
  encryptEnvelope,
  looksEncrypted,
  parseEnvelope,
  VAULT_HEADER,
  type Envelope,
  type EnvelopeSource,
} from './format.js';
import type { Keyring, VaultPassword } from './keyring.js';

// What a successful decryption gives: the bytes, the password that opened them and the envelope
// (whose id an edit keeps when it writes the file back).
export interface Opened {
  readonly plaintext: Buffer;
  readonly password: VaultPassword;
  readonly envelope: Envelope;
}

const passwordHint =
  'pass --vault-password-file FILE (or --vault-id LABEL@FILE, or --ask-vault-pass), or set HOSTCTL_VAULT_PASSWORD_FILE';

// True when a file's text is a vault envelope, so the loader decrypts it before parsing YAML. A file
// whose first line is a merge-conflict marker followed by the vault header counts too, so that
// decryptText can say "merge conflict" instead of YAML failing on hex.
export function isVaultText(text: string | Buffer): boolean {
  if (looksEncrypted(text)) return true;
  const head = (typeof text === 'string' ? text.slice(0, 512) : text.subarray(0, 512).toString('latin1')).split(/\r?\n/, 2);
  return (head[0] ?? '').startsWith('<<<<<<<') && (head[1] ?? '').startsWith(VAULT_HEADER);
}

// Decrypt one envelope with the keyring: the passwords labelled with the envelope's id first, then
// the others. Errors say whether no password was given, none matched (and which were tried), or
// the text is damaged; they never contain a password or plaintext.
export function openVault(text: string, keyring: Keyring, source: EnvelopeSource): Opened {
  const { envelope, candidates } = prepare(text, keyring, source);
  for (const password of candidates) {
    const plaintext = decryptEnvelope(envelope, password.secret.reveal(), source.where);
    if (plaintext) return { plaintext, password, envelope };
  }
  throw mismatch(envelope, keyring, candidates, source);
}

function prepare(text: string, keyring: Keyring, source: EnvelopeSource) {
  const envelope = parseEnvelope(text, source);
  const id = envelope.vaultId;
  if (keyring.size === 0) {
    throw inputError(`vault-encrypted${id ? ` with vault id "${id}"` : ''}, but no vault password was given`, {
      where: source.where,
      hint: id ? `pass --vault-id ${id}@FILE (or ${id}@prompt), or ${passwordHint}` : passwordHint,
    });
  }
  return { envelope, candidates: keyring.candidates(id) };
}

function mismatch(envelope: Envelope, keyring: Keyring, candidates: VaultPassword[], source: EnvelopeSource) {
  const id = envelope.vaultId;
  const known = id !== undefined && keyring.entries.some((entry) => entry.id === id);
  return inputError(`the vault password does not match: tried ${keyring.describe(candidates)}`, {
    where: source.where,
    hint:
      id !== undefined && !known
        ? `it was encrypted with vault id "${id}": pass that password with --vault-id ${id}@FILE (or ${id}@prompt)`
        : 'use the password it was encrypted with; if that is the one you gave, the vault text was altered after encryption (its HMAC does not match)',
  });
}

// Decrypt a whole vault file's text (the loader calls this when isVaultText is true).
export function decryptText(text: string, keyring: Keyring, file: string): string {
  return openVault(text, keyring, { where: file, firstLine: 1 }).plaintext.toString('utf8');
}

// Decrypt a whole vault file's text into a Secret (for files that are one secret, e.g. a key).
export function decryptSecret(text: string, keyring: Keyring, file: string): Secret {
  return new Secret(decryptText(text, keyring, file), file);
}

// Encrypt into a whole-file envelope, as `ansible-vault encrypt` writes it (1.2 with a vault id
// other than "default", else 1.1). Refuses text that is already a vault envelope; `where` names
// the input in that error.
export function encrypt(plaintext: string | Buffer, password: string | Secret, id?: string, where?: string): string {
  const bytes = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
  if (isVaultText(bytes)) throw inputError('already vault-encrypted', { where, hint: 'use `hostctl vault rekey` to change its password' });
  const secret = typeof password === 'string' ? password : password.reveal();
  if (secret.length === 0) throw inputError('an empty vault password is not allowed');
  return encryptEnvelope(bytes, secret, id === DEFAULT_VAULT_ID ? undefined : id);
}

export interface EncryptStringOptions {
  // The variable name: the block starts "name: !vault |".
  readonly name?: string | undefined;
  // The vault id label (1.2 header) unless "default".
  readonly id?: string | undefined;
  // Spaces before each envelope line; ansible-vault uses 10.
  readonly indent?: number;
}

// An inline `!vault |` YAML value exactly as `ansible-vault encrypt_string` prints it (no newline
// at the end).
export function encryptString(plaintext: string, password: string | Secret, options: EncryptStringOptions = {}): string {
  const envelope = encrypt(plaintext, password, options.id);
  return formatInline(envelope, options.name, options.indent);
}

// Turn a whole-file envelope into the inline block form.
export function formatInline(envelope: string, name?: string, indent = 10): string {
  const lines = [`${name ? `${name}: ` : ''}!vault |`];
  for (const line of envelope.split('\n')) if (line !== '') lines.push(`${' '.repeat(indent)}${line}`);
  return lines.join('\n');
}
