import { inspect } from 'node:util';
import { hostError } from './errors.js';

export const MASK = '********';

// What a vault value can be: YAML gives strings, numbers and booleans.
export type SecretValue = string | number | boolean;

// A known secret value and where it came from (for "which secret?" in a refusal; never the value).
const known = new Map<string, string>();
let matchers: { redact: RegExp; guard: RegExp } | undefined;

// A value at least this long is matched anywhere, even inside a longer word or path: text that
// long does not appear by chance. Shorter values match only as a token (see below); the lines of
// a multi-line secret are registered only from this length on, so a line `done` of a vaulted
// script never matches the `done` of every shell loop.
const LONG = 16;
// Characters that continue a token. redact() masks a short value wherever it stands as a word
// (neighbours not letters, digits or `_`), so `pin=1234.` and `/x/1234/` are masked in output.
// The command-line guard is stricter about what it refuses: `-`, `.` and `/` continue a token
// there too, so a vaulted `authentik` does not refuse `authentik-server.service` or
// `/srv/authentik/data` (path components and unit names), while `--password=s3cret`,
// `postgres://u:s3cret@h` and `'s3cret'` are refused.
const WORD = 'A-Za-z0-9_';
const TOKEN = 'A-Za-z0-9_./-';

// A value that must never be shown: it renders into templates and file contents through
// reveal(), prints as the mask in JSON and inspect, and refuses to become text by accident.
export class Secret {
  readonly #value: SecretValue;
  // Where it came from, e.g. "inventory/host_vars/a/vault.yml: vault_pg_pass"; not secret.
  readonly origin: string;

  constructor(value: SecretValue, origin: string) {
    this.#value = value;
    this.origin = origin;
    // A bare `true` carries no information and would match every `true` in a script: booleans
    // are masked as values (inventory, JSON) but not searched for in free text.
    if (typeof value !== 'boolean') registerSecret(String(value), origin);
  }

  // The value as text: for a file's content or stdin.
  reveal(): string {
    return String(this.#value);
  }

  // The value with its YAML type (a vaulted number stays a number): for schemas and templates.
  revealTyped(): SecretValue {
    return this.#value;
  }

  // `${secret}`, String(secret) and secret + '' used to give the mask, which then silently
  // reached the host as "********". A Secret used as text is a bug in the caller: say so.
  toString(): string {
    throw new Error(`the secret ${this.origin} was used as text; call .reveal() where the value is meant for a file or stdin`);
  }

  [Symbol.toPrimitive](): never {
    return this.toString() as never;
  }

  toJSON(): string {
    return MASK;
  }

  [inspect.custom](): string {
    return MASK;
  }
}

export function registerSecret(value: string, origin = 'a secret'): void {
  // Nothing to find in blank text; a value with surrounding blanks (a vaulted line with its
  // newline) is also found without them.
  if (value.trim() === '') return;
  const add = (v: string) => {
    if (!known.has(v)) {
      known.set(v, origin);
      matchers = undefined;
    }
  };
  add(value);
  add(value.trim());
  for (const line of value.split('\n')) if (line.trim().length >= LONG) add(line.trim());
}

export function isSecret(value: unknown): value is Secret {
  return value instanceof Secret;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// One regular expression per use over every known value, longest first so a secret that
// contains another is matched whole; rebuilt only when a new value is registered.
function compiled(): { redact: RegExp; guard: RegExp } | undefined {
  if (known.size === 0) return undefined;
  if (!matchers) {
    const values = [...known.keys()].sort((a, b) => b.length - a.length);
    const build = (inner: string) =>
      new RegExp(values.map((v) => (v.length >= LONG ? escape(v) : `(?<![${inner}])${escape(v)}(?![${inner}])`)).join('|'), 'g');
    matchers = { redact: build(WORD), guard: build(TOKEN) };
  }
  return matchers;
}

// Replace every known secret value in a text with the mask (at word bounds for short values).
export function redact(text: string): string {
  const m = compiled();
  if (!m || text.length === 0) return text;
  return text.replace(m.redact, MASK);
}

// The origin of the first known secret that stands as a token in `text`, if any.
export function findSecret(text: string): string | undefined {
  const m = compiled();
  if (!m) return undefined;
  m.guard.lastIndex = 0;
  const hit = m.guard.exec(text);
  return hit ? known.get(hit[0]) : undefined;
}

export function containsSecret(text: string): boolean {
  return findSecret(text) !== undefined;
}

// Refuse a value headed for a command line (process arguments are visible on the host).
export function refuseSecretInCommand(text: string): void {
  const origin = findSecret(text);
  if (origin === undefined) return;
  throw hostError(`a secret (${origin}) would appear in a command line`, { hint: 'secrets reach the host by upload or stdin only' });
}

// Does a variables tree hold a Secret anywhere?
export function holdsSecret(value: unknown): boolean {
  if (value instanceof Secret) return true;
  if (value && typeof value === 'object') return Object.values(value).some(holdsSecret);
  return false;
}

// Deep copy of a variables tree with secrets revealed (typed): what templates render from.
export function revealAll(value: unknown): unknown {
  if (value instanceof Secret) return value.revealTyped();
  if (Array.isArray(value)) return value.map(revealAll);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revealAll(v)]));
  }
  return value;
}
