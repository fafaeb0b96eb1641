import { defineFact, type Facts, type Fact } from './cache.js';
import { parseStats, statScript, type PathStat } from '../transport/connection.js';
import { quote } from '../transport/quote.js';

export const statFact = (path: string): Fact<PathStat> =>
  defineFact({ id: `stat:${path}`, command: statScript([path]), parse: (r) => parseStats(r.stdout)[0]! });

// Many paths in one command; each result is also remembered under its own statFact.
export const statsFact = (paths: readonly string[]): Fact<PathStat[]> =>
  defineFact({ id: `stats:${paths.join('\0')}`, command: statScript(paths), parse: (r) => parseStats(r.stdout) });

// A small text file's content (undefined when it does not exist), e.g. /proc/sys values.
export const readFact = (path: string): Fact<string | undefined> =>
  defineFact({
    id: `read:${path}`,
    command: `if [ -e ${quote(path)} ]; then printf Y; base64 -w0 < ${quote(path)}; else printf N; fi`,
    parse: (r) => (r.stdout.startsWith('Y') ? Buffer.from(r.stdout.slice(1).trim(), 'base64').toString('utf8') : undefined),
  });

// Stats of these paths: those already known from this run (or a prefetch) cost nothing, the
// rest are read in one round trip.
export async function statsOf(facts: Facts, paths: readonly string[]): Promise<PathStat[]> {
  const missing = paths.filter((p) => !facts.has(statFact(p).id));
  if (missing.length > 1) {
    const fresh = await facts.get(statsFact(missing));
    fresh.forEach((s) => facts.remember(statFact(s.path), s));
  }
  return Promise.all(paths.map((p) => facts.get(statFact(p))));
}
