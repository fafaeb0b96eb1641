import { HostctlError, describeError, hostError } from '../core/errors.js';
import type { EventSink, TaskStatus } from '../core/events.js';
import type { Fact } from '../facts/cache.js';
import type { HostContext } from '../resources/host-context.js';
import type { Resource } from '../resources/resource.js';
import type { Probe } from '../facts/prefetch.js';
import { isChanged, type TaskResult } from '../core/result.js';
import { resources } from '../resources/index.js';
import type { Connection } from '../transport/connection.js';
import type { TagSelection } from './tags.js';
import type { UnitState } from '../facts/systemd.js';
import { prefetchUnits } from '../resources/systemd.js';
import type { Journal, Pending } from './journal.js';
import { DAEMON_RELOAD, HOST_ENTRIES } from './journal.js';

// Options every task accepts, whatever the resource.
export interface TaskOptions {
  // The title shown in progress and events; the resource makes one when absent.
  name?: string;
  tags?: string[];
  // Handlers of the role to run at its end when this task changes something. Recorded in the
  // host's run journal ahead of the change: a run that dies first leaves them to the next.
  notify?: string | string[];
  // Consequences still to come when this task changes something (e.g. 'restart web.service'),
  // recorded in the run journal ahead of the change, in the same round trip; the role asks
  // h.pending(name) to act on them (this run's or a killed run's), and the task that performs
  // one names it in `clears`. A map keys them by the items the change touches (the Quadlet
  // units it writes): { 'web.container': ['restart web.service'] }.
  pending?: string[] | Record<string, string[]>;
  // Consequences this task performs: cleared from the journal once it succeeded.
  clears?: string | string[];
  // Report a failure and go on with the role instead of stopping the host.
  ignoreErrors?: boolean;
}

type Registry = typeof resources;
type ArgsOf<R> = R extends Resource<infer A> ? A : never;

// The API a role body gets: one method per resource, plus the host's facts and handlers.
export type Tasks = {
  [K in keyof Registry]: (args: ArgsOf<Registry[K]> & TaskOptions) => Promise<TaskResult>;
} & {
  readonly host: string;
  readonly check: boolean;
  // Every variable of the host after precedence (secrets stay Secret objects).
  readonly hostVars: Readonly<Record<string, unknown>>;
  // hostctl's directory on the host (root's only; hostctl_state_dir): where a role keeps what
  // a run must hand to the next beside the run journal.
  readonly stateDir: string;
  readonly conn: Connection;
  fact<T>(fact: Fact<T>): Promise<T>;
  // The states of many units in one round trip; later service tasks use them.
  units(names: readonly string[]): Promise<UnitState[]>;
  notify(handler: string): void;
  // A consequence of this role still due on the host: recorded by a task's \`pending\` in this
  // run, or left by a run that ended before it happened (\`earlier\`).
  pending(name: string): Promise<Pending | undefined>;
  // Records a consequence (with data the role needs to finish it, no secrets) ahead of the
  // next command; recording it again with other data replaces it.
  recordPending(name: string, data?: unknown): void;
  // The consequence is done (or no longer due): cleared with the next command.
  clearPending(name: string): void;
  flushHandlers(): Promise<void>;
  // A line for the recap, e.g. "authentik ready at http://10.0.0.5:9000/".
  note(text: string): void;
  // A template of this role as rendered (and checked) before the run started.
  rendered(name: string): string;
  // Run a resource that is not in the built-in registry (e.g. one a role defines).
  run<A>(resource: Resource<A>, args: A & TaskOptions): Promise<TaskResult>;
};

// Raised after a failed task has been reported, to stop the host's run.
export class TaskFailed extends HostctlError {
  constructor(task: string, cause: unknown) {
    super('host', `task "${task}" failed`, { cause });
  }
}

