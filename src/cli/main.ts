import { readFileSync } from 'node:fs';
import { describeError, exitCodes, HostctlError, inputError } from '../core/errors.js';
import { redact } from '../core/secret.js';
import { printable } from '../core/text.js';

const USAGE = `hostctl: host automation in TypeScript, Ansible-compatible inventory and vault

Usage:
  hostctl run PLAYBOOK.ts [options]       apply a playbook (see \`hostctl run --help\`)
  hostctl inventory --list | --host NAME  print resolved inventory variables, secrets masked
  hostctl vault SUBCOMMAND ...            create, edit, view, encrypt, decrypt, rekey, encrypt-string
  hostctl lab up|down|status|ssh|images   local Debian 13 test targets (systemd-nspawn)

Options:
  -h, --help       this help; every command has its own
  --version        print the version

Exit codes: 0 ok, 1 error, 2 a host failed, 4 a host unreachable,
            5 bad options, inventory, playbook or variables, 130 interrupted.`;

// Each command is a module with run(argv) -> exit code, imported only when called, so
// `hostctl run` does not pay for the vault editor or the lab.
const commands: Record<string, () => Promise<{ run(argv: string[]): Promise<number> }>> = {
  run: () => import('./run.js'),
  inventory: () => import('./inventory.js'),
  vault: () => import('./vault.js'),
  lab: () => import('./lab.js'),
};

export async function main(argv: string[]): Promise<void> {
  // Output that cannot be written (a reader that went away: `| head`, EPIPE; a terminal that
  // closed under a dropped ssh session, EIO) must not stop a run halfway through a host's
  // changes: the rest of the output is dropped and the run ends as it would have.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  let code: number;
  try {
    code = await dispatch(argv);
  } catch (error) {
    const verbose = argv.includes('-v') || argv.includes('--verbose');
    process.stderr.write(`hostctl: ${printable(redact(describeError(error, verbose)))}\n`);
    code = error instanceof HostctlError ? exitCodes[error.kind] : 1;
  }
  // The one place the process ends: open sockets or timers must not keep a finished run alive.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(code);
}

async function dispatch(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 5 : 0;
  }
  if (name === '--version') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const load = commands[name];
  if (!load) throw inputError(`unknown command "${name}"`, { hint: 'see `hostctl --help`' });
  return (await load()).run(rest);
}
