import { constants } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { HostctlError, inputError } from '../core/errors.js';
import { encryptEnvelope } from './format.js';
import type { Keyring, VaultPassword } from './keyring.js';
import { isVaultText, openVault, type Opened } from './vault.js';

export async function readVaultFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw inputError(code === 'ENOENT' ? 'the file does not exist' : `cannot read the file: ${code ?? (error as Error).message}`, {
      where: path,
      cause: error,
    });
  }
}

// Open a file that must be vault-encrypted.
export async function openVaultFile(path: string, keyring: Keyring): Promise<Opened> {
  const text = await readVaultFile(path);
  if (!isVaultText(text)) {
    throw inputError('the file is not vault-encrypted', { where: path, hint: `encrypt it first: hostctl vault encrypt ${path}` });
  }
  return openVault(text, keyring, { where: path, firstLine: 1 });
}

export interface EditorOptions {
  // Where $EDITOR is read (default process.env); fallback `vi`.
  readonly env?: NodeJS.ProcessEnv;
  // Directory for the private plaintext directory (default /dev/shm when usable, else os.tmpdir()).
  readonly tmpBase?: string;
}

async function privateTmpBase(options: EditorOptions): Promise<string> {
  if (options.tmpBase) return options.tmpBase;
  try {
    const info = await stat('/dev/shm');
    if (info.isDirectory()) {
      const probe = await mkdtemp(join('/dev/shm', 'hostctl-probe-'));
      await rm(probe, { recursive: true, force: true });
      return '/dev/shm';
    }
  } catch {
    // not Linux, or not writable: the regular temp dir
  }
  return tmpdir();
}

// Split $EDITOR like a POSIX shell would split words (quotes and backslashes; no expansion), as
// Ansible does with shlex.split.
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < command.length; i++) {
    const char = command.charAt(i);
    const next = command.charAt(i + 1);
    if (quote === "'") {
      if (char === "'") quote = undefined;
      else word += char;
    } else if (quote === '"') {
      if (char === '"') quote = undefined;
      else if (char === '\\' && next !== '' && '"\\$`'.includes(next)) word += command.charAt(++i);
      else word += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      inWord = true;
    } else if (char === '\\' && next !== '') {
      word += command.charAt(++i);
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += char;
      inWord = true;
    }
  }
  if (quote) throw inputError(`$EDITOR has an unclosed ${quote} quote`, { hint: 'fix the EDITOR environment variable' });
  if (inWord) words.push(word);
  return words;
}

// Let the user edit `initial` in $EDITOR and return the result. The plaintext lives in a 0600 file
// inside a private 0700 directory, removed (overwritten first) in every case, also when the
// editor fails or a signal arrives; a non-zero exit of the editor means "abandon" (vim's :cq).
export async function editInEditor(initial: Buffer, nameHint: string, options: EditorOptions = {}): Promise<Buffer> {
  const env = options.env ?? process.env;
  const command = splitCommand(env['EDITOR'] || 'vi');
  const [program, ...args] = command;
  if (!program) throw inputError('$EDITOR is empty', { hint: 'set EDITOR to your editor, e.g. EDITOR=vi' });

  const dir = await mkdtemp(join(await privateTmpBase(options), 'hostctl-vault-'));
  const file = join(dir, basename(nameHint) || 'vault');
  let signal: NodeJS.Signals | undefined;
  const onSignal = (name: NodeJS.Signals) => {
    signal = name;
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  try {
    await chmod(dir, 0o700);
    await writeFile(file, initial, { mode: 0o600, flag: 'wx' });
    // The editor gets Ctrl-C itself; this process must survive it to clean up.
    for (const name of signals) process.on(name, onSignal);
    let result;
    try {
      // execa is loaded only when an editor is opened.
      const { execa } = await import('execa');
      result = await execa(program, [...args, file], { stdio: 'inherit', reject: false, env, verbose: 'none' });
    } finally {
      for (const name of signals) process.removeListener(name, onSignal);
    }
    if (result.exitCode === undefined && !result.signal) {
      const code = (result.cause as NodeJS.ErrnoException | undefined)?.code;
      throw inputError(`cannot run the editor "${program}": ${code ?? result.shortMessage}`, {
        hint: 'set EDITOR to an editor that exists, e.g. EDITOR=nano',
      });
    }
    if (signal && signal !== 'SIGINT') throw new HostctlError('interrupted', `interrupted by ${signal} while editing`);
    if (result.exitCode !== 0) {
      throw inputError(`the editor "${program}" exited with ${result.signal ?? `code ${result.exitCode}`}: nothing was saved`, {
        hint: 'an editor exits non-zero to abandon an edit (vim: :cq); run the command again to edit',
      });
    }
    return await readFile(file);
  } finally {
    await scrub(file);
    await rm(dir, { recursive: true, force: true });
  }
}

// Overwrite a plaintext file before unlinking it (best effort: on SSDs and copy-on-write file
// systems the old blocks may survive; the private directory is what really protects it).
async function scrub(path: string): Promise<void> {
  try {
    const info = await lstat(path);
    if (info.isFile() && info.size > 0) {
      const handle = await open(path, constants.O_WRONLY);
      try {
        await handle.write(Buffer.alloc(info.size), 0, info.size, 0);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  } catch {
    // already gone
  }
  await rm(path, { force: true });
}

export type EditOutcome = 'changed' | 'unchanged';

// `vault edit`: decrypt, edit, and write back only if the text changed, keeping the file's vault
// id and the password that opened it.
export async function editVaultFile(path: string, keyring: Keyring, options: EditorOptions = {}): Promise<EditOutcome> {
  const real = await realpath(path).catch((error: unknown) => {
    throw inputError('the file does not exist', { where: path, cause: error, hint: `create it with: hostctl vault create ${path}` });
  });
  const opened = await openVaultFile(path, keyring);
  const edited = await editInEditor(opened.plaintext, real, options);
  if (edited.equals(opened.plaintext)) return 'unchanged';
  const text = encryptEnvelope(edited, opened.password.secret.reveal(), opened.envelope.vaultId);
  await writeFileAtomic(real, text);
  return 'changed';
}

export type CreateOutcome = 'created' | 'empty';

// `vault create`: the file must not exist; an empty edit creates nothing.
export async function createVaultFile(path: string, password: VaultPassword, options: EditorOptions = {}): Promise<CreateOutcome> {
  const exists = await lstat(path).then(
    () => true,
    () => false,
  );
  if (exists) throw inputError('the file already exists', { where: path, hint: `edit it with: hostctl vault edit ${path}` });
  await mkdir(dirname(path), { recursive: true });
  const edited = await editInEditor(Buffer.alloc(0), path, options);
  if (edited.length === 0) return 'empty';
  await writeFileAtomic(path, encryptEnvelope(edited, password.secret.reveal(), password.id), { mode: 0o600 });
  return 'created';
}

// `vault rekey`: decrypt with the keyring, encrypt with the new password under its id.
export async function rekeyVaultFile(path: string, keyring: Keyring, newPassword: VaultPassword): Promise<void> {
  const opened = await openVaultFile(path, keyring);
  await writeFileAtomic(path, encryptEnvelope(opened.plaintext, newPassword.secret.reveal(), newPassword.id));
}
