import pRetry, { AbortError } from 'p-retry';
import { hostError } from '../core/errors.js';
import { defineResource, noop } from './resource.js';
import type { Connection } from '../transport/connection.js';
import { commandFact, probeOnce } from '../facts/probe.js';
import { quote } from '../transport/quote.js';

export interface WaitArgs {
  // What is awaited, for the title: "postgres healthy".
  what: string;
  // Ready when this command exits 0 ...
  command?: string;
  // ... or when this URL answers 2xx from the host itself (curl on the host) ...
  url?: string;
  // ... or when this function resolves true.
  probe?: (conn: Connection) => Promise<boolean>;
  // Stop waiting at once when this command exits 0 (e.g. the unit is in "failed" state);
  // its output becomes the failure's detail.
  giveUpWhen?: string;
  // Ansible's until/retries/delay: 3 retries, 5 s apart by default.
  retries?: number;
  delaySeconds?: number;
}

// Waiting changes nothing on the host: it succeeds (ok) or fails, never "changed". In check
// mode it probes once, since nothing it waits for was started.
// The status code on stdout, so a failed probe says why (HTTP 503, or 000: no answer).
const probeCommand = (a: WaitArgs) =>
  a.command ??
  (a.url ? `c=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' ${quote(a.url)}); echo "HTTP $c"; case $c in 2??) exit 0;; esac; exit 1` : undefined);

export const wait = defineResource<WaitArgs>({
  kind: 'wait',
  probes: (a) => {
    const cmd = probeCommand(a);
    return cmd ? [{ fact: commandFact(cmd) }] : [];
  },
  title: (a) => `wait for ${a.what}`,
  async plan(ctx, args) {
    const probe = async (): Promise<string | undefined> => {
      if (args.probe) return (await args.probe(ctx.conn)) ? undefined : 'not ready';
      const cmd = probeCommand(args);
      if (!cmd) throw hostError(`wait for ${args.what}: give command, url or probe`);
      // The first answer may come from the role's prefetch; every retry asks the host again.
      const r = await probeOnce(ctx.facts, cmd);
      return r.code === 0 ? undefined : (r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).split('\n').pop();
    };
    const retries = ctx.check ? 0 : (args.retries ?? 3);
    const delay = (args.delaySeconds ?? 5) * 1000;
    let attempts = 0;
    await pRetry(
      async () => {
        attempts += 1;
        const failure = await probe();
        if (failure !== undefined && args.giveUpWhen) {
          const hopeless = await ctx.conn.exec(args.giveUpWhen);
          if (hopeless.code === 0) throw new AbortError(`${failure}; giving up: ${hopeless.stdout.trim() || args.giveUpWhen}`);
        }
        if (failure !== undefined) throw new Error(failure);
      },
      {
        retries,
        factor: 1,
        minTimeout: delay,
        maxTimeout: delay,
        randomize: false,
        signal: ctx.signal,
        onFailedAttempt: ({ attemptNumber, error }) => {
          ctx.progress(`attempt ${attemptNumber}/${retries + 1}: ${error.message}`);
        },
      },
    ).catch((error: Error) => {
      throw hostError(`${args.what} not ready after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${error.message}`);
    });
    return noop(`ready after ${attempts} attempt${attempts === 1 ? '' : 's'}`);
  },
});
