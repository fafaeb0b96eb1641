// Everything a run reports is one of these events; renderers (listr2, plain lines, JSON)
// are maps over this union, so a new kind cannot be forgotten by one of them.

export type TaskStatus = 'ok' | 'changed' | 'may-change' | 'failed' | 'skipped';

export interface HostRecap {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  unreachable: boolean;
}

export interface TaskRef {
  host: string;
  role: string;
  task: string;
  // Handlers run as tasks of their role; the flag lets renderers say so.
  handler?: boolean;
}

export type RunEvent =
  | { type: 'run-start'; playbook: string; hosts: string[]; check: boolean }
  | { type: 'host-start'; host: string; address: string }
  | ({ type: 'task-start' } & TaskRef)
  | ({ type: 'task-progress'; message: string } & TaskRef)
  // A wait longer than a moment, and what it waits for: `what` is run-lock, connection,
  // dpkg-lock, backup-lock...; `message` the line to show. role and task when a task waits.
  | { type: 'waiting'; host: string; role?: string; task?: string; what: string; message: string }
  | ({
      type: 'task-end';
      status: TaskStatus;
      reason: string;
      durationMs: number;
      diff?: string;
    } & TaskRef)
  | { type: 'host-end'; host: string; unreachable: boolean; failed: boolean; error?: string; roundTrips: number; durationMs: number; notes: string[] }
  | { type: 'recap'; hosts: Record<string, HostRecap>; durationMs: number };

export type EventType = RunEvent['type'];
export type EventOf<T extends EventType> = Extract<RunEvent, { type: T }>;
export type EventSink = (event: RunEvent) => void;
