import type { Connection } from '../transport/connection.js';
import type { Facts } from '../facts/cache.js';

// Per-host state a run accumulates; lives as long as the host's run.
export interface HostState {
  // A unit file changed since the last daemon-reload: systemd must re-read before acting.
  daemonReloadPending: boolean;
  // Tasks that changed (or in check mode would change) so far: check mode uses it to tell
  // "may change" from a real failure.
  changes: number;
}

// What a resource sees of the host it runs on.
export interface HostContext {
  readonly host: string;
  readonly conn: Connection;
  readonly check: boolean;
  readonly diff: boolean;
  readonly facts: Facts;
  readonly state: HostState;
  readonly signal: AbortSignal;
  // Rendered templates of the current role, by file name (rendered before the run started).
  readonly templates: ReadonlyMap<string, string>;
  // Live progress for the running task (e.g. "attempt 3/15").
  progress(message: string): void;
  // A wait longer than a moment, saying what it waits for (`what`: dpkg-lock, backup-lock,
  // connection...) and why, as its own event.
  waiting(what: string, message: string): void;
}
