import { keyringOptions, loadKeyring, type Keyring, vaultOptions, vaultOptionsHelp, type VaultOptionValues } from '../vault/index.js';
import { loadInventory } from '../inventory/load.js';
import { vaultDecoder } from '../inventory/vault.js';
import type { Inventory } from '../inventory/model.js';

// The flags every command that reads an inventory shares: -i and the vault passwords.
export const inventoryOptions = {
  inventory: { type: 'string', short: 'i', multiple: true },
  ...vaultOptions,
} as const;

export const inventoryOptionsHelp = `  -i, --inventory PATH      inventory file or directory (repeatable; default inventory/)
${vaultOptionsHelp.replace(/^/gm, '  ')}`;

// The keyring is given when the command also reads vaulted -e files, so passwords are asked once.
export async function openInventory(values: VaultOptionValues & { inventory?: string[] | undefined }, keyring?: Keyring): Promise<Inventory> {
  keyring ??= await loadKeyring(keyringOptions(values));
  const sources = values.inventory?.length ? values.inventory : ['inventory'];
  return loadInventory(sources, vaultDecoder(keyring));
}
