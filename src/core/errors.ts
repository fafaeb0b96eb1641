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

// The message a user sees: where, what, what to do; causes only when verbose.
export function describeError(error: unknown, verbose = false): string {
  if (!(error instanceof Error)) return String(error);
  const parts: string[] = [];
  if (error instanceof HostctlError && error.where) parts.push(`${error.where}: ${error.message}`);
  else parts.push(error.message);
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
