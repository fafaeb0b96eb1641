import { open, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, extname, resolve } from 'node:path';
import { inputError, HostctlError } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import { askHidden, canAsk, type TerminalIo } from '../core/terminal.js';
import { checkVaultId, DEFAULT_VAULT_ID, looksEncrypted } from './format.js';
import { Keyring } from './keyring.js';
import { openVault } from './vault.js';

// The flags `hostctl run`, `hostctl inventory` and `hostctl vault` share, for util.parseArgs
// (spread them into a command's options). The second spelling of each is Ansible's alias.
export const vaultOptions = {
  'vault-password-file': { type: 'string', multiple: true },
  'vault-pass-file': { type: 'string', multiple: true },
  'vault-id': { type: 'string', multiple: true },
  'ask-vault-pass': { type: 'boolean' },
  'ask-vault-password': { type: 'boolean' },
} as const;

// Help lines for those flags, for every command's --help.
export const vaultOptionsHelp = `Vault passwords (may be repeated and combined; for each vault text the passwords labelled
  with its vault id are tried first, then the others in the order given):
  --vault-password-file FILE  read the password from FILE (first line, whitespace stripped);
                              if FILE is executable it is run and its stdout is the password
                              (alias --vault-pass-file)
  --vault-id LABEL@SOURCE     a password for vault id LABEL; SOURCE is a password file, an
                              executable, or "prompt" to ask on the terminal; without "LABEL@"
                              the label is "default"
  --ask-vault-pass            ask for the password on the terminal, without echo
                              (alias --ask-vault-password)
  Environment: HOSTCTL_VAULT_PASSWORD_FILE, and ANSIBLE_VAULT_PASSWORD_FILE for compatibility,
  name a password file used in addition to the flags.`;

// What parseArgs gives back for vaultOptions.
export interface VaultOptionValues {
  'vault-password-file'?: string[] | undefined;
  'vault-pass-file'?: string[] | undefined;
  'vault-id'?: string[] | undefined;
  'ask-vault-pass'?: boolean | undefined;
  'ask-vault-password'?: boolean | undefined;
}

export interface LoadKeyringOptions {
  // --vault-password-file values: each is a password with the vault id "default".
  readonly passwordFiles?: readonly string[];
  // --vault-id values: "label@file", "label@prompt", "file" or "prompt".
  readonly vaultIds?: readonly string[];
  // --ask-vault-pass: prompt for a "default" password.
  readonly askVaultPass?: boolean;
  // Where HOSTCTL_VAULT_PASSWORD_FILE / ANSIBLE_VAULT_PASSWORD_FILE are read (default process.env).
  readonly env?: NodeJS.ProcessEnv;
  // Read those two variables at all (default true; rekey's new password does not).
  readonly useEnv?: boolean;
  // Prompt when no source was given and standard input is a terminal (ansible-vault does this;
  // `hostctl run` does not).
  readonly autoPrompt?: boolean;
  // Prompts ask twice ("New vault password", "Confirm"): for encrypting.
  readonly newPassword?: boolean;
  // Relative password file paths are resolved against this (default process.cwd()).
  readonly cwd?: string;
  readonly io?: TerminalIo;
}

// Turn parsed flags into loadKeyring options.
export function keyringOptions(values: VaultOptionValues, env: NodeJS.ProcessEnv = process.env): LoadKeyringOptions {
  return {
    passwordFiles: [...(values['vault-password-file'] ?? []), ...(values['vault-pass-file'] ?? [])],
    vaultIds: values['vault-id'] ?? [],
    askVaultPass: Boolean(values['ask-vault-pass'] || values['ask-vault-password']),
    env,
  };
}

type Source = { kind: 'prompt'; legacy: boolean } | { kind: 'file'; path: string };

interface Slug {
  readonly id: string;
  readonly source: Source;
  // How the user gave it, for messages: "--vault-id prod@pw.txt".
  readonly given: string;
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path;
}

