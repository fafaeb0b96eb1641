import { setMaxListeners } from 'node:events';
import { HostctlError, describeError, hostError, isHostctlError } from '../core/errors.js';
import type { EventSink, HostRecap, RunEvent } from '../core/events.js';
import type { HostContext, HostState } from '../resources/host-context.js';
import type { Playbook } from './playbook.js';
import { forEachLimit } from '../core/pool.js';
import type { HostPlan, PreparedRole } from './prepare.js';
import type { TaskResult } from '../core/result.js';
import { redact } from '../core/secret.js';
import { printable } from '../core/text.js';
import { change, defineResource, noop } from '../resources/resource.js';
import { TagSelection } from './tags.js';
import { bindTasks, recordProbes, runTask, type RoleRuntime } from './tasks.js';
import { prefetch, type Probe } from '../facts/prefetch.js';
import { Facts } from '../facts/cache.js';
import { DEFAULT_STATE_DIR } from '../transport/run-lock.js';
import { DAEMON_RELOAD, HOST_ENTRIES, Journal, type JournalEntry } from './journal.js';
import { daemonReload } from '../resources/systemd.js';
import { Connection } from '../transport/connection.js';
import type { HostConnection } from '../inventory/connection-vars.js';
import type { Channel } from '../transport/transport.js';
import type { LockOwner } from '../transport/run-lock.js';
import { hostname, userInfo } from 'node:os';

export interface EngineOptions {
  check?: boolean;
  diff?: boolean;
  forks?: number;
  tags?: string[];
  skipTags?: string[];
  forceHandlers?: boolean;
  // --start-at-task: skip every task before the first one with this name.
  startAtTask?: string | undefined;
  // Seconds a host's run waits for another run's lock on it (run-lock.ts); default 1800.
  lockTimeoutSeconds?: number;
  signal?: AbortSignal;
  emit: EventSink;
  // Makes the channel for a host: local or SSH (the CLI decides, tests may too). `note`
  // adds a line under the host in the recap (and its host-end event), e.g. an SSH warning.
  channelFor(host: string, connection: HostConnection, note: (text: string) => void): Channel;
}

// The longest run that may hold a host: a first install pulling images, an upgrade with its
// 10-minute ready waits, a dump and a rollback fit in 30 minutes.
export const DEFAULT_LOCK_TIMEOUT = 1800;

export interface RunSummary {
  hosts: Record<string, HostRecap>;
  interrupted: boolean;
  exitCode: number;
}

// Counts what the events say, so the recap is exactly what was reported.
function recapCollector(hosts: readonly string[]) {
  const recap: Record<string, HostRecap> = Object.fromEntries(
    hosts.map((h) => [h, { ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: false }]),
  );
  const observe = (e: RunEvent) => {
    if (e.type === 'task-end') {
      const r = recap[e.host]!;
      if (e.status === 'changed' || e.status === 'may-change') r.changed += 1;
      else r[e.status] += 1;
    }
    if (e.type === 'host-end' && e.unreachable) recap[e.host]!.unreachable = true;
    // A host that failed outside any task (e.g. sudo refused the become password) still failed.
    if (e.type === 'host-end' && e.failed && recap[e.host]!.failed === 0) recap[e.host]!.failed = 1;
  };
  return { recap, observe };
}

// Every string leaving the engine passes the redactor: no secret reaches a renderer.
function redacting(emit: EventSink): EventSink {
  return (event) => {
    const clean = { ...event } as Record<string, unknown>;
    // Every text an event carries may come from a host: masked, and made safe for a terminal.
    const safe = (text: string) => printable(redact(text));
    for (const [k, v] of Object.entries(clean)) if (typeof v === 'string') clean[k] = safe(v);
    if (event.type === 'host-end') clean.notes = event.notes.map(safe);
    emit(clean as RunEvent);
  };
}

export async function runPlaybook(playbook: Playbook, plans: HostPlan[], options: EngineOptions): Promise<RunSummary> {
  const started = performance.now();
  const hosts = plans.map((p) => p.name);
  const { recap, observe } = recapCollector(hosts);
  const out = redacting(options.emit);
  const emit: EventSink = (e) => {
    observe(e);
    out(e);
  };
  const signal = options.signal ?? new AbortController().signal;
  // Every running command of every host listens on this one signal: no listener limit (Node
  // warns past 10, which is not a leak here).
  setMaxListeners(0, signal);
  emit({ type: 'run-start', playbook: playbook.name, hosts, check: options.check ?? false });
  const owner: LockOwner = { user: userInfo().username, controller: hostname(), pid: process.pid, started: new Date() };
  await forEachLimit(plans, options.forks ?? 10, (plan) => runHost(plan, options, emit, signal, owner));
  emit({ type: 'recap', hosts: recap, durationMs: performance.now() - started });
  const values = Object.values(recap);
  const exitCode = signal.aborted ? 130 : values.some((r) => r.unreachable) ? 4 : values.some((r) => r.failed > 0) ? 2 : 0;
  return { hosts: recap, interrupted: signal.aborted, exitCode };
}

