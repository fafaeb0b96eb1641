import { isScalar, visit, type Document, type LineCounter, type ScalarTag } from 'yaml';
import { inputError } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import type { Keyring } from './keyring.js';
import { openVault } from './vault.js';

// An inline `!vault |` value as parsed: the envelope text, still encrypted. The loader turns it
// into a Secret with decryptValue once it knows the file and key. `line` is the file line of the
// "$ANSIBLE_VAULT" header when known (set by locateVaultedValues), for "damaged at line N".
export class VaultedValue {
  readonly envelope: string;
  line: number | undefined;

  constructor(envelope: string, line?: number) {
    this.envelope = envelope;
    this.line = line;
  }

  // Printing a tree that holds one must not look like a decrypted value.
  toString(): string {
    return '!vault';
  }

  toJSON(): string {
    return '!vault';
  }
}

export function isVaultedValue(value: unknown): value is VaultedValue {
  return value instanceof VaultedValue;
}

// The yaml v2 custom tag: `parse(text, { customTags: [vaultTag] })`. Parsing never needs a
// password; stringifying a VaultedValue writes the `!vault |` block back.
export const vaultTag: ScalarTag = {
  tag: '!vault',
  identify: (value: unknown) => value instanceof VaultedValue,
  resolve: (value: string) => new VaultedValue(value),
  stringify: (item, ctx) => {
    const value = item.value;
    const envelope = value instanceof VaultedValue ? value.envelope : String(value);
    const lines = envelope.split('\n').filter((line) => line !== '');
    return `|\n${lines.map((line) => `${ctx.indent}${line}`).join('\n')}`;
  },
};

// Record, on every VaultedValue of a parsed document, the file line its envelope starts on. Parse
// with `parseDocument(text, { customTags: [vaultTag], lineCounter })` and call this before toJS().
export function locateVaultedValues(doc: Document, lineCounter: LineCounter): void {
  visit(doc, {
    Scalar(_key, node) {
      if (!isScalar(node) || !(node.value instanceof VaultedValue) || !node.range) return;
      const start = lineCounter.linePos(node.range[0]).line;
      // A block scalar's range starts at its "|" indicator; the text starts on the next line.
      node.value.line = node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED' ? start + 1 : undefined;
    },
  });
}

// Decrypt an inline value into a Secret whose origin is `where` ("file: key"). Errors name that
// place and say what to do; they never include the password or the plaintext.
export function decryptValue(vaulted: VaultedValue, keyring: Keyring, where: string): Secret {
  if (!(vaulted instanceof VaultedValue)) throw inputError('not a !vault value', { where });
  const opened = openVault(vaulted.envelope, keyring, { where, firstLine: vaulted.line });
  return new Secret(opened.plaintext.toString('utf8'), where);
}

// Replace every VaultedValue in a plain JS tree (what doc.toJS() gives) with its Secret. `where`
// is the file; keys are appended as a dotted path ("file: a.b[0]").
export function decryptTree(value: unknown, keyring: Keyring, file: string, path = ''): unknown {
  if (value instanceof VaultedValue) return decryptValue(value, keyring, path ? `${file}: ${path}` : file);
  if (Array.isArray(value)) return value.map((item, i) => decryptTree(item, keyring, file, `${path}[${i}]`));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, decryptTree(item, keyring, file, path ? `${path}.${key}` : key)]),
    );
  }
  return value;
}

// For a whole vault-encrypted vars file (decryptText, then YAML): every leaf becomes a Secret
// whose origin is "file: key.path", so values from an encrypted file are masked like inline
// ones. Numbers and booleans keep their type inside the Secret (revealTyped), so a vaulted
// `pin: 98765432` is masked in `hostctl inventory` and JSON and still validates as a number.
export function secretLeaves(value: unknown, file: string, path = ''): unknown {
  const where = path ? `${file}: ${path}` : file;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return new Secret(value, where);
  // A YAML 1.1 timestamp (`2031-01-01`) parses to a Date: secret as its ISO text.
  if (value instanceof Date) return new Secret(value.toISOString(), where);
  if (Array.isArray(value)) return value.map((item, i) => secretLeaves(item, file, `${path}[${i}]`));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, secretLeaves(item, file, path ? `${path}.${key}` : key)]));
  }
  return value;
}
