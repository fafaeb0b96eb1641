import { createHash } from 'node:crypto';
import type { Connection } from '../transport/connection.js';
import type { Facts } from '../facts/cache.js';
import { journalDir, journalFact, type JournalEntry } from '../facts/journal.js';
import { quote } from '../transport/quote.js';

export type { JournalEntry };
// Entries of the engine's own, not of a role: a daemon-reload due after a unit file changed.
export const HOST_ENTRIES = 'hostctl';
export const DAEMON_RELOAD = 'systemd daemon-reload';
type Kind = JournalEntry['kind'];

// A consequence still due, as a role sees it (h.pending).
export interface Pending {
  name: string;
  data?: unknown;
  // Recorded by a run that ended before it happened (not by this run).
  earlier: boolean;
  at: string;
}

// An entry's file name: a hash, so no name a role chooses becomes a path.
const fileOf = (role: string, kind: Kind, name: string) => `${createHash('sha256').update(JSON.stringify([role, kind, name])).digest('hex').slice(0, 32)}.json`;

// A host's run journal as this run knows it: read once (with the host's first round trip when
// any role prefetches), then kept in step with what this run writes. Records and clears ride
// on a command the run sends anyway (Connection.ahead): a record goes ahead of the change it
// announces, in the same round trip (a task's records with its apply's first command, see
// Connection.withAhead), so a run killed in between at worst repeats a harmless consequence;
// a clear goes after the task that settled it, with whatever command comes next.
export class Journal {
  readonly #conn: Connection;
  readonly #facts: Facts;
  readonly #check: boolean;
  readonly #entries = new Map<string, JournalEntry & { earlier: boolean }>();
  #loaded: Promise<void> | undefined;
  readonly stateDir: string;
  readonly #dir: string;
  // How the journal is read: with the host's first round trip when a role prefetches.
  readonly fact: ReturnType<typeof journalFact>;

  constructor(conn: Connection, facts: Facts, check: boolean, stateDir: string) {
    this.#conn = conn;
    this.#facts = facts;
    this.#check = check;
    this.stateDir = stateDir;
    this.#dir = journalDir(stateDir);
    this.fact = journalFact(stateDir);
  }

  // Reads the journal unless already read (from the prefetch's answer when there was one).
  load(): Promise<void> {
    this.#loaded ??= this.#facts.get(this.fact).then((entries) => {
      for (const e of entries) {
        const file = fileOf(e.role, e.kind, e.name);
        // What this run recorded before reading is newer.
        if (!this.#entries.has(file)) this.#entries.set(file, { ...e, earlier: true });
      }
    });
    return this.#loaded;
  }

  // What runs ended before they did, for one role.
  earlier(role: string): JournalEntry[] {
    return [...this.#entries.values()].filter((e) => e.role === role && e.earlier);
  }

  get(role: string, kind: Kind, name: string): Pending | undefined {
    const e = this.#entries.get(fileOf(role, kind, name));
    return e && { name: e.name, ...(e.data !== undefined ? { data: e.data } : {}), earlier: e.earlier, at: e.at };
  }

  // Records a consequence (again, when its data changed). Returns whether it was new. In check
  // mode only this run knows it.
  record(role: string, kind: Kind, name: string, data?: unknown): boolean {
    const file = fileOf(role, kind, name);
    const known = this.#entries.get(file);
    if (known && JSON.stringify(known.data) === JSON.stringify(data)) return false;
    const entry: JournalEntry = { role, kind, name, ...(data !== undefined ? { data } : {}), at: known?.at ?? new Date().toISOString() };
    this.#entries.set(file, { ...entry, earlier: known?.earlier ?? false });
    if (!this.#check) {
      // Renamed into place after a sync: a reader never sees half a record. Written only into
      // directories root owns (checked before the chmod, which would follow a link).
      const [state, dir, path, tmp] = [this.stateDir, this.#dir, `${this.#dir}/${file}`, `${this.#dir}/${file}.tmp`].map(quote);
      const rootOwned = [state, dir].map((d) => `[ ! -L ${d} ] && [ "$(stat -c %u -- ${d})" = 0 ]`).join(' && ');
      const refused = `cannot write the run journal in ${this.#dir}: writing it needs root (log in as root or set ansible_become), and it must be a directory root owns, not a link`;
      this.#conn.ahead(`{ umask 077 && mkdir -p -- ${state} ${dir} && ${rootOwned} && chmod 0700 -- ${state} ${dir}; } 2>/dev/null || { echo ${quote(refused)} >&2; exit 1; }
printf '%s\\n' ${quote(JSON.stringify(entry))} > ${tmp} && sync ${tmp} && mv -f -- ${tmp} ${path}`);
    }
    return !known;
  }

  clear(role: string, kind: Kind, name: string): void {
    const file = fileOf(role, kind, name);
    if (!this.#entries.delete(file) || this.#check) return;
    // A clear that fails leaves the consequence to be repeated by the next run: harmless.
    this.#conn.ahead(`rm -f -- ${quote(`${this.#dir}/${file}`)} 2>/dev/null || :`);
  }
}
