import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthHandlerMiddleware, AuthenticationType, ParsedKey } from 'ssh2';
import { inputError, type HostctlError } from '../../core/errors.js';
import type { Prompter } from './prompt.js';

// Client authentication in OpenSSH's order: every key in ssh-agent, then each private key
// file. Keys are loaded only when reached, so an encrypted key behind a working agent key
// never asks for its passphrase.

export interface AuthOptions {
  user: string;
  // Existing private key files, in order.
  identityFiles: readonly string[];
  // ssh-agent socket; undefined for none.
  agentSocket: string | undefined;
  interactive: boolean;
  prompter: Prompter;
  // Called around a human prompt, so the connect timeout does not run while they type.
  whilePrompting<T>(ask: () => Promise<T>): Promise<T>;
}

const NO_PASSPHRASE = /no passphrase given/i;
const BAD_PASSPHRASE = /bad passphrase|integrity check failed|decrypt/i;

// One authentication run: the ssh2 authHandler, and what was tried, for the error message.
export class AuthSequence {
  readonly #options: AuthOptions;
  readonly #queue: Array<'agent' | string>;
  // What was offered, for "tried: ..." in the failure message.
  readonly tried: string[] = [];
  // Encrypted key files skipped because no one could be asked for the passphrase.
  readonly lockedKeys: string[] = [];
  // Files that could not be used, with why.
  readonly unusable: string[] = [];
  // A failure that must end authentication at once (Ctrl-C at the prompt).
  fatal: Error | undefined;
  // Set when the server stopped accepting public keys: the methods it still offers.
  serverMethods: string[] | undefined;

  constructor(options: AuthOptions) {
    this.#options = options;
    this.#queue = [...(options.agentSocket ? ['agent' as const] : []), ...options.identityFiles];
  }

  readonly handler: AuthHandlerMiddleware = (methodsLeft, _partial, next) => {
    // ssh2 accepts `false` ("no more methods") although its types do not say so.
    const done = next as (method: AnyAuthMethod | false) => void;
    // ssh2 calls with null before the first attempt; afterwards the server's list.
    const left = methodsLeft as AuthenticationType[] | null;
    if (left && !left.includes('publickey')) {
      this.serverMethods = left;
      done(false);
      return;
    }
    this.#next().then(
      (method) => done(method ?? false),
      (error: unknown) => {
        this.fatal = error instanceof Error ? error : new Error(String(error));
        done(false);
      },
    );
  };

  async #next(): Promise<AnyAuthMethod | undefined> {
    const { user } = this.#options;
    for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
      if (item === 'agent') {
        this.tried.push('ssh-agent');
        return { type: 'agent', username: user, agent: this.#options.agentSocket ?? '' };
      }
      const key = await this.#load(item);
      if (key) {
        this.tried.push(item);
        return { type: 'publickey', username: user, key };
      }
    }
    return undefined;
  }

  async #load(file: string): Promise<ParsedKey | undefined> {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (error) {
      this.unusable.push(`${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      return undefined;
    }
    const first = pick(ssh2.utils.parseKey(data));
    if (!(first instanceof Error)) return this.#usable(file, first);
    if (!NO_PASSPHRASE.test(first.message)) {
      this.unusable.push(`${file} (${first.message})`);
      return undefined;
    }
    if (!this.#options.interactive) {
      this.lockedKeys.push(file);
      return undefined;
    }
    // Three tries, like OpenSSH; an empty answer skips the key.
    let question = `Enter passphrase for key '${file}': `;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const passphrase = await this.#options.whilePrompting(() => this.#options.prompter.secret(question));
      if (passphrase === '') break;
      const key = pick(ssh2.utils.parseKey(data, passphrase));
      if (!(key instanceof Error)) return this.#usable(file, key);
      if (!BAD_PASSPHRASE.test(key.message)) {
        this.unusable.push(`${file} (${key.message})`);
        return undefined;
      }
      question = `Bad passphrase, try again for ${file}: `;
    }
    this.unusable.push(`${file} (no valid passphrase given)`);
    return undefined;
  }

  #usable(file: string, key: ParsedKey): ParsedKey | undefined {
    if (key.isPrivateKey()) return key;
    this.unusable.push(`${file} (not a private key)`);
    return undefined;
  }

  // Why authentication failed, as the error to throw: an input error when the one thing
  // missing was a passphrase nobody could type.
  failure(where: string): HostctlError | Error {
    if (this.fatal) return this.fatal;
    const first = this.lockedKeys[0];
    if (first !== undefined) {
      const keys = this.lockedKeys.join(', ');
      return inputError(
        `${where}: private key ${keys} ${this.lockedKeys.length > 1 ? 'are' : 'is'} encrypted and stdin is not a terminal to ask for the passphrase`,
        { hint: `load it into ssh-agent first (\`ssh-add ${first}\`), or run hostctl on a terminal` },
      );
    }
    const tried = this.tried.length > 0 ? `tried ${this.tried.join(', ')}` : 'no ssh-agent and no private key to offer';
    const skipped = this.unusable.length > 0 ? `; skipped ${this.unusable.join(', ')}` : '';
    const only = this.serverMethods ? `; the server only offers ${this.serverMethods.join(', ') || 'nothing'}` : '';
    return new Error(`permission denied (publickey) for user ${this.#options.user}: ${tried}${skipped}${only}`);
  }
}

// OpenSSH's private key format holds one key; ssh2 returns it in an array.
function pick(parsed: ParsedKey | ParsedKey[] | Error): ParsedKey | Error {
  if (Array.isArray(parsed)) return parsed[0] ?? new Error('no key in file');
  return parsed;
}
