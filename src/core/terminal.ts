import { closeSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { StringDecoder } from 'node:string_decoder';
import { ReadStream } from 'node:tty';
import { HostctlError, inputError } from './errors.js';

// Questions to a human on a terminal: a hidden line (a passphrase, a vault password), a line
// with echo, yes or no. The SSH transport and the vault both ask through here, so the two
// behave the same (one reader that never splits a UTF-8 character across chunks).

// The streams a question uses. Without one, standard input when it is a terminal, else the
// controlling terminal (/dev/tty), so `cat file | hostctl vault encrypt --ask-vault-pass` works.
export interface TerminalIo {
  readonly input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  readonly output: NodeJS.WritableStream;
}

// Whether a question could be asked at all (for "ask when nothing else was given").
export function canAsk(io?: TerminalIo): boolean {
  if (io) return Boolean(io.input.isTTY);
  if (process.stdin.isTTY) return true;
  try {
    closeSync(openSync('/dev/tty', 'r'));
    return true;
  } catch {
    return false;
  }
}

// Hosts connect in parallel, but a terminal can hold one question at a time.
let queue: Promise<unknown> = Promise.resolve();
function serialized<T>(ask: () => Promise<T>): Promise<T> {
  const next = queue.then(ask, ask);
  queue = next.catch(() => undefined);
  return next;
}

const noTerminal = (hint: string) => inputError('cannot ask: there is no terminal to ask on', { hint });

// Run fn with the terminal: the given streams, else standard input when it is a terminal, else
// /dev/tty (closed afterwards).
async function withTerminal<T>(io: TerminalIo | undefined, fn: (io: TerminalIo) => Promise<T>): Promise<T> {
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

export interface AskOptions {
  io?: TerminalIo | undefined;
  // What to do instead, said when there is no terminal.
  hint: string;
}

// A line without echo, OpenSSH's read_passphrase: Ctrl-C interrupts, Ctrl-D on an empty line
// ends input, Ctrl-U clears the line, Backspace deletes a character.
export function askHidden(question: string, options: AskOptions): Promise<string> {
  return serialized(() => withTerminal(options.io, (terminal) => readHidden(question, terminal, options.hint)));
}

async function readHidden(question: string, io: TerminalIo, hint: string): Promise<string> {
  const { input, output } = io;
  if (!input.isTTY || typeof input.setRawMode !== 'function') throw noTerminal(hint);
  const setRawMode = input.setRawMode.bind(input);
  // Raw mode (no echo) before the question: whatever is typed after seeing it is not shown.
  setRawMode(true);
  output.write(question);
  input.resume();
  // A multi-byte character may arrive in two chunks; the decoder holds the first half.
  const decoder = new StringDecoder('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const finish = (error?: Error): void => {
        input.removeListener('data', onData);
        input.removeListener('end', onEnd);
        if (error) reject(error);
        else resolve(value);
      };
      const ended = () => (value === '' ? inputError('nothing was typed (end of input)') : undefined);
      const onEnd = () => finish(ended());
      const onData = (chunk: Buffer | string) => {
        for (const char of typeof chunk === 'string' ? chunk : decoder.write(chunk)) {
          if (char === '\r' || char === '\n') return finish();
          if (char === '\u0003') return finish(new HostctlError('interrupted', 'interrupted at a prompt'));
          if (char === '\u0004') return finish(ended());
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

// A line with echo (a variable name, or a value with --show-input).
export function askLine(question: string, options: AskOptions): Promise<string> {
  return serialized(() =>
    withTerminal(options.io, async (terminal) => {
      if (!terminal.input.isTTY) throw noTerminal(options.hint);
      const rl = createInterface({ input: terminal.input, output: terminal.output, terminal: true });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
        terminal.input.pause();
      }
    }),
  );
}

// Asks until the answer is yes or no.
export async function askYesNo(question: string, options: AskOptions): Promise<boolean> {
  let answer = (await askLine(question, options)).trim().toLowerCase();
  while (answer !== 'yes' && answer !== 'no') answer = (await askLine('Please type "yes" or "no": ', options)).trim().toLowerCase();
  return answer === 'yes';
}
