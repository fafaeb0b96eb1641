import { hostError } from '../core/errors.js';
import { change, defineResource, noop } from './resource.js';
import { isSecret, redact, type Secret } from '../core/secret.js';
import { firstLine } from '../core/text.js';
import type { ExecResult } from '../transport/connection.js';
import { statsOf } from '../facts/files.js';
import { commandFact, probeOnce } from '../facts/probe.js';

export interface CommandArgs {
  // A shell command line, run with /bin/sh -c (as the become user when the host uses become).
  cmd: string;
  // Fed on stdin: the way to hand a command a secret.
  stdin?: string | Secret;
  // Guards, as Ansible's: skip when `creates` exists, when `removes` does not, when `unless`
  // exits 0, or when `onlyIf` exits non-zero. A command without guards always runs and
  // honestly reports changed.
  creates?: string;
  removes?: string;
  unless?: string;
  onlyIf?: string;
  changedWhen?: (result: ExecResult) => boolean;
  failedWhen?: (result: ExecResult) => boolean;
  // A read-only command that also runs in check mode (a probe).
  readOnly?: boolean;
  timeoutMs?: number;
}


export const command = defineResource<CommandArgs>({
  kind: 'command',
  // Guards and read-only commands are reads: a role's prefetch can answer them.
  probes: (a) => [
    ...[a.creates, a.removes].filter((p): p is string => p !== undefined).map((p) => ({ stat: p })),
    ...[a.unless, a.onlyIf, a.readOnly && a.stdin === undefined ? a.cmd : undefined].filter((c): c is string => c !== undefined).map((c) => ({ fact: commandFact(c) })),
  ],
  title: (a) => `command ${redact(firstLine(a.cmd))}`,
  async plan(ctx, args) {
    const paths = [args.creates, args.removes].filter((p): p is string => p !== undefined);
    if (paths.length) {
      const stats = new Map((await statsOf(ctx.facts, paths)).map((s) => [s.path, s.exists]));
      if (args.creates && stats.get(args.creates)) return noop(`${args.creates} exists`);
      if (args.removes && !stats.get(args.removes)) return noop(`${args.removes} does not exist`);
    }
    if (args.unless && (await probeOnce(ctx.facts, args.unless)).code === 0) return noop(`unless: \`${redact(firstLine(args.unless))}\` succeeded`);
    if (args.onlyIf && (await probeOnce(ctx.facts, args.onlyIf)).code !== 0) return noop(`only if: \`${redact(firstLine(args.onlyIf))}\` failed`);

    const execute = async () => {
      const stdin = isSecret(args.stdin) ? args.stdin.reveal() : args.stdin;
      const result =
        args.readOnly && stdin === undefined
          ? await probeOnce(ctx.facts, args.cmd)
          : await ctx.conn.exec(args.cmd, {
              ...(stdin !== undefined ? { stdin } : {}),
              ...(args.timeoutMs ? { timeoutMs: args.timeoutMs } : {}),
              signal: ctx.signal,
            });
      const failed = args.failedWhen ? args.failedWhen(result) : result.code !== 0;
      if (failed) {
        const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join('\n');
        throw hostError(`exited ${result.code}${detail ? `: ${redact(detail)}` : ''}`);
      }
      return result;
    };

    if (args.readOnly) {
      const result = await execute();
      return noop(`exit ${result.code}`, result);
    }
    return change(`run \`${redact(firstLine(args.cmd))}\``, async () => {
      const result = await execute();
      const changed = args.changedWhen ? args.changedWhen(result) : true;
      return { changed, data: result, ...(changed ? {} : { reason: 'ran; changedWhen says no change' }) };
    });
  },
});
