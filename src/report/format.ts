import type { EventOf, HostRecap } from '../core/events.js';
import type { Style } from './style.js';

export const seconds = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

// One task's outcome as a line: the same facts on a terminal and in a cron mail.
export function taskLine(e: EventOf<'task-end'>, style: Style): string {
  const handler = e.handler ? ' (handler)' : '';
  return `${e.host} | ${e.role} | ${e.task}${handler} | ${style.status(e.status)} ${style.dim(`(${seconds(e.durationMs)})`)}${e.reason ? ` ${e.reason}` : ''}`;
}

// A wait, with the task that waits when there is one.
export function waitingLine(e: EventOf<'waiting'>): string {
  return [e.host, e.role, e.task, e.message].filter(Boolean).join(' | ');
}

export function diffBlock(diff: string, style: Style): string {
  return diff
    .split('\n')
    .map((l) => `    ${style.diffLine(l)}`)
    .join('\n');
}

export function recapLines(hosts: Record<string, HostRecap>, ends: Map<string, EventOf<'host-end'>>, durationMs: number, style: Style): string[] {
  const width = Math.max(...Object.keys(hosts).map((h) => h.length), 4);
  const lines = [style.bold('RECAP')];
  for (const [host, r] of Object.entries(hosts)) {
    const end = ends.get(host);
    const extra = end ? style.dim(`  ${seconds(end.durationMs)}, ${end.roundTrips} round trip${end.roundTrips === 1 ? '' : 's'}`) : '';
    lines.push(
      `${host.padEnd(width)} : ok=${r.ok} changed=${r.changed} unreachable=${r.unreachable ? 1 : 0} failed=${r.failed} skipped=${r.skipped}${extra}`,
    );
    if (end?.error) lines.push(`${' '.repeat(width)}   ${end.unreachable ? 'UNREACHABLE' : 'FAILED'}: ${end.error.split('\n').join(`\n${' '.repeat(width + 3)}`)}`);
    for (const note of end?.notes ?? []) lines.push(`${' '.repeat(width)}   ${note}`);
  }
  lines.push(style.dim(`finished in ${seconds(durationMs)}`));
  return lines;
}
