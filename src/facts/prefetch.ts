import { randomBytes } from 'node:crypto';
import type { Facts, Fact } from './cache.js';
import type { Connection, PathStat } from '../transport/connection.js';
import { aptState } from './apt.js';
import { statFact, statsFact } from './files.js';
import { unitState, unitStates } from './systemd.js';
import { quote } from '../transport/quote.js';

// What a resource will read, declared so a role's reads can be fetched in one round trip
// before its first task (below).
export type Probe =
  // Batched: all stats in one stat script, all units in one systemctl show, all packages in
  // one dpkg-query.
  | { stat: string }
  | { unit: string }
  | { packages: string[] }
  // Any other read-only fact (a file's content, an account, a health probe), run as is.
  | { fact: Fact<unknown> };

interface Batch {
  fact: Fact<unknown>;
  // Spreads a batched answer over the facts the resources will ask for one by one.
  seed(value: unknown): void;
}

// Reads everything a role's tasks declared they will look at (files, units, packages,
// accounts, probes) in ONE round trip and seeds the fact cache, so a converged role costs one
// command instead of one per task. What is already known is not read again.
export async function prefetch(conn: Connection, facts: Facts, probes: readonly Probe[]): Promise<void> {
  const batches: Batch[] = [];
  const unique = <T>(xs: T[]) => [...new Set(xs)];
  const fresh = <T>(id: (x: T) => string, xs: T[]) => unique(xs).filter((x) => !facts.has(id(x)));

  const paths = fresh((p: string) => statFact(p).id, probes.flatMap((p) => ('stat' in p ? [p.stat] : [])));
  if (paths.length) batches.push({ fact: statsFact(paths), seed: (v) => (v as PathStat[]).forEach((s) => facts.remember(statFact(s.path), s)) });

  const units = fresh((u: string) => unitState(u).id, probes.flatMap((p) => ('unit' in p ? [p.unit] : [])));
  if (units.length) batches.push({ fact: unitStates(units), seed: (v) => (v as ReturnType<ReturnType<typeof unitStates>['parse']>).forEach((s, i) => facts.remember(unitState(units[i]!), s)) });

  const lists = probes.flatMap((p) => ('packages' in p ? [p.packages] : [])).filter((l) => !facts.has(aptState(l).id));
  if (lists.length) {
    const all = unique(lists.flat());
    batches.push({
      fact: aptState(all),
      seed: (v) => {
        const state = v as ReturnType<ReturnType<typeof aptState>['parse']>;
        for (const list of lists) {
          const installed = new Map([...state.installed].filter(([name]) => list.includes(name)));
          facts.remember(aptState(list), { installed, cacheAge: state.cacheAge });
        }
      },
    });
  }

  for (const { fact } of probes.flatMap((p) => ('fact' in p ? [p] : []))) {
    if (!facts.has(fact.id) && !batches.some((b) => b.fact.id === fact.id)) batches.push({ fact, seed: (v) => facts.remember(fact, v) });
  }
  if (batches.length === 0) return;

  // The facts run at once (a health check or a podman query takes a tenth of a second or
  // more), each writing into its own pipe (bash process substitution: nothing touches the
  // disk, as a fact may read a secret); the pipes are then read in order, each output
  // base64-encoded between a line with a random marker and one with its exit code. Encoded,
  // because a fact's output may hold what a user on the host chose (a link target, a file
  // name), and the marker is in the command line anyone there can read: raw output could
  // forge another fact's section.
  const mark = `@hostctl-${randomBytes(8).toString('hex')}`;
  const script = [
    ...batches.map((b, i) => `exec ${10 + i}< <( set -o pipefail; ( ${b.fact.command} ) 2>/dev/null | base64 -w0; printf '\\n%s=%s\\n' '${mark}' "$?" )`),
    ...batches.map((_, i) => `printf '%s\\n' '${mark}:${i}'; cat <&${10 + i}`),
  ].join('\n');
  const out = (await conn.execRaw(`bash -c ${quote(script)}`)).stdout.toString('utf8');
  const sections = out.split(`${mark}:`).slice(1);
  sections.forEach((section, i) => {
    const nl = section.indexOf('\n');
    const body = section.slice(nl + 1);
    const end = body.indexOf(`\n${mark}=`);
    const batch = batches[i];
    // Sections come in order, one per batch; anything else is not an answer.
    if (!batch || Number(section.slice(0, nl)) !== i || end < 0) return; // the resource will ask on its own
    const code = Number(body.slice(end + mark.length + 2).trim());
    try {
      batch.seed(batch.fact.parse({ code, stdout: Buffer.from(body.slice(0, end), 'base64').toString('utf8'), stderr: '' }));
    } catch {
      // An answer its parser refuses is left unknown: the task that needs it asks on its own
      // (and fails there, with its own error) instead of every task of the host failing here.
    }
  });
}