export interface RoleRuntime {
  ctx: HostContext;
  role: string;
  roleTags: readonly string[];
  emit: EventSink;
  tags: TagSelection;
  handlers: readonly string[];
  notified: Set<string>;
  journal: Journal;
  // Reads the journal (once) and says what a killed run left to this role.
  loadJournal(): Promise<void>;
  runHandlers(): Promise<void>;
  note(text: string): void;
  hostVars: Readonly<Record<string, unknown>>;
  inHandler: boolean;
  // --start-at-task: tasks are skipped until the first one with this name (handlers are not).
  startAt?: StartAt | undefined;
}

export interface StartAt {
  task: string;
  reached: boolean;
  skipped: number;
}

// A recording pass takes milliseconds and a few hundred calls; one that goes on is waiting
// for something.
const RECORDING_LIMIT_MS = 1000;
const RECORDING_LIMIT_CALLS = 20_000;

// A role's name is an implicit tag, as are the role's own tags.
const selected = (rt: Pick<RoleRuntime, 'tags' | 'roleTags' | 'role'>, args: TaskOptions) => rt.tags.selects([...(args.tags ?? []), ...rt.roleTags, rt.role]);

export async function runTask<A>(rt: RoleRuntime, resource: Resource<A>, args: A & TaskOptions): Promise<TaskResult> {
  const { ctx, emit } = rt;
  if (ctx.signal.aborted) throw new HostctlError('interrupted', 'interrupted');
  const task = args.name ?? resource.title(args);
  if (!rt.inHandler && !selected(rt, args)) {
    return { status: 'skipped', changed: false, reason: 'not selected by tags' };
  }
  if (!rt.inHandler && rt.startAt && !rt.startAt.reached) {
    if (task !== rt.startAt.task) {
      rt.startAt.skipped += 1;
      return { status: 'skipped', changed: false, reason: 'before --start-at-task' };
    }
    rt.startAt.reached = true;
  }
  for (const first of resource.before?.(ctx) ?? []) await runTask(rt, first, {});
  const ref = { host: ctx.host, role: rt.role, task, ...(rt.inHandler ? { handler: true } : {}) };
  emit({ type: 'task-start', ...ref });
  const started = performance.now();
  const finish = (status: TaskStatus, reason: string, diff?: string, data?: unknown): TaskResult => {
    const showDiff = ctx.diff && diff !== undefined && diff !== '';
    emit({ type: 'task-end', ...ref, status, reason, durationMs: performance.now() - started, ...(showDiff ? { diff } : {}) });
    return { status, changed: isChanged(status), reason, ...(diff !== undefined ? { diff } : {}), ...(data !== undefined ? { data } : {}) };
  };

  let result: TaskResult;
  try {
    const plan = await resource.plan(ctx, args);
    if (plan.action === 'none') result = finish('ok', plan.reason, undefined, plan.data);
    else if (plan.action === 'skip') result = finish('skipped', plan.reason);
    else if (ctx.check) {
      // Nothing is recorded on the host, but what the change would leave to do is due all the
      // same (a would-be restart reports as one).
      recordConsequences(rt, args, plan.items, task);
      result = finish('changed', `would ${plan.reason}`, plan.diff, plan.data);
    }
    else {
      // Something on the host changed, or may have (an apply that failed halfway): whatever
      // was read before may be stale now.
      // What this change leaves to do, recorded ahead of the first command its apply sends
      // (in that round trip, and only in that one).
      const { recorded, applied } = await ctx.conn.withAhead(async () => {
        const recorded = recordConsequences(rt, args, plan.items, task);
        // A unit file written by a killed run still needs systemd to re-read it.
        if (plan.reloadsUnits) rt.journal.record(HOST_ENTRIES, 'pending', DAEMON_RELOAD);
        try {
          return { recorded, applied: (await plan.apply()) ?? {} };
        } finally {
          ctx.facts.forgetAll();
        }
      });
      const changed = applied.changed ?? true;
      if (!changed) for (const [kind, name] of recorded) rt.journal.clear(rt.role, kind, name);
      result = finish(changed ? 'changed' : 'ok', applied.reason ?? plan.reason, changed ? plan.diff : undefined, applied.data ?? plan.data);
    }
  } catch (error) {
    if (error instanceof HostctlError && (error.kind === 'interrupted' || error.kind === 'unreachable')) {
      finish('failed', describeError(error));
      throw error;
    }
    if (ctx.check && ctx.state.changes > 0) {
      // Ansible's chronic check-mode flaw: the failure may only be because an earlier task
      // did not really run. Say so instead of failing.
      result = finish('may-change', `may change: depends on earlier changes (${describeError(error)})`);
    } else {
      finish('failed', describeError(error));
      if (!args.ignoreErrors) throw new TaskFailed(task, error);
      return { status: 'failed', changed: false, reason: describeError(error) };
    }
  }
  if (result.changed) {
    ctx.state.changes += 1;
    for (const name of [args.notify ?? []].flat()) notify(rt, name, task);
  }
  // Once systemd re-read the units (this run's daemon-reload), a killed run's is done too.
  if (!ctx.state.daemonReloadPending) rt.journal.clear(HOST_ENTRIES, 'pending', DAEMON_RELOAD);
  if (result.status !== 'failed' && args.clears !== undefined) {
    await rt.loadJournal();
    for (const name of [args.clears].flat()) rt.journal.clear(rt.role, 'pending', name);
  }
  return result;
}

