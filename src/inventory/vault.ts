import { decryptText, decryptTree, isVaultText, locateVaultedValues, secretLeaves, vaultTag, type Keyring } from '../vault/index.js';
import type { VaultDecoder } from './load.js';

// The inventory's view of the vault: decrypt with this keyring, or say which file and key
// needs a password.
export function vaultDecoder(keyring: Keyring): VaultDecoder {
  return {
    customTags: [vaultTag],
    decryptFile: (text, file) => (isVaultText(text) ? decryptText(text, keyring, file) : undefined),
    locate: (doc, lines) => locateVaultedValues(doc, lines),
    reveal: (value, file, key) => decryptTree(value, keyring, file, key),
    secretLeaves,
  };
}