async function runHost(plan: HostPlan, options: EngineOptions, emit: EventSink, signal: AbortSignal, owner: LockOwner): Promise<void> {
  const started = performance.now();
  const notes: string[] = [];
  const channel = options.channelFor(plan.name, plan.connection, (text) => notes.push(text));
  const conn = new Connection(channel, plan.connection.become);
  const end = (extra: { unreachable: boolean; failed: boolean; error?: string }) =>
    emit({ type: 'host-end', host: plan.name, ...extra, roundTrips: conn.roundTrips, durationMs: performance.now() - started, notes });
  emit({ type: 'host-start', host: plan.name, address: channel.description });
  if (signal.aborted) return end({ unreachable: false, failed: true, error: 'interrupted' });
  try {
    await conn.open();
  } catch (error) {
    await conn.close().catch(() => {});
    const unreachable = !isHostctlError(error) || error.kind === 'unreachable' || error.kind === 'input';
    return end({ unreachable, failed: !unreachable, error: describeError(error) });
  }
  // One run per host at a time: the first command (the prefetch below) takes the lock.
  conn.useLock({
    owner,
    timeoutSeconds: options.lockTimeoutSeconds ?? DEFAULT_LOCK_TIMEOUT,
    waiting: (what, message) => emit({ type: 'waiting', host: plan.name, what, message }),
    stateDir: plan.stateDir ?? DEFAULT_STATE_DIR,
  });
  const state: HostState = { daemonReloadPending: false, changes: 0 };
  const facts = new Facts(conn, plan.factOverrides);
  const tags = new TagSelection(options.tags, options.skipTags);
  try {
    const base = { host: plan.name, conn, check: options.check ?? false, diff: options.diff ?? false, facts, state, signal, progress: () => {}, waiting: () => {} };
    const journal = new Journal(conn, facts, base.check, plan.stateDir ?? DEFAULT_STATE_DIR);
    const roles = plan.roles.map((prepared) => ({ prepared, rt: roleRuntime(prepared, { ...base, templates: prepared.templates }, plan, emit, tags, notes, journal) }));
    // What the preflights and every prefetching role will read, recorded without touching the
    // host and read in ONE round trip: a converged host costs one command. A change drops
    // what was read, and the next role reads its part again (runRole).
    // Only roles that opted in are recorded, their preflights too.
    const preflights = roles.filter(({ prepared }) => prepared.role.preflight);
    const reads = new Map<PreparedRole, Probe[]>();
    for (const { prepared, rt } of roles) if (prepared.role.prefetch) reads.set(prepared, await recordProbes(rt, (h) => prepared.role.run(h, prepared.vars, undefined)));
    const recordable = preflights.filter(({ prepared }) => prepared.role.prefetch);
    const checking = await Promise.all(recordable.map(({ prepared, rt }) => recordProbes(rt, (h) => prepared.role.preflight!(h, prepared.vars))));
    // The run journal (what a killed run left to finish) is read with them, when a role may
    // act on it: one that prefetches or has handlers.
    const journaled = roles.some(({ prepared }) => prepared.role.prefetch || prepared.role.handlers);
    await prefetch(conn, facts, [...checking, ...reads.values(), ...(journaled ? [[{ fact: journal.fact }]] : [])].flat());
    if (journaled) await journal.load();
    if (journal.get(HOST_ENTRIES, 'pending', DAEMON_RELOAD)) state.daemonReloadPending = true;
    // Every role's read-only checks before any role changes anything; they only read, so
    // they run at once.
    const checks = await Promise.allSettled(
      preflights.map(({ prepared, rt }) => runTask(rt, preflight, { check: () => prepared.role.preflight!(bindTasks(rt), prepared.vars), tags: ['always'] })),
    );
    const refused = checks.find((c): c is PromiseRejectedResult => c.status === 'rejected');
    if (refused) throw refused.reason;
    const checked = new Map(preflights.map(({ prepared }, i) => [prepared, (checks[i] as PromiseFulfilledResult<TaskResult>).value.data]));
    // Set after the preflights: they only read, and the roles need what they found.
    const startAt = options.startAtTask === undefined ? undefined : { task: options.startAtTask, reached: false, skipped: 0 };
    for (const { rt } of roles) rt.startAt = startAt;
    for (const { prepared, rt } of roles) {
      await runRole(rt, prepared, options, reads.get(prepared), checked.get(prepared));
      // A role that did not opt in may have changed the host through h.conn, which no task
      // saw: nothing read before it is trusted after it.
      if (!prepared.role.prefetch) facts.forgetAll();
    }
    if (startAt && !startAt.reached) throw hostError(`--start-at-task: no task "${startAt.task}" came on this host: all ${startAt.skipped} task(s) were skipped, nothing was done`);
    if (startAt) notes.push(`--start-at-task: skipped ${startAt.skipped} task(s) before "${startAt.task}"`);
    end({ unreachable: false, failed: false });
  } catch (error) {
    const unreachable = isHostctlError(error, 'unreachable');
    // The failed task already reported the details; the recap names it and the first cause.
    const said = describeError(error);
    const first = error instanceof Error && error.cause instanceof Error ? error.cause.message.split('\n')[0]! : '';
    end({ unreachable, failed: !unreachable, error: first && !said.includes(first) ? `${said}: ${first}` : said });
  } finally {
    // Journal entries cleared by the last tasks, not yet sent with a later command.
    await conn.flushAhead().catch(() => {});
    await conn.close().catch(() => {});
  }
}

