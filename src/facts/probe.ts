import { defineFact, type Fact, type Facts } from './cache.js';
import type { ExecResult } from '../transport/connection.js';

// A read-only command's result as a fact: its first answer can come from a role's prefetch,
// later attempts forget it and ask again.
export const commandFact = (command: string): Fact<ExecResult> =>
  defineFact({ id: `probe:${command}`, command, parse: (r) => r });

// Runs a read-only command once: the answer a prefetch left, or a fresh one. Either way it
// is not kept, so a role that asks again (e.g. in a loop) asks the host again.
export async function probeOnce(facts: Facts, command: string): Promise<ExecResult> {
  const fact = commandFact(command);
  try {
    return await facts.get(fact);
  } finally {
    facts.forget(fact.id);
  }
}
