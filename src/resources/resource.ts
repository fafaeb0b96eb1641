import type { HostContext } from './host-context.js';
import type { Probe } from '../facts/prefetch.js';

// A resource looks at the host and returns a plan: nothing to do (with the reason), or a
// change (with the reason, an optional diff and the function that makes it). "Changed"
// therefore means "a change was planned and applied", never a flag set by hand, and check
// mode is honoured in one place: the engine simply does not call apply().
export type Plan<T = unknown> =
  | { action: 'none'; reason: string; data?: T }
  | { action: 'skip'; reason: string }
  // `data` is what check mode returns (nothing was applied); apply() may return fresher data.
  // `items`: what the change touches by name (e.g. the Quadlet units it writes); a task's
  // `pending` map is keyed by them.
  // `reloadsUnits`: the change makes a systemd daemon-reload due (a unit file changed).
  | { action: 'change'; reason: string; diff?: string; data?: T; items?: string[]; reloadsUnits?: boolean; apply: () => Promise<Applied<T> | void> };

// What apply() may say after acting: e.g. a command whose changedWhen said "no change".
export interface Applied<T = unknown> {
  changed?: boolean;
  reason?: string;
  data?: T;
}

export interface Resource<A> {
  kind: string;
  probes?(args: A): Probe[];
  // The task title when the role gives none, e.g. "file /etc/motd".
  title(args: A): string;
  // Tasks (without arguments) the engine runs and reports before this one is planned, e.g.
  // the daemon-reload a service needs after a unit file changed: planning itself never acts.
  before?(ctx: HostContext): Resource<Record<string, never>>[];
  plan(ctx: HostContext, args: A): Promise<Plan>;
}

export const defineResource = <A>(resource: Resource<A>): Resource<A> => resource;

export const noop = <T>(reason: string, data?: T): Plan<T> =>
  data === undefined ? { action: 'none', reason } : { action: 'none', reason, data };

export const skip = (reason: string): Plan => ({ action: 'skip', reason });

export const change = <T>(
  reason: string,
  apply: () => Promise<Applied<T> | void>,
  diff?: string,
): Plan<T> => (diff === undefined ? { action: 'change', reason, apply } : { action: 'change', reason, apply, diff });
