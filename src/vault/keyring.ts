import { inputError } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import { DEFAULT_VAULT_ID } from './format.js';

// One known vault password: its vault id label, where it came from (for messages; never the
// password itself) and the password as a Secret, so it prints as a mask and is redacted from output.
export interface VaultPassword {
  readonly id: string;
  readonly source: string;
  readonly secret: Secret;
}

// The passwords a run knows, in the order they were given (Ansible's list of vault secrets).
export class Keyring {
  readonly entries: readonly VaultPassword[];

  constructor(entries: readonly VaultPassword[] = []) {
    this.entries = entries;
  }

  // A keyring holding one password, for library callers and tests.
  static of(password: string, id: string = DEFAULT_VAULT_ID, source = 'the API'): Keyring {
    return new Keyring([{ id, source, secret: new Secret(password, `vault password (${id})`) }]);
  }

  get size(): number {
    return this.entries.length;
  }

  get ids(): string[] {
    return [...new Set(this.entries.map((entry) => entry.id))];
  }

  with(entry: VaultPassword): Keyring {
    return new Keyring([...this.entries, entry]);
  }

  // The order decryption tries passwords in, like Ansible: those labelled with the envelope's id
  // (a 1.1 envelope counts as "default") first, then every other one.
  candidates(vaultId: string | undefined): VaultPassword[] {
    const id = vaultId ?? DEFAULT_VAULT_ID;
    return [...this.entries.filter((entry) => entry.id === id), ...this.entries.filter((entry) => entry.id !== id)];
  }

  // The password to encrypt with (Ansible's match_encrypt_secret plus ansible-vault's rule that
  // several ids need --encrypt-vault-id).
  forEncryption(encryptVaultId?: string): VaultPassword {
    if (encryptVaultId !== undefined) {
      const match = this.entries.find((entry) => entry.id === encryptVaultId);
      if (!match) {
        throw inputError(
          `--encrypt-vault-id ${encryptVaultId} matches none of the known vault ids (${this.ids.join(', ') || 'none'})`,
          { hint: `give its password with --vault-id ${encryptVaultId}@FILE (or ${encryptVaultId}@prompt)` },
        );
      }
      return match;
    }
    const first = this.entries[0];
    if (!first) {
      throw inputError('a vault password is required to encrypt', {
        hint: 'pass --vault-password-file FILE, --vault-id LABEL@FILE or --ask-vault-pass, or set HOSTCTL_VAULT_PASSWORD_FILE',
      });
    }
    if (this.ids.length > 1) {
      throw inputError(`the vault ids ${this.ids.join(', ')} are all available to encrypt with`, {
        hint: 'choose one with --encrypt-vault-id ID',
      });
    }
    return first;
  }

  // "vault id "default" (--vault-password-file pw.txt), ..." for messages.
  describe(entries: readonly VaultPassword[] = this.entries): string {
    return entries.map((entry) => `vault id "${entry.id}" (${entry.source})`).join(', ');
  }
}
