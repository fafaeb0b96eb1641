import { defineFact, type Fact } from './cache.js';
import type { ExecResult } from '../transport/connection.js';

// A read-only command's result as a fact: its first answer can come from a role's prefetch,
// later attempts forget it and ask again.
export const commandFact = (command: string): Fact<ExecResult> =>
  defineFact({ id: `probe:${command}`, command, parse: (r) => r });
