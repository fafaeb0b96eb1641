import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { inputError } from '../core/errors.js';
import { registerSecret } from '../core/secret.js';
import { askHidden, askLine, type TerminalIo } from '../core/terminal.js';
import { parse } from './args.js';
import { summary, vaultHelp } from './vault-help.js';
import {
  createVaultFile,
  editVaultFile,
  encrypt,
  encryptString as encryptInline,
  isVaultText,
  keyringOptions,
  loadKeyring,
  noPasswordError,
  openVault,
  rekeyVaultFile,
  VAULT_PROMPT_HINT,
  vaultOptions,
  type Keyring,
} from '../vault/index.js';

// `hostctl vault ACTION ...`: ansible-vault's actions on files that ansible-vault reads back.
// Errors are thrown (HostctlError, kind 'input' = exit 5); the return value is the exit code.

export interface VaultCliIo {
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

const help = { help: { type: 'boolean', short: 'h' } } as const;
const encryptVaultId = { 'encrypt-vault-id': { type: 'string' } } as const;
const output = { output: { type: 'string' } } as const;

// Every action's flags (exported so a test can check the help documents each one).
export const vaultCommandOptions = {
  create: { ...vaultOptions, ...encryptVaultId, ...help },
  edit: { ...vaultOptions, ...help },
  view: { ...vaultOptions, ...help },
  encrypt: { ...vaultOptions, ...encryptVaultId, ...output, ...help },
  decrypt: { ...vaultOptions, ...output, ...help },
  rekey: {
    ...vaultOptions,
    ...encryptVaultId,
    'new-vault-password-file': { type: 'string' },
    'new-vault-id': { type: 'string' },
    ...help,
  },
  'encrypt-string': {
    ...vaultOptions,
    ...encryptVaultId,
    ...output,
    name: { type: 'string', short: 'n', multiple: true },
    'stdin-name': { type: 'string' },
    prompt: { type: 'boolean', short: 'p' },
    'show-input': { type: 'boolean' },
    ...help,
  },
} as const;

export type VaultAction = keyof typeof vaultCommandOptions;

const aliases: Record<string, VaultAction> = { encrypt_string: 'encrypt-string' };

function isAction(name: string): name is VaultAction {
  return Object.hasOwn(vaultCommandOptions, name);
}

export async function run(argv: string[], ioOverride: Partial<VaultCliIo> = {}): Promise<number> {
  const io: VaultCliIo = {
    stdin: ioOverride.stdin ?? process.stdin,
    stdout: ioOverride.stdout ?? process.stdout,
    stderr: ioOverride.stderr ?? process.stderr,
    env: ioOverride.env ?? process.env,
    cwd: ioOverride.cwd ?? process.cwd(),
  };
  // Prompts use the given streams in tests; in real use the terminal (stdin or /dev/tty).
  const promptIo: TerminalIo | undefined = ioOverride.stdin ? { input: io.stdin, output: io.stderr } : undefined;

  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    io.stdout.write(`${summary}\n`);
    if (first === undefined) throw inputError('no action given', { hint: 'see `hostctl vault --help`' });
    return 0;
  }
  const action = aliases[first] ?? first;
  if (!isAction(action)) {
    throw inputError(`unknown vault action "${first}"`, {
      hint: `use one of ${Object.keys(vaultCommandOptions).join(', ')}; see \`hostctl vault --help\``,
    });
  }
  const ctx = { io, promptIo, argv: rest };
  switch (action) {
    case 'create':
      return create(ctx);
    case 'edit':
      return edit(ctx);
    case 'view':
      return view(ctx);
    case 'encrypt':
      return encryptFiles(ctx);
    case 'decrypt':
      return decryptFiles(ctx);
    case 'rekey':
      return rekey(ctx);
    case 'encrypt-string':
      return encryptString(ctx);
  }
}

interface Ctx {
  readonly io: VaultCliIo;
  readonly promptIo: TerminalIo | undefined;
  readonly argv: string[];
}

function parseAction<A extends VaultAction>(ctx: Ctx, action: A) {
  const parsed = parse(ctx.argv, vaultCommandOptions[action], `vault ${action}`);
  if ((parsed.values as { help?: boolean }).help) {
    ctx.io.stdout.write(`${vaultHelp[action]}\n`);
    return undefined;
  }
  return parsed;
}

type Values = Parameters<typeof keyringOptions>[0];

// The passwords to decrypt with; prompts ("Vault password: ") when nothing else was given.
async function readKeyring(ctx: Ctx, values: Values, what: string): Promise<Keyring> {
  const keyring = await loadKeyring({ ...keyringOptions(values, ctx.io.env), autoPrompt: true, cwd: ctx.io.cwd, io: ctx.promptIo });
  if (keyring.size === 0) throw noPasswordError(what);
  return keyring;
}