// Records in the journal what a change by this task leaves to do: its handlers and pending
// consequences (those of the touched items for a map). Returns the new records.
function recordConsequences(rt: RoleRuntime, args: TaskOptions, items: readonly string[] | undefined, task: string): Array<['handler' | 'pending', string]> {
  const handlers = [args.notify ?? []].flat();
  for (const name of handlers) checkHandler(rt, name, task);
  const pending = Array.isArray(args.pending) || args.pending === undefined
    ? args.pending ?? []
    : Object.entries(args.pending).filter(([item]) => items === undefined || items.includes(item)).flatMap(([, names]) => names);
  const all = [...handlers.map((n) => ['handler', n] as ['handler', string]), ...pending.map((n) => ['pending', n] as ['pending', string])];
  return all.filter(([kind, name]) => rt.journal.record(rt.role, kind, name));
}

function checkHandler(rt: RoleRuntime, name: string, by: string): void {
  if (!rt.handlers.includes(name)) {
    throw hostError(`"${by}" notifies handler "${name}", which role ${rt.role} does not define`, {
      hint: `defined handlers: ${rt.handlers.join(', ') || 'none'}`,
    });
  }
}

// Marks a handler to run at the role's end, recorded in the journal (a task's change recorded
// it already, ahead of the change; role code's own notify rides on the next command).
export function notify(rt: RoleRuntime, name: string, by: string): void {
  checkHandler(rt, name, by);
  rt.journal.record(rt.role, 'handler', name);
  rt.notified.add(name);
}

// A dry pass over a role body (or a preflight): every task is recorded (what it will read)
// and answers "ok" without touching the host; the connection is out of reach, and a fact the
// body reads is recorded, then refused, since its answer is not known yet: the pass stops
// there (reads meant to be fetched together are asked together, with Promise.all). Tasks
// the tags do not select record nothing. The engine reads it all in one round trip before
// the real pass (roles opt in with `prefetch: true`).
// `onTask` hears the title of every task recorded (--list-tasks).
// What a recording pass needs of a role's runtime: no connection, facts or host state.
export type RecordingRuntime = Pick<RoleRuntime, 'ctx' | 'role' | 'roleTags' | 'tags' | 'hostVars'> & { journal: Pick<Journal, 'fact' | 'stateDir'> };