// Split "label@source" like Ansible (at the first "@"; no "@" means the whole text is the source).
export function parseVaultIdSlug(slug: string): { id: string; source: string } {
  const at = slug.indexOf('@');
  const id = at > 0 ? slug.slice(0, at) : DEFAULT_VAULT_ID;
  const source = at >= 0 ? slug.slice(at + 1) : slug;
  checkVaultId(id, `--vault-id ${slug}`);
  if (source === '') {
    throw inputError(`--vault-id ${slug} names no password source`, { hint: 'write LABEL@FILE or LABEL@prompt' });
  }
  return { id, source };
}

// Build the keyring from every source, in Ansible's order: --vault-id values, then
// --vault-password-file values, then the environment's password file, then --ask-vault-pass.
export async function loadKeyring(options: LoadKeyringOptions = {}): Promise<Keyring> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const io = options.io;
  const slugs: Slug[] = [];
  const file = (path: string): Source => ({ kind: 'file', path: resolve(cwd, expandHome(path)) });

  for (const value of options.vaultIds ?? []) {
    const { id, source } = parseVaultIdSlug(value);
    slugs.push({
      id,
      given: `--vault-id ${value}`,
      source: source === 'prompt' || source === 'prompt_ask_vault_pass' ? { kind: 'prompt', legacy: false } : file(source),
    });
  }
  for (const path of options.passwordFiles ?? []) {
    if (path === '') throw inputError('--vault-password-file needs a file name');
    slugs.push({ id: DEFAULT_VAULT_ID, given: `--vault-password-file ${path}`, source: file(path) });
  }
  if (options.useEnv ?? true) {
    for (const name of ['HOSTCTL_VAULT_PASSWORD_FILE', 'ANSIBLE_VAULT_PASSWORD_FILE']) {
      const path = env[name];
      if (!path) continue;
      const source = file(path);
      const duplicate = slugs.some((s) => s.id === DEFAULT_VAULT_ID && s.source.kind === 'file' && source.kind === 'file' && s.source.path === source.path);
      if (!duplicate) slugs.push({ id: DEFAULT_VAULT_ID, given: `$${name} (${path})`, source });
    }
  }
  if (options.askVaultPass || (options.autoPrompt && slugs.length === 0 && canAsk(io))) {
    slugs.push({ id: DEFAULT_VAULT_ID, given: '--ask-vault-pass', source: { kind: 'prompt', legacy: true } });
  }

  let keyring = new Keyring();
  for (const slug of slugs) {
    const password =
      slug.source.kind === 'prompt'
        ? await askPassword(slug, slug.source.legacy, options.newPassword ?? false, io)
        : await readPasswordSource(slug, slug.source.path, keyring);
    keyring = keyring.with({
      id: slug.id,
      source: slug.source.kind === 'prompt' ? `${slug.given}, typed at the prompt` : slug.given,
      secret: new Secret(password, `vault password (${slug.id})`),
    });
  }
  return keyring;
}

// Where a password comes from when no terminal can be asked.
export const VAULT_PROMPT_HINT = 'pass --vault-password-file FILE or --vault-id LABEL@FILE instead of a prompt (and values on standard input)';

async function askPassword(slug: Slug, legacy: boolean, newPassword: boolean, io: TerminalIo | undefined): Promise<string> {
  const ask = (question: string) => askHidden(question, { io, hint: VAULT_PROMPT_HINT });
  const label = legacy ? '' : ` (${slug.id})`;
  const first = (await ask(newPassword ? `New vault password${label}: ` : `Vault password${label}: `)).trim();
  if (first === '') throw inputError(`an empty vault password is not allowed (${slug.given})`, { hint: 'type the password, or pass --vault-password-file FILE' });
  if (newPassword) {
    const second = (await ask(`Confirm new vault password${label}: `)).trim();
    if (second !== first) throw inputError(`the two passwords typed do not match (${slug.given})`, { hint: 'run the command again' });
  }
  return first;
}

const WHITESPACE = /^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g;
const NEWLINES = /^[\r\n]+|[\r\n]+$/g;

