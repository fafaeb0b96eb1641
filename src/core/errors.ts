import { relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// One error family for the whole tool. The kind decides the exit code (Ansible's numbers),
// the cause chain keeps the low-level reason for `-v`.
export type ErrorKind =
  | 'input' // bad options, inventory, playbook or variables: nothing was touched
  | 'host' // a task failed on a host
  | 'unreachable' // the host could not be reached or the connection died
  | 'interrupted' // Ctrl-C
  | 'internal'; // anything else

export const exitCodes: Record<ErrorKind, number> = {
  input: 5,
  host: 2,
  unreachable: 4,
  interrupted: 130,
  internal: 1,
};

export class HostctlError extends Error {
  readonly kind: ErrorKind;
  // Where the bad input lives, e.g. "inventory/host_vars/a/vars.yml: authentik_port".
  readonly where: string | undefined;
  // What the user can do about it.
  readonly hint: string | undefined;

  constructor(
    kind: ErrorKind,
    message: string,
    options: { cause?: unknown; where?: string; hint?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'HostctlError';
    this.kind = kind;
    this.where = options.where;
    this.hint = options.hint;
  }
}

export const inputError = (message: string, options?: { cause?: unknown; where?: string; hint?: string }) =>
  new HostctlError('input', message, options);

export const hostError = (message: string, options?: { cause?: unknown; hint?: string }) =>
  new HostctlError('host', message, options);

export const unreachableError = (message: string, options?: { cause?: unknown; hint?: string }) =>
  new HostctlError('unreachable', message, options);

export function isHostctlError(error: unknown, kind?: ErrorKind): error is HostctlError {
  return error instanceof HostctlError && (kind === undefined || error.kind === kind);
}

// hostctl's own code (dist/ or, under the tests, src/): frames there are not the user's.
const OWN = fileURLToPath(new URL('../', import.meta.url));

// Where a bug (an error that is not a HostctlError) was thrown in the user's playbook or
// roles: the first stack frame outside hostctl and installed packages. The playbook bundle's
// source map turns its frames back into the roles' files and lines.
function thrownAt(error: Error): string | undefined {
  for (const line of (error.stack ?? '').split('\n').slice(1)) {
    const m = /((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?$/.exec(line.trim());
    if (!m) continue;
    const path = m[1]!.startsWith('file:') ? fileURLToPath(m[1]!) : m[1]!;
    if (path.startsWith(OWN) || path.split(sep).includes('node_modules')) continue;
    return `${relative(process.cwd(), path)}:${m[2]}:${m[3]}`;
  }
  return undefined;
}

// The message a user sees: where, what, what to do; causes only when verbose.
export function describeError(error: unknown, verbose = false): string {
  if (!(error instanceof Error)) return String(error);
  const parts: string[] = [];
  if (error instanceof HostctlError && error.where) parts.push(`${error.where}: ${error.message}`);
  else if (error instanceof HostctlError) parts.push(error.message);
  else {
    const at = thrownAt(error);
    parts.push(`${error.message}${at ? ` (at ${at})` : ''}`);
  }
  if (error instanceof HostctlError && error.hint) parts.push(`  hint: ${error.hint}`);
  if (verbose) {
    let cause = error.cause;
    while (cause instanceof Error) {
      parts.push(`  caused by: ${cause.message}`);
      cause = cause.cause;
    }
  }
  return parts.join('\n');
}
