import type { EventOf, RunEvent } from '../core/events.js';
import { diffBlock, recapLines, taskLine, waitingLine } from './format.js';
import { makeStyle } from './style.js';
import type { Renderer } from './renderer.js';

// Line-oriented output for cron, CI and pipes: every finished task is one line, progress
// of long waits too, so a log read later tells the whole story.
export function plainRenderer(stream: NodeJS.WriteStream = process.stdout, verbose = false): Renderer {
  const style = makeStyle(stream);
  const ends = new Map<string, EventOf<'host-end'>>();
  const write = (line: string) => stream.write(`${line}\n`);
  const handlers: { [K in RunEvent['type']]: (e: EventOf<K>) => void } = {
    'run-start': (e) => write(style.bold(`PLAY ${e.playbook} on ${e.hosts.join(', ')}${e.check ? ' (check mode: nothing is changed)' : ''}`)),
    'host-start': (e) => verbose && write(`${e.host} | connecting to ${e.address}`),
    'task-start': (e) => verbose && write(style.dim(`${e.host} | ${e.role} | ${e.task} ...`)),
    'task-progress': (e) => write(style.dim(`${e.host} | ${e.role} | ${e.task} | ${e.message}`)),
    waiting: (e) => write(waitingLine(e)),
    'task-end': (e) => {
      write(taskLine(e, style));
      if (e.diff) write(diffBlock(e.diff, style));
    },
    'host-end': (e) => {
      ends.set(e.host, e);
    },
    recap: (e) => recapLines(e.hosts, ends, e.durationMs, style).forEach(write),
  };
  return {
    sink: (e) => (handlers[e.type] as (e: RunEvent) => void)(e),
    finish: async () => {},
  };
}
