import { randomBytes } from 'node:crypto';
import { quote } from './quote.js';

// One run per host at a time. The lock is flock(1) on a root-only file, held by a command
// that then blocks on its stdin: the lock lives exactly as long as the connection (or, for
// the local transport, the controller process), so a killed controller never leaves a stale
// lock. The file holds who holds it, one line:
//   TOKEN CONTROLLER_PID HOLDER_PID STARTED USER@CONTROLLER
// TOKEN is random per run: after a reconnect the run knows the lock is still its own (or
// that another run held it in between, and what it read before may be stale).

// Where hostctl keeps its own bookkeeping on a host (the run lock, the run journal), unless
// the host variable hostctl_state_dir says otherwise.
export const DEFAULT_STATE_DIR = '/var/lib/hostctl';

export interface LockOwner {
  user: string;
  controller: string;
  pid: number;
  started: Date;
}

export interface RunLockSpec {
  owner: LockOwner;
  // Seconds a run waits for another run's lock before it gives up.
  timeoutSeconds: number;
  // Called with what the run waits for and the line to show (a typed event for the renderers).
  waiting(what: string, message: string): void;
  // The host's state directory (DEFAULT_STATE_DIR unless hostctl_state_dir says otherwise).
  stateDir: string;
}

// Who holds the lock, as the waiting run shows it. The line comes from the host: it is only
// shown, never acted on.
export function holderLine(content: string): string {
  const [, pid, , started, who] = content.trim().split(' ');
  if (!who || !started || !pid) return 'another run (its owner is not recorded yet)';
  return `the run started by ${who} at ${started} (pid ${pid})`;
}

export type LockOutcome =
  | { kind: 'locked' }
  | { kind: 'wait' | 'timeout' | 'taken'; holder: string }
  | { kind: 'error'; message: string };

export const newToken = () => randomBytes(8).toString('hex');

// The lock script: takes the lock (waiting up to the timeout, saying so), records the owner,
// says `MARK:locked`, runs `payload` (the run's first read, so the lock costs no round trip of
// its own) framed like a prefetch section, then holds the lock until its stdin ends.
// `retake`: the run had the lock and lost its connection: it may only take the lock back if
// no other run held it meanwhile; its own old holder (a session the server has not noticed
// is dead yet) is ended.
export function lockScript(o: { token: string; mark: string; spec: RunLockSpec; retake: boolean; payload?: string | undefined }): string {
  const { owner } = o.spec;
  const line = [o.token, owner.pid, '$$', owner.started.toISOString().replace(/\.\d+Z$/, 'Z'), `${owner.user}@${owner.controller}`];
  const say = (what: string, arg = '') => `printf '%s:${what} %s\\n' ${quote(o.mark)} ${arg || "''"}`;
  return [
    'umask 077',
    // Root keeps the lock where only root can touch it; a run without root on the host can
    // still not meet another run of the same user.
    // A user without a home of their own (become to a system account) gets a private
    // directory under /tmp; it must be theirs and not a link, or the run stops.
    `if [ "$(id -u)" = 0 ]; then d=${quote(o.spec.stateDir)}; elif [ -d "$HOME" ] && [ -w "$HOME" ]; then d="$HOME/.hostctl"; else d="/tmp/hostctl-$(id -u)"; fi`,
    `mkdir -p "$d" && [ ! -L "$d" ] && [ "$(stat -c %u -- "$d")" = "$(id -u)" ] && chmod 0700 "$d" && exec 9<>"$d/lock" || { ${say('error', '"cannot open $d/lock (it must be a directory of the user running the command)"')}; exit 1; }`,
    `t=${quote(o.token)}`,
    'held() { cat "$d/lock" 2>/dev/null | head -n 1; }',
    'if ! flock -n 9; then',
    '  h=$(held)',
    '  if [ "${h%% *}" = "$t" ]; then',
    '    kill "$(echo "$h" | cut -d" " -f3)" 2>/dev/null',
    `    flock -w 10 9 || { ${say('taken', '"$(held)"')}; exit 1; }`,
    o.retake
      ? `  else ${say('taken', '"$h"')}; exit 1`
      : `  else ${say('wait', '"$h"')}; flock -w ${Math.max(0, Math.floor(o.spec.timeoutSeconds))} 9 || { ${say('timeout', '"$(held)"')}; exit 1; }`,
    '  fi',
    o.retake ? `elif [ "$(held | cut -d' ' -f1)" != "$t" ]; then ${say('taken', '"$(held)"')}; exit 1` : '',
    'fi',
    `printf '%s %s %s %s %s\\n' ${line.map((f) => (f === '$$' ? '"$$"' : quote(String(f)))).join(' ')} > "$d/lock"`,
    say('locked'),
    // The payload's output travels base64-encoded: what it prints (a user's file name, a link
    // target) can never pass for the marker, which anyone on the host can read in `ps`. Its
    // exit code comes back through fd 5 (a POSIX pipeline reports the last command's).
    o.payload !== undefined
      ? `exec 4>&1; c=$( { { ( ${o.payload}\n) 9>&- </dev/null; printf %s "$?" >&5; } | base64 -w0 >&4; } 5>&1 ); printf '\\n%s=%s\\n' ${quote(o.mark)} "$c"`
      : '',
    // The shell becomes the holder: its pid is the one recorded.
    'exec cat >/dev/null',
  ]
    .filter(Boolean)
    .join('\n');
}