const preflight = defineResource<{ check: () => Promise<unknown> }>({
  kind: 'preflight',
  title: () => 'preflight checks',
  async plan(_ctx, args) {
    return noop('passed', await args.check());
  },
});

// What a run that ended early left a role to finish, in words.
const leftOver = (entries: readonly JournalEntry[]) =>
  `${entries.map((e) => (e.kind === 'handler' ? `handler "${e.name}"` : e.name)).join(', ')} (recorded by a run at ${entries.map((e) => e.at).sort()[0]})`;

// Says it as a task; in check mode, pending work is a change to come.
const unfinished = defineResource<{ entries: JournalEntry[] }>({
  kind: 'journal',
  title: () => 'finish what an interrupted run left',
  async plan(ctx, { entries }) {
    return ctx.check ? change(`finish: ${leftOver(entries)}`, async () => {}) : noop(leftOver(entries));
  },
});

function roleRuntime(prepared: PreparedRole, baseCtx: HostContext, plan: HostPlan, emit: EventSink, tags: TagSelection, notes: string[], journal: Journal): RoleRuntime {
  const { role, vars } = prepared;
  let current = { task: '' };
  const ctx: HostContext = {
    ...baseCtx,
    progress: (message) => emit({ type: 'task-progress', host: plan.name, role: role.name, task: current.task, message }),
    waiting: (what, message) => emit({ type: 'waiting', host: plan.name, role: role.name, task: current.task, what, message }),
  };
  const handlerNames = Object.keys(role.handlers ?? {});
  let reported: Promise<void> | undefined;
  const rt: RoleRuntime = {
    ctx,
    role: role.name,
    roleTags: role.tags ?? [],
    emit: (e) => {
      if (e.type === 'task-start') current = { task: e.task };
      emit(e);
    },
    tags,
    handlers: handlerNames,
    notified: new Set(),
    journal,
    loadJournal: async () => {
      reported ??= journal.load().then(async () => {
        // A handler the role does not have is no work of its (an entry is data, never a name
        // to call).
        const earlier = journal.earlier(role.name).filter((e) => e.kind !== 'handler' || handlerNames.includes(e.name));
        if (earlier.length === 0) return;
        // Handlers a killed run notified run at this role's end, whatever changes now.
        for (const e of earlier) if (e.kind === 'handler') rt.notified.add(e.name);
        await runTask(rt, unfinished, { entries: earlier, tags: ['always'] });
        notes.push(`${role.name}: finishing what an interrupted run left: ${leftOver(earlier)}`);
      });
      return reported;
    },
    hostVars: Object.fromEntries([...plan.vars].map(([k, v]) => [k, v.value])),
    inHandler: false,
    note: (text) => notes.push(text),
    runHandlers: async () => {
      const due = handlerNames.filter((n) => rt.notified.has(n));
      rt.notified.clear();
      if (due.length === 0) return;
      const wasInHandler = rt.inHandler;
      rt.inHandler = true;
      try {
        for (const name of due) {
          await role.handlers![name]!(bindTasks(rt, name), vars);
          journal.clear(role.name, 'handler', name);
        }
      } finally {
        rt.inHandler = wasInHandler;
      }
    },
  };
  return rt;
}

async function runRole(rt: RoleRuntime, prepared: PreparedRole, options: EngineOptions, reads: Probe[] | undefined, checked: unknown): Promise<void> {
  const ctx = rt.ctx;
  let failure: unknown;
  // Only what an earlier change made stale (or a probe used up) is read again.
  if (reads) await prefetch(ctx.conn, ctx.facts, reads);
  try {
    // A role that may act on the journal reads it first (already read when it prefetched).
    if (prepared.role.prefetch || prepared.role.handlers) await rt.loadJournal();
    await prepared.role.run(bindTasks(rt), prepared.vars, checked);
  } catch (error) {
    failure = error;
  }
  const interrupted = isHostctlError(failure, 'interrupted') || isHostctlError(failure, 'unreachable');
  if (!interrupted && (failure === undefined || options.forceHandlers)) {
    try {
      await rt.runHandlers();
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure === undefined && ctx.state.daemonReloadPending && !ctx.check) {
    await runTask(rt, daemonReload, {});
  }
  if (failure !== undefined) throw failure instanceof HostctlError ? failure : new HostctlError('host', describeError(failure), { cause: failure });
}