// A password file: an executable is run (stdout, CR/LF stripped at both ends, like Ansible); a
// plain file is read and stripped of whitespace; a vault-encrypted password file is opened with
// the passwords given before it.
async function readPasswordSource(slug: Slug, path: string, keyring: Keyring): Promise<string> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw inputError(code === 'ENOENT' ? `the vault password file was not found (${slug.given})` : `cannot read the vault password file (${slug.given}): ${code ?? String(error)}`, {
      where: path,
      cause: error,
      hint: 'check the path; relative paths are taken from the current directory',
    });
  }
  if (!info.isFile()) throw inputError(`the vault password file is not a regular file (${slug.given})`, { where: path });

  let password: string;
  if ((info.mode & 0o111) !== 0) {
    // The system would run a file without "#!" through /bin/sh: the password as a command, and
    // "sh: <password>: not found" on the terminal. Refuse instead.
    const head = await readHead(path, 4);
    if (!head.subarray(0, 2).equals(Buffer.from('#!')) && !head.equals(Buffer.from('\x7fELF', 'latin1'))) {
      throw inputError(`the vault password file is executable but is not a program (no "#!" line) (${slug.given})`, {
        where: path,
        hint: `if it holds the password, remove its executable bit: chmod -x ${path}`,
      });
    }
    password = await runPasswordScript(slug, path);
  } else {
    let text = (await readFile(path)).toString('utf8').replace(WHITESPACE, '');
    if (looksEncrypted(text)) {
      text = openVault(text, keyring, { where: path, firstLine: 1 }).plaintext.toString('utf8');
    }
    password = text.replace(NEWLINES, '');
  }
  if (password === '') {
    throw inputError(`the vault password from ${slug.given} is empty: an empty password is not allowed`, {
      where: path,
      hint: 'put the password on the first line of the file (or print it, for an executable)',
    });
  }
  return password;
}

async function readHead(path: string, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

// An executable password file. A "-client" script (Ansible's convention: name ends in "-client",
// any extension) is asked for one id with `--vault-id ID`; exit code 2 means it has none.
async function runPasswordScript(slug: Slug, path: string): Promise<string> {
  const client = basename(path, extname(path)).endsWith('-client');
  const args = client ? ['--vault-id', slug.id] : [];
  // Loaded only for executable password files: execa costs ~90 ms of start-up.
  const { execa } = await import('execa');
  const result = await execa(path, args, {
    stdin: process.stdin.isTTY ? 'inherit' : 'ignore',
    stdout: 'pipe',
    // Not captured, so a script can ask the user something.
    stderr: 'inherit',
    encoding: 'buffer',
    stripFinalNewline: false,
    reject: false,
    verbose: 'none',
  });
  if (result.exitCode === undefined && result.signal) {
    throw inputError(`the vault password script was killed by ${result.signal} (${slug.given})`, { where: path });
  }
  if (result.exitCode === undefined) {
    const code = (result.cause as NodeJS.ErrnoException | undefined)?.code;
    throw inputError(`cannot run the vault password script (${slug.given}): ${code ?? result.shortMessage}`, {
      where: path,
      hint: 'if it is not a script, remove its executable bit (chmod -x); if it is, check its #! line',
    });
  }
  if (client && result.exitCode === 2) {
    throw inputError(`the vault password client script has no password for vault id "${slug.id}" (${slug.given})`, { where: path });
  }
  if (result.exitCode !== 0) {
    throw inputError(`the vault password script exited with code ${result.exitCode} (${slug.given})`, {
      where: path,
      hint: 'run it by hand to see why; its stderr is shown above',
    });
  }
  return Buffer.from(result.stdout).toString('utf8').replace(NEWLINES, '');
}

// Raised by callers that need a password but have none, with the same advice everywhere.
export function noPasswordError(what: string): HostctlError {
  return inputError(`a vault password is required to ${what}`, {
    hint: 'pass --vault-password-file FILE, --vault-id LABEL@FILE or --ask-vault-pass, or set HOSTCTL_VAULT_PASSWORD_FILE',
  });
}