export async function recordProbes(rt: RecordingRuntime, body: (h: Tasks) => unknown, onTask?: (task: string) => void): Promise<Probe[]> {
  const probes: Probe[] = [];
  // A body that waits in a loop of its own (polling h.units until a unit is active) would
  // record forever: after a time or a number of calls every call parks it on a promise that
  // never settles (the count also ends a loop that never yields to a timer).
  let open = true;
  let calls = 0;
  const answer = <T>(value: () => Promise<T>): Promise<T> => {
    if (++calls > RECORDING_LIMIT_CALLS) open = false;
    return open ? value() : new Promise<T>(() => {});
  };
  const record = (resource: Resource<unknown>, args: unknown): Promise<TaskResult> =>
    answer(() => {
      if (selected(rt, args as TaskOptions)) {
        probes.push(...(resource.probes?.(args) ?? []));
        onTask?.((args as TaskOptions).name ?? resource.title(args));
      }
      return Promise.resolve({ status: 'ok', changed: false, reason: 'recorded' });
    });
  const unknown = () => new HostctlError('internal', 'not available while recording');
  const h = {
    ...Object.fromEntries(Object.entries(resources).map(([key, resource]) => [key, (args: unknown) => record(resource as Resource<unknown>, args)])),
    host: rt.ctx.host,
    check: rt.ctx.check,
    hostVars: rt.hostVars,
    stateDir: rt.journal.stateDir,
    conn: new Proxy({}, { get: () => { throw unknown(); } }),
    fact: (fact: Fact<unknown>) =>
      answer(() => {
        probes.push({ fact });
        const refused = Promise.reject(unknown());
        // A body may start two reads and await them one by one: the second is never awaited.
        refused.catch(() => {});
        return refused;
      }),
    units: (names: readonly string[]) =>
      answer(() => {
        probes.push(...names.map((unit) => ({ unit })));
        return Promise.resolve([]);
      }),
    notify: () => {},
    // Not known yet: the journal is read with what this pass records.
    pending: () =>
      answer(() => {
        probes.push({ fact: rt.journal.fact });
        return Promise.resolve(undefined);
      }),
    recordPending: () => {},
    clearPending: () => {},
    flushHandlers: () => answer(() => Promise.resolve()),
    note: () => {},
    rendered: (name: string) => rt.ctx.templates.get(name) ?? '',
    run: (resource: Resource<unknown>, args: unknown) => record(resource, args),
  } as unknown as Tasks;
  // A recording that stops early (a read that needs a real answer) just records less.
  const recorded = Promise.resolve()
    .then(() => body(h))
    .catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([recorded, new Promise((done) => (timer = setTimeout(done, RECORDING_LIMIT_MS)))]);
  clearTimeout(timer);
  open = false;
  return probes;
}

// Binds every resource of the registry to a role's runtime: what `h` is in a role body.
// Inside a handler, tasks are titled by the handler's name.
export function bindTasks(rt: RoleRuntime, handler?: string): Tasks {
  const titled = <A>(args: A & TaskOptions): A & TaskOptions => (handler && !args.name ? { ...args, name: handler } : args);
  const bound = Object.fromEntries(
    Object.entries(resources).map(([key, resource]) => [
      key,
      (args: Record<string, unknown>) => runTask(rt, resource as Resource<unknown>, titled(args)),
    ]),
  );
  return {
    ...bound,
    host: rt.ctx.host,
    check: rt.ctx.check,
    hostVars: rt.hostVars,
    stateDir: rt.journal.stateDir,
    conn: rt.ctx.conn,
    fact: (fact) => rt.ctx.facts.get(fact),
    units: (names) => prefetchUnits(rt.ctx, names),
    notify: (name) => notify(rt, name, 'role code'),
    pending: async (name) => {
      await rt.loadJournal();
      return rt.journal.get(rt.role, 'pending', name);
    },
    recordPending: (name, data) => void rt.journal.record(rt.role, 'pending', name, data),
    clearPending: (name) => rt.journal.clear(rt.role, 'pending', name),
    flushHandlers: () => rt.runHandlers(),
    note: (text) => rt.note(text),
    rendered: (name) => {
      const text = rt.ctx.templates.get(name);
      if (text === undefined) throw hostError(`template ${name} is not in role ${rt.role}'s templates folder`);
      return text;
    },
    run: (resource, args) => runTask(rt, resource, titled(args)),
  } as Tasks;
}