// The password to encrypt with; prompts twice ("New vault password") when nothing else was given.
async function encryptionPassword(ctx: Ctx, values: Values & { 'encrypt-vault-id'?: string | undefined }) {
  const keyring = await loadKeyring({
    ...keyringOptions(values, ctx.io.env),
    autoPrompt: true,
    newPassword: true,
    cwd: ctx.io.cwd,
    io: ctx.promptIo,
  });
  if (keyring.size === 0) throw noPasswordError('encrypt');
  return keyring.forEncryption(values['encrypt-vault-id']);
}

function needFiles(files: string[], action: string, atMostOne = false): void {
  if (files.length === 0) throw inputError(`vault ${action} needs a file name`, { hint: `see \`hostctl vault ${action} --help\`` });
  if (atMostOne && files.length > 1) throw inputError(`vault ${action} takes one file name`, { hint: `see \`hostctl vault ${action} --help\`` });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function readInput(ctx: Ctx, file: string): Promise<Buffer> {
  if (file === '-') return readAll(ctx.io.stdin);
  try {
    return await readFile(resolve(ctx.io.cwd, file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw inputError(code === 'ENOENT' ? 'the file does not exist' : `cannot read the file: ${code ?? String(error)}`, { where: file, cause: error });
  }
}

async function writeResult(ctx: Ctx, target: string, data: string | Buffer): Promise<void> {
  if (target === '-') {
    ctx.io.stdout.write(data);
    return;
  }
  await writeFileAtomic(resolve(ctx.io.cwd, target), data, { mode: 0o600 });
}

function note(ctx: Ctx, text: string): void {
  ctx.io.stderr.write(`${text}\n`);
}

async function create(ctx: Ctx): Promise<number> {
  const parsed = parseAction(ctx, 'create');
  if (!parsed) return 0;
  needFiles(parsed.positionals, 'create', true);
  const file = parsed.positionals[0] as string;
  const password = await encryptionPassword(ctx, parsed.values);
  const outcome = await createVaultFile(resolve(ctx.io.cwd, file), password, { env: ctx.io.env }).catch((error: unknown) => {
    throw relocate(error, resolve(ctx.io.cwd, file), file);
  });
  if (outcome === 'empty') note(ctx, `${file}: nothing saved (the text was empty), the file was not created`);
  return 0;
}

async function edit(ctx: Ctx): Promise<number> {
  const parsed = parseAction(ctx, 'edit');
  if (!parsed) return 0;
  needFiles(parsed.positionals, 'edit');
  const keyring = await readKeyring(ctx, parsed.values, 'edit a vault file');
  for (const file of parsed.positionals) {
    const outcome = await editVaultFile(resolve(ctx.io.cwd, file), keyring, { env: ctx.io.env }).catch((error: unknown) => {
      throw relocate(error, resolve(ctx.io.cwd, file), file);
    });
    if (outcome === 'unchanged') note(ctx, `${file}: unchanged, not rewritten`);
  }
  return 0;
}

// Engine errors name the absolute path; show the user the name they typed.
function relocate(error: unknown, absolute: string, given: string): unknown {
  if (error && typeof error === 'object' && 'where' in error && (error as { where?: string }).where === absolute) {
    Object.defineProperty(error, 'where', { value: given });
  }
  return error;
}

async function openFile(ctx: Ctx, file: string, keyring: Keyring) {
  const text = (await readInput(ctx, file)).toString('utf8');
  const where = file === '-' ? 'standard input' : file;
  if (!isVaultText(text)) throw inputError('the input is not vault-encrypted', { where });
  return openVault(text, keyring, { where, firstLine: 1 });
}

async function view(ctx: Ctx): Promise<number> {
  const parsed = parseAction(ctx, 'view');
  if (!parsed) return 0;
  needFiles(parsed.positionals, 'view');
  const keyring = await readKeyring(ctx, parsed.values, 'view a vault file');
  for (const file of parsed.positionals) ctx.io.stdout.write((await openFile(ctx, file, keyring)).plaintext);
  return 0;
}

// encrypt and decrypt: the files named (standard input when none) and --output, which
// takes one input at most.
function inputsAndOutput(parsed: { positionals: string[]; values: { output?: string | undefined } }): { files: string[]; out: string | undefined } {
  const files = parsed.positionals.length > 0 ? parsed.positionals : ['-'];
  const out = parsed.values.output;
  if (out !== undefined && files.length > 1) throw inputError('--output takes one input file at most');
  return { files, out };
}

async function encryptFiles(ctx: Ctx): Promise<number> {
  const parsed = parseAction(ctx, 'encrypt');
  if (!parsed) return 0;
  const { files, out } = inputsAndOutput(parsed);
  const password = await encryptionPassword(ctx, parsed.values);
  if (files.includes('-') && ctx.io.stdin.isTTY) note(ctx, 'Reading plaintext from standard input (Ctrl-D to end)');
  for (const file of files) {
    const plaintext = await readInput(ctx, file);
    await writeResult(ctx, out ?? file, encrypt(plaintext, password.secret, password.id, file === '-' ? 'standard input' : file));
  }
  if (out !== '-' && !files.includes('-')) note(ctx, 'Encryption successful');
  return 0;
}

async function decryptFiles(ctx: Ctx): Promise<number> {
  const parsed = parseAction(ctx, 'decrypt');
  if (!parsed) return 0;
  const { files, out } = inputsAndOutput(parsed);
  const keyring = await readKeyring(ctx, parsed.values, 'decrypt');
  for (const file of files) {
    const opened = await openFile(ctx, file, keyring);
    await writeResult(ctx, out ?? file, opened.plaintext);
  }
  if (out !== '-' && !files.includes('-')) note(ctx, 'Decryption successful');
  return 0;
}

async function rekey(ctx: Ctx): Promise<number> {
  const parsed = parseAction(ctx, 'rekey');
  if (!parsed) return 0;
  needFiles(parsed.positionals, 'rekey');
  const values = parsed.values;
  if (values['new-vault-password-file'] !== undefined && values['new-vault-id'] !== undefined) {
    throw inputError('--new-vault-password-file and --new-vault-id cannot be used together', {
      hint: 'use --new-vault-id LABEL@FILE for a password with a vault id',
    });
  }
  const keyring = await readKeyring(ctx, values, 'rekey');
  const newKeyring = await loadKeyring({
    passwordFiles: values['new-vault-password-file'] !== undefined ? [values['new-vault-password-file']] : [],
    vaultIds: values['new-vault-id'] !== undefined ? [values['new-vault-id']] : [],
    useEnv: false,
    autoPrompt: true,
    newPassword: true,
    cwd: ctx.io.cwd,
    io: ctx.promptIo,
  });
  if (newKeyring.size === 0) {
    throw inputError('a new vault password is required to rekey', {
      hint: 'pass --new-vault-password-file FILE or --new-vault-id LABEL@FILE, or run it on a terminal to be asked',
    });
  }
  const newPassword = newKeyring.forEncryption(values['encrypt-vault-id']);
  for (const file of parsed.positionals) {
    await rekeyVaultFile(resolve(ctx.io.cwd, file), keyring, newPassword).catch((error: unknown) => {
      throw relocate(error, resolve(ctx.io.cwd, file), file);
    });
  }
  note(ctx, 'Rekey successful');
  return 0;
}

type Source = 'stdin' | 'the command line args' | 'the interactive prompt';

async function encryptString(ctx: Ctx): Promise<number> {
  const parsed = parseAction(ctx, 'encrypt-string');
  if (!parsed) return 0;
  const values = parsed.values;
  const args = parsed.positionals.filter((arg) => arg !== '-');
  const readStdin =
    parsed.positionals.includes('-') || values['stdin-name'] !== undefined || (parsed.positionals.length === 0 && !values.prompt);
  if (values.prompt && readStdin) {
    throw inputError('--prompt cannot be combined with reading standard input ("-" or --stdin-name)');
  }
  const password = await encryptionPassword(ctx, values);
  const items: { text: string; source: Source; name: string | undefined }[] = [];

  if (values.prompt) {
    const ask = { io: ctx.promptIo, hint: VAULT_PROMPT_HINT };
    const name = (await askLine('Variable name (enter for no name): ', ask)).trim();
    const text = values['show-input'] ? await askLine('String to encrypt: ', ask) : await askHidden('String to encrypt (hidden): ', ask);
    if (text === '') throw inputError('the value typed at the prompt was empty: nothing to encrypt');
    items.push({ text, source: 'the interactive prompt', name: name || undefined });
  }
  if (readStdin) {
    if (ctx.io.stdin.isTTY) note(ctx, 'Reading the value from standard input (Ctrl-D to end, twice if there is no final newline)');
    const text = (await readAll(ctx.io.stdin)).toString('utf8');
    if (text === '') throw inputError('standard input was empty: nothing to encrypt');
    items.push({ text, source: 'stdin', name: values['stdin-name'] });
  }
  const names = values.name ?? [];
  if (args.length > 0) {
    note(ctx, 'note: a value given on the command line is visible to other users (ps) and stays in your shell history; prefer --stdin-name or --prompt');
    if (names.length > 0 && names.length < args.length) {
      note(ctx, `The number of --name options does not match the number of values: the values after "${names[names.length - 1]}" have no name.`);
    }
  }
  args.forEach((text, i) => {
    if (text === '') throw inputError('a value given on the command line is empty: nothing to encrypt');
    items.push({ text, source: 'the command line args', name: names[i] });
  });
  if (items.length === 0) throw inputError('nothing to encrypt', { hint: 'see `hostctl vault encrypt-string --help`' });

  const blocks = items.map((item, i) => {
    registerSecret(item.text);
    if (items.length > 1) {
      note(
        ctx,
        item.name
          ? `# The encrypted version of variable ("${item.name}", the string #${i + 1} from ${item.source}).`
          : `# The encrypted version of the string #${i + 1} from ${item.source}.`,
      );
    }
    return encryptInline(item.text, password.secret, { name: item.name, id: password.id });
  });
  await writeResult(ctx, values.output ?? '-', `${blocks.join('\n')}\n`);
  return 0;
}
