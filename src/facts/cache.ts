import type { Connection, ExecResult } from '../transport/connection.js';

// A fact is a command and a parser; "absent" is a value the parser returns, not an error.
export interface Fact<T> {
  id: string;
  command: string;
  parse(result: ExecResult): T;
}

export const defineFact = <T>(fact: Fact<T>): Fact<T> => fact;

// Facts read once per host and kept until a resource that changes them forgets them.
export class Facts {
  readonly #conn: Connection;
  readonly #cache = new Map<string, Promise<unknown>>();
  // Values a test or the user pinned (e.g. a podman version), never read from the host.
  readonly #overrides: ReadonlyMap<string, unknown>;

  constructor(conn: Connection, overrides: ReadonlyMap<string, unknown> = new Map()) {
    this.#conn = conn;
    this.#overrides = overrides;
  }

  get<T>(fact: Fact<T>): Promise<T> {
    if (this.#overrides.has(fact.id)) return Promise.resolve(this.#overrides.get(fact.id) as T);
    let pending = this.#cache.get(fact.id) as Promise<T> | undefined;
    if (!pending) {
      pending = this.#conn.exec(fact.command).then((r) => fact.parse(r));
      // A failed read is not remembered: the next ask tries again.
      pending.catch(() => this.#cache.delete(fact.id));
      this.#cache.set(fact.id, pending);
    }
    return pending;
  }

  // Seed the cache with values read in a batch (one round trip for many facts).
  remember<T>(fact: Fact<T>, value: T): void {
    this.#cache.set(fact.id, Promise.resolve(value));
  }

  has(id: string): boolean {
    return this.#overrides.has(id) || this.#cache.has(id);
  }

  // After anything on the host changed, every fact may be stale: read again when asked.
  forgetAll(): void {
    this.#cache.clear();
  }

  forget(prefix: string): void {
    for (const id of this.#cache.keys()) if (id === prefix || id.startsWith(`${prefix}:`)) this.#cache.delete(id);
  }
}
