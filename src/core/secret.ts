import { inspect } from 'node:util';

export const MASK = '********';

// Every secret value the process has seen, so any text leaving it can be scrubbed.
const known = new Set<string>();

// A value that must never be shown: it renders into templates and file contents through
// reveal(), and everywhere else (strings, JSON, inspect) it is the mask.
export class Secret {
  readonly #value: string;
  // Where it came from, e.g. "inventory/host_vars/a/vault.yml: vault_pg_pass"; not secret.
  readonly origin: string;

  constructor(value: string, origin: string) {
    this.#value = value;
    this.origin = origin;
    registerSecret(value);
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return MASK;
  }

  toJSON(): string {
    return MASK;
  }

  [inspect.custom](): string {
    return MASK;
  }
}

export function registerSecret(value: string): void {
  // One or two characters would mask half of every line; such a "secret" protects nothing.
  if (value.length >= 3) {
    known.add(value);
    for (const line of value.split('\n')) if (line.trim().length >= 3 && line !== value) known.add(line);
  }
}

export function isSecret(value: unknown): value is Secret {
  return value instanceof Secret;
}

// Replace every known secret value in a text with the mask. Longest first, so a secret that
// contains another is masked whole.
export function redact(text: string): string {
  if (known.size === 0 || text.length === 0) return text;
  let out = text;
  for (const value of [...known].sort((a, b) => b.length - a.length)) {
    if (out.includes(value)) out = out.split(value).join(MASK);
  }
  return out;
}

export function containsSecret(text: string): boolean {
  for (const value of known) if (text.includes(value)) return true;
  return false;
}

// Deep copy of a variables tree with secrets revealed: what templates render from.
export function revealAll(value: unknown): unknown {
  if (value instanceof Secret) return value.reveal();
  if (Array.isArray(value)) return value.map(revealAll);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revealAll(v)]));
  }
  return value;
}
