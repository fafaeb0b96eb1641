import { vaultOptionsHelp } from '../vault/index.js';
import type { VaultAction } from './vault.js';

// The texts of `hostctl vault --help` and of each action's --help: data, kept apart from the
// code that parses the arguments (a test checks that every flag is documented here).

const encryptIdHelp = `  --encrypt-vault-id ID        the vault id to encrypt with (required when several vault ids
                              were given); an id other than "default" writes a 1.2 header`;
const outputHelp = `  --output FILE                write the result to FILE instead ("-" for standard output);
                              at most one input file`;
const helpHelp = `  -h, --help                   show this help`;

export const summary = `Usage: hostctl vault ACTION [options] [FILE...]

Ansible Vault compatible: files and values written here are read by ansible-vault and
ansible, and the other way round (format 1.1 and 1.2, AES256).

Actions:
  create FILE          create a new encrypted file in $EDITOR
  edit FILE...         edit encrypted files in $EDITOR (saved only when changed)
  view FILE...         print decrypted files
  encrypt [FILE...]    encrypt files in place (or standard input to standard output)
  decrypt [FILE...]    decrypt files in place (or standard input to standard output)
  rekey FILE...        change the password (and vault id) of encrypted files
  encrypt-string       print an inline "!vault |" YAML value (also: encrypt_string)

${vaultOptionsHelp}

See \`hostctl vault ACTION --help\` for each action's options.`;

export const vaultHelp: Record<VaultAction, string> & { summary: string } = {
  summary,
  create: `Usage: hostctl vault create [options] FILE

Open $EDITOR (default vi) on an empty file and encrypt what you save into FILE (mode 0600).
FILE must not exist; nothing is created if you save an empty file or the editor exits
non-zero (vim: :cq). The plaintext lives in a private 0700 directory (in /dev/shm when
available) and is removed whatever happens. Asks for a new password twice when no
password source is given.

Options:
${encryptIdHelp}
${helpHelp}

${vaultOptionsHelp}`,
  edit: `Usage: hostctl vault edit [options] FILE...

Decrypt FILE into a private temporary file, open $EDITOR (default vi) on it, and encrypt it
back only if the text changed, with the same password and vault id. An editor that exits
non-zero (vim: :cq) abandons the edit. The plaintext is removed whatever happens.

Options:
${helpHelp}

${vaultOptionsHelp}`,
  view: `Usage: hostctl vault view [options] FILE...

Print the decrypted text of each FILE on standard output (pipe it into less to page).

Options:
${helpHelp}

${vaultOptionsHelp}`,
  encrypt: `Usage: hostctl vault encrypt [options] [FILE...]

Encrypt each FILE in place (atomically: the file keeps its mode). Without FILE, or with "-",
read standard input and write standard output. Refuses files that are already encrypted.
Asks for a new password twice when no password source is given.

Options:
${encryptIdHelp}
${outputHelp}
${helpHelp}

${vaultOptionsHelp}`,
  decrypt: `Usage: hostctl vault decrypt [options] [FILE...]

Decrypt each FILE in place (atomically: the file keeps its mode). Without FILE, or with "-",
read standard input and write standard output. Prefer \`view\` or \`edit\`: a decrypted file
left in a repository is a leaked secret.

Options:
${outputHelp}
${helpHelp}

${vaultOptionsHelp}`,
  rekey: `Usage: hostctl vault rekey [options] FILE...

Decrypt each FILE with the current password(s) and encrypt it with a new one (atomically;
the file keeps its mode). The new password comes from --new-vault-password-file or
--new-vault-id, or is asked for twice on the terminal.

Options:
  --new-vault-password-file FILE  the new password (vault id "default": a 1.1 header)
  --new-vault-id LABEL@SOURCE     the new password and its vault id (SOURCE: a file, an
                                  executable or "prompt"); LABEL goes into a 1.2 header
${encryptIdHelp}
${helpHelp}

${vaultOptionsHelp}`,
  'encrypt-string': `Usage: hostctl vault encrypt-string [options] [STRING...]

Print an inline vault value to paste into a YAML file:
  name: !vault |
            $ANSIBLE_VAULT;1.1;AES256
            6231...

Prefer standard input or --prompt for the secret: a STRING on the command line is visible to
other users (ps) and stays in your shell history.
  printf %s "$DB_PASSWORD" | hostctl vault encrypt-string --stdin-name db_password
Standard input is read when no STRING is given, when STRING is "-", or with --stdin-name;
it is encrypted exactly (a final newline is kept: use printf, not echo).

Options:
  -n, --name NAME      the variable name for each STRING, in order (repeat it)
  --stdin-name NAME    the variable name for the value read from standard input
  -p, --prompt         ask for the name and the value on the terminal (value hidden)
  --show-input         show the value while typing it at --prompt
${encryptIdHelp}
${outputHelp}
${helpHelp}

${vaultOptionsHelp}`,
};
