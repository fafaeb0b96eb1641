import pRetry, { AbortError } from 'p-retry';
import { hostError, isHostctlError } from '../core/errors.js';
import { defineResource, noop } from './resource.js';
import type { Connection } from '../transport/connection.js';
import type { HostContext } from './host-context.js';
import { commandFact, probeOnce } from '../facts/probe.js';
import { quote } from '../transport/quote.js';

export interface WaitArgs {
  // What is awaited, for the title: "postgres healthy".
  what: string;
  // Ready when this command exits 0 ...
  command?: string;
  // ... or when this URL answers 2xx from the host itself (curl on the host) ...
  url?: string;
  // ... or when this podman container's health check passes ...
  container?: string;
  // ... where the health podman last recorded will do when it is fresh (see recordedHealthCheck):
  // for a container nothing in this run started or restarted.
  recordedHealth?: boolean;
  // ... or when this function resolves true ...
  probe?: (conn: Connection) => Promise<boolean>;
  // ... or when no process holds a lock (flock or fcntl) on this file; meanwhile a waiting
  // line names the holder (process, command, systemd unit, since when).
  lock?: string;
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
  (a.container ? (a.recordedHealth ? recordedHealthCheck(a.container) : `podman healthcheck run ${quote(a.container)}`) : undefined) ??
  (a.url ? `c=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' ${quote(a.url)}); echo "HTTP $c"; case $c in 2??) exit 0;; esac; exit 1` : undefined);

// Shell that passes when the health podman recorded for `container` can stand for a check now,
// and otherwise runs one (`podman healthcheck run`, which execs the check in the container:
// ~0.2 s of the target's time, where reading the record costs a third of that). Podman's own
// timer checks a running container every HealthInterval; its record stands when:
// - the container is running (a paused one keeps its last status) and podman says healthy;
// - it started more than one interval + timeout ago: a status from before a restart that was
//   not redone yet is not taken (podman keeps the log across restarts);
// - the last check passed, ended after that start and at most two intervals + timeout ago:
//   the timer is alive (a stopped or lost timer leaves an old "healthy" behind).
// The interval and timeout are the container's own (its unit's HealthInterval/HealthTimeout),
// in nanoseconds so that shell arithmetic takes them. A container without a health check, or
// an answer of any other shape, falls to the real check, which says what is wrong.
export function recordedHealthCheck(container: string): string {
  const c = quote(container);
  const format =
    '{{.State.Status}} {{.State.Health.Status}} {{.State.StartedAt.Unix}} {{printf "%d %d" .Config.Healthcheck.Interval .Config.Healthcheck.Timeout}}' +
    ' {{$x := -1}}{{$e := ""}}{{range .State.Health.Log}}{{$x = .ExitCode}}{{$e = .End}}{{end}}{{$x}} {{$e}}';
  return [
    `set -- $(podman inspect --format ${quote(format)} -- ${c} 2>/dev/null)`,
    // $1 state, $2 health, $3 started (epoch), $4 interval, $5 timeout (ns), $6 last check's exit code, $7 its end.
    'if [ $# -eq 7 ] && [ "$1 $2 $6" = "running healthy 0" ] && hc_end=$(date -d "$7" +%s 2>/dev/null) && hc_now=$(date +%s) &&',
    '  hc_i=$(( ($4 + $5) / 1000000000 + 1 )) && [ $((hc_now - $3)) -gt $hc_i ] && [ "$hc_end" -ge "$3" ] && [ $((hc_now - hc_end)) -le $((2 * hc_i)) ]; then',
    '  echo "healthy (recorded by podman $((hc_now - hc_end))s ago)"',
    'else',
    `  podman healthcheck run ${c}`,
    'fi',
  ].join('\n');
}

// Shell that, when a process holds a lock on `path`, prints a notice (see ExecOptions.onNotice)
// "waiting for WHAT: PATH is held by process N (COMM) of UNIT since TIME". The holder comes
// from /proc/locks (flock and fcntl locks alike), the unit from the process's cgroup.
// Only shown, never acted on.
export function lockHolderNotice(path: string, what: string): string {
  const line = `waiting for ${what}: ${path} is held by process `;
  return [
    String.raw`hc_p=$(i=$(stat -Lc %i -- ${quote(path)} 2>/dev/null) && awk -v i="$i" '$2 != "->" { split($6, a, ":"); if (a[3] == i && $5 > 0) { print $5; exit } }' /proc/locks)`,
    'if [ -n "$hc_p" ]; then',
    String.raw`  hc_u=$(sed -n 's|^0::.*/\([^/]*\.service\)$|\1|p' /proc/$hc_p/cgroup 2>/dev/null)`,
    // Since when: the process's start (field 22 of its stat, in clock ticks after boot).
    String.raw`  hc_s=$(t=$(sed 's/.*) //' /proc/$hc_p/stat | cut -d' ' -f20) && b=$(sed -n 's/^btime //p' /proc/stat) && date -u -d "@$((b + t / $(getconf CLK_TCK)))" '+%Y-%m-%d %H:%M:%S UTC' 2>/dev/null)`,
    `  printf '%s %s%s (%s)%s%s\\n' "$HOSTCTL_NOTICE" ${quote(line)} "$hc_p" "$(cat /proc/$hc_p/comm 2>/dev/null)" ` + '"${hc_u:+ of $hc_u}" "${hc_s:+ since $hc_s}"',
    'fi',
  ].join('\n');
}

// Waits until no process holds a lock on args.lock, saying who does meanwhile.
async function waitForLock(ctx: HostContext, args: WaitArgs & { lock: string }) {
  const seconds = ctx.check ? 0 : Math.ceil(((args.retries ?? 3) + 1) * (args.delaySeconds ?? 5));
  const r = await ctx.conn.exec(`${lockHolderNotice(args.lock, args.what)}\n[ ! -e ${quote(args.lock)} ] || flock -w ${seconds} ${quote(args.lock)} true`, {
    signal: ctx.signal,
    onNotice: (text) => ctx.waiting('lock', text),
  });
  if (r.code !== 0) throw hostError(`${args.what}: ${args.lock} is still locked after ${seconds}s${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''}`);
  return noop(`${args.lock} is free`);
}

export const wait = defineResource<WaitArgs>({
  kind: 'wait',
  probes: (a) => {
    const cmd = probeCommand(a);
    return cmd ? [{ fact: commandFact(cmd) }] : [];
  },
  title: (a) => `wait for ${a.what}`,
  async plan(ctx, args) {
    if (args.lock !== undefined) return waitForLock(ctx, { ...args, lock: args.lock });
    const probe = async (): Promise<string | undefined> => {
      if (args.probe) return (await args.probe(ctx.conn)) ? undefined : 'not ready';
      const cmd = probeCommand(args);
      if (!cmd) throw hostError(`wait for ${args.what}: give command, url, container or probe`);
      // The first answer may come from the role's prefetch; every retry asks the host again.
      const r = await probeOnce(ctx.facts, cmd);
      return r.code === 0 ? undefined : (r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).split('\n').pop();
    };
    const retries = ctx.check ? 0 : (args.retries ?? 3);
    const delay = (args.delaySeconds ?? 5) * 1000;
    let attempts = 0;
    // A lost connection (a reboot, a cut link) is made again until the wait's own end; the
    // probe then goes on. Past that end, or when the host is gone for good, the wait stops
    // with the connection's error.
    const deadline = Date.now() + (retries + 1) * delay;
    const attempt = async () => {
      const failure = await probe();
      if (failure !== undefined && args.giveUpWhen) {
        const hopeless = await ctx.conn.exec(args.giveUpWhen);
        if (hopeless.code === 0) throw new AbortError(`${failure}; giving up: ${hopeless.stdout.trim() || args.giveUpWhen}`);
      }
      return failure;
    };
    let lost: unknown;
    await pRetry(
      async () => {
        attempts += 1;
        let failure: string | undefined;
        try {
          failure = await attempt();
        } catch (error) {
          if (!isHostctlError(error, 'unreachable')) throw error;
          ctx.waiting('connection', `connection lost while waiting for ${args.what}: reconnecting`);
          try {
            await ctx.conn.reconnect(deadline, ctx.signal);
          } catch (gone) {
            lost = gone;
            throw new AbortError(gone as Error);
          }
          failure = 'connection lost; reconnected';
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
      if (lost) throw lost;
      throw hostError(`${args.what} not ready after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${error.message}`);
    });
    return noop(`ready after ${attempts} attempt${attempts === 1 ? '' : 's'}`);
  },
});
