import { closeSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { ReadStream } from 'node:tty';
import { HostctlError, inputError } from '../core/errors.js';

// The streams a prompt uses. Without one, prompts use standard input when it is a terminal, else
// the controlling terminal (/dev/tty), so `cat file | hostctl vault encrypt --ask-vault-pass` works.
export interface PromptIo {
  readonly input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  readonly output: NodeJS.WritableStream;
}

// Whether a prompt could be shown at all (for "prompt when nothing else was given").
export function canPrompt(io?: PromptIo): boolean {
  if (io) return Boolean(io.input.isTTY);
  if (process.stdin.isTTY) return true;
  try {
    closeSync(openSync('/dev/tty', 'r'));
    return true;
  } catch {
    return false;
  }
}

// Run fn with the terminal: the given streams, else standard input when it is a terminal, else
// /dev/tty (closed afterwards).
async function withTerminal<T>(io: PromptIo | undefined, fn: (io: PromptIo) => Promise<T>): Promise<T> {
  if (io) return fn(io);
  if (process.stdin.isTTY) return fn({ input: process.stdin, output: process.stderr });
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r');
  } catch {
    return fn({ input: process.stdin, output: process.stderr });
  }
  const input = new ReadStream(fd);
  try {
    return await fn({ input, output: process.stderr });
  } finally {
    input.destroy();
  }
}

// Ask for a line without echo. Ctrl-C is an interruption, Ctrl-D on an empty line ends input,
// Ctrl-U clears the line, Backspace deletes a character.
export async function promptHidden(question: string, io?: PromptIo): Promise<string> {
  return withTerminal(io, (terminal) => readHidden(question, terminal));
}

// Ask for a line with echo (a variable name, or a value with --show-input).
export async function promptLine(question: string, io?: PromptIo): Promise<string> {
  return withTerminal(io, async (terminal) => {
    if (!terminal.input.isTTY) throw noTerminal();
    const rl = createInterface({ input: terminal.input, output: terminal.output, terminal: true });
    try {
      return await rl.question(question);
    } finally {
      rl.close();
      terminal.input.pause();
    }
  });
}

const noTerminal = () =>
  inputError('cannot ask: there is no terminal to ask on', {
    hint: 'pass --vault-password-file FILE or --vault-id LABEL@FILE instead of a prompt (and values on standard input)',
  });

async function readHidden(question: string, io: PromptIo): Promise<string> {
  const { input, output } = io;
  if (!input.isTTY || typeof input.setRawMode !== 'function') {
    throw noTerminal();
  }
  const setRawMode = input.setRawMode.bind(input);
  // Raw mode (no echo) before the question: whatever is typed after seeing it is not shown.
  setRawMode(true);
  output.write(question);
  input.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const finish = (error?: Error): void => {
        input.removeListener('data', onData);
        input.removeListener('end', onEnd);
        if (error) reject(error);
        else resolve(value);
      };
      const onEnd = () => finish(value === '' ? inputError('no password was typed (end of input)') : undefined);
      const onData = (chunk: Buffer | string) => {
        for (const char of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
          if (char === '\r' || char === '\n') return finish();
          if (char === '\u0003') return finish(new HostctlError('interrupted', 'interrupted at the password prompt'));
          if (char === '\u0004') return finish(value === '' ? inputError('no password was typed (end of input)') : undefined);
          if (char === '\u007f' || char === '\b') value = [...value].slice(0, -1).join('');
          else if (char === '\u0015') value = '';
          else if (char >= ' ' || char === '\t') value += char;
        }
      };
      input.on('data', onData);
      input.on('end', onEnd);
    });
  } finally {
    setRawMode(false);
    input.pause();
    output.write('\n');
  }
}
