import type { TaskStatus } from './events.js';

// What every task returns: the same shape for every resource, as data a role can branch on.
export interface TaskResult<T = unknown> {
  status: TaskStatus;
  // True for 'changed' and 'may-change': something was (or in check mode would be) done.
  changed: boolean;
  reason: string;
  diff?: string;
  // Resource-specific output, e.g. a command's stdout.
  data?: T;
}

export const isChanged = (status: TaskStatus) => status === 'changed' || status === 'may-change';
