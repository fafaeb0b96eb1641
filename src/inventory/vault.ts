import { Secret } from '../core/secret.js';
import { decryptText, decryptTree, isVaultText, locateVaultedValues, vaultTag, type Keyring } from '../vault/index.js';
import type { VaultDecoder } from './load.js';

// Every string in a vault-encrypted vars file is a secret, keyed by where it came from.
function secretStrings(value: unknown, where: string): unknown {
  if (typeof value === 'string') return new Secret(value, where);
  if (Array.isArray(value)) return value.map((v, i) => secretStrings(v, `${where}[${i}]`));
  if (value && typeof value === 'object' && !(value instanceof Secret)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, secretStrings(v, `${where}.${k}`)]));
  }
  return value;
}

// The inventory's view of the vault: decrypt with this keyring, or say which file and key
// needs a password.
export function vaultDecoder(keyring: Keyring): VaultDecoder {
  return {
    customTags: [vaultTag],
    decryptFile: (text, file) => (isVaultText(text) ? decryptText(text, keyring, file) : undefined),
    locate: (doc, lines) => locateVaultedValues(doc, lines),
    reveal: (value, file, key) => decryptTree(value, keyring, file, key),
    secretStrings,
  };
}
