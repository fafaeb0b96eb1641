import { createInterface } from 'node:readline/promises';
import { StringDecoder } from 'node:string_decoder';
import { HostctlError, inputError } from '../../core/errors.js';

// Questions the SSH transport may have to ask a human: a key passphrase, or whether to
// trust a new host key. An interface so tests (and a future UI) can answer instead of a TTY.
export interface Prompter {
  // Reads a line without echoing it.
  secret(question: string): Promise<string>;
  // Asks until the answer is yes or no.
  confirm(question: string): Promise<boolean>;
}

// Hosts connect in parallel, but a terminal can hold one question at a time.
let queue: Promise<unknown> = Promise.resolve();
function serialized<T>(ask: () => Promise<T>): Promise<T> {
  const next = queue.then(ask, ask);
  queue = next.catch(() => undefined);
  return next;
}

function requireTty(): void {
  if (!process.stdin.isTTY) {
    throw inputError('a question needs an answer, but stdin is not a terminal', {
      hint: 'run hostctl on a terminal, or prepare keys (ssh-agent) and known_hosts beforehand',
    });
  }
}

// Reads a line from the terminal in raw mode, echoing nothing: OpenSSH's read_passphrase.
function readHidden(question: string): Promise<string> {
  requireTty();
  const stdin = process.stdin;
  process.stderr.write(question);
  const wasRaw = stdin.isRaw;
  stdin.setRawMode(true);
  stdin.resume();
  const decoder = new StringDecoder('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: Buffer) => {
      for (const ch of decoder.write(chunk)) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new HostctlError('interrupted', 'interrupted at a passphrase prompt'));
          return;
        }
        if (ch === '\u0004' && value === '') {
          finish();
          resolve('');
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch === '\u0015') value = '';
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function askYesNo(question: string): Promise<boolean> {
  requireTty();
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    let answer = (await rl.question(question)).trim().toLowerCase();
    while (answer !== 'yes' && answer !== 'no') {
      answer = (await rl.question('Please type "yes" or "no": ')).trim().toLowerCase();
    }
    return answer === 'yes';
  } finally {
    rl.close();
  }
}

// The default prompter: process.stdin must be a TTY; questions go to stderr so stdout
// stays machine-readable.
export const ttyPrompter: Prompter = {
  secret: (question) => serialized(() => readHidden(question)),
  confirm: (question) => serialized(() => askYesNo(question)),
};
