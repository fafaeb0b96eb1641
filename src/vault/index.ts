// The vault's public surface: re-exports only.
export {
  DEFAULT_VAULT_ID,
  VAULT_HEADER,
  checkVaultId,
  decryptEnvelope,
  encryptEnvelope,
  findConflictMarker,
  looksEncrypted,
  parseEnvelope,
  type Envelope,
  type EnvelopeSource,
  type VaultVersion,
} from './format.js';
export { Keyring, type VaultPassword } from './keyring.js';
export {
  keyringOptions,
  loadKeyring,
  noPasswordError,
  parseVaultIdSlug,
  vaultOptions,
  vaultOptionsHelp,
  VAULT_PROMPT_HINT,
  type LoadKeyringOptions,
  type VaultOptionValues,
} from './passwords.js';
export {
  decryptSecret,
  decryptText,
  encrypt,
  encryptString,
  formatInline,
  isVaultText,
  openVault,
  type EncryptStringOptions,
  type Opened,
} from './vault.js';
export {
  VaultedValue,
  decryptTree,
  decryptValue,
  isVaultedValue,
  locateVaultedValues,
  secretLeaves,
  vaultTag,
} from './yaml.js';
export {
  createVaultFile,
  editInEditor,
  editVaultFile,
  openVaultFile,
  readVaultFile,
  rekeyVaultFile,
  splitCommand,
  type CreateOutcome,
  type EditOutcome,
  type EditorOptions,
} from './files.js';
