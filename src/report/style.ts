import { styleText } from 'node:util';
import type { TaskStatus } from '../core/events.js';

// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
export function makeStyle(stream: NodeJS.WriteStream) {
  const on = stream.isTTY === true && !('NO_COLOR' in process.env && process.env.NO_COLOR !== '') && process.env.TERM !== 'dumb';
  const paint = (format: Parameters<typeof styleText>[0]) => (text: string) => (on ? styleText(format, text) : text);
  return {
    dim: paint('dim'),
    bold: paint('bold'),
    status: (status: TaskStatus) =>
      ({ ok: paint('green'), changed: paint('yellow'), 'may-change': paint('yellow'), failed: paint('red'), skipped: paint('cyan') })[status](status),
    diffLine: (line: string) =>
      line.startsWith('+') && !line.startsWith('+++') ? paint('green')(line) : line.startsWith('-') && !line.startsWith('---') ? paint('red')(line) : line,
  };
}

export type Style = ReturnType<typeof makeStyle>;
