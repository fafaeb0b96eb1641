import { askHidden, askYesNo } from '../../core/terminal.js';

// Questions the SSH transport may have to ask a human: a key passphrase, or whether to
// trust a new host key. An interface so tests (and a future UI) can answer instead of a TTY.
export interface Prompter {
  // Reads a line without echoing it.
  secret(question: string): Promise<string>;
  // Asks until the answer is yes or no.
  confirm(question: string): Promise<boolean>;
}

const hint = 'run hostctl on a terminal, or prepare keys (ssh-agent) and known_hosts beforehand';

// The default prompter: the terminal; questions go to stderr so stdout stays machine-readable.
export const ttyPrompter: Prompter = {
  secret: (question) => askHidden(question, { hint }),
  confirm: (question) => askYesNo(question, { hint }),
};
