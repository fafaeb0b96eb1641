import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostctlError, hostError, isHostctlError, unreachableError } from '../core/errors.js';
import { containsSecret, redact } from '../core/secret.js';
import { quote, quoteAll } from './quote.js';
import { asUser, inParentOf } from './safe-path.js';
import { holderLine, lockScript, newToken, type RunLockSpec } from './run-lock.js';
import type { Become, Channel, RunOptions, RunResult, StartOptions, Started } from './transport.js';

export interface ExecOptions extends RunOptions {
  env?: Record<string, string>;
  // Run as the login user even when the host uses become (e.g. reading the user's own files).
  noBecome?: boolean;
  // Lines the command prints with `printf '%s %s\n' "$HOSTCTL_NOTICE" TEXT` while it runs
  // (e.g. what it waits for) come here at once, and are not part of its stdout.
  onNotice?: (text: string) => void;
}

// A lost connection met between two commands is made again within this time.
const RECONNECT_MS = 60_000;

interface LockState {
  spec: RunLockSpec;
  token: string;
  // The command holding the lock, while it does.
  held: Started | undefined;
  taking: Promise<unknown> | undefined;
  // The run had the lock once: taking it again is a retake.
  had: boolean;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface PutOptions {
  mode: number;
  owner?: string | undefined;
  group?: string | undefined;
  // Shell command run on the temp file before the rename; `%s` stands for its path.
  validate?: string | undefined;
  // Write with this user's privileges (into a directory the user owns, e.g. ~/.ssh).
  runAs?: string | undefined;
}

export type PathType = 'file' | 'directory' | 'link' | 'other';

export interface PathStat {
  path: string;
  exists: boolean;
  type?: PathType;
  mode?: number;
  owner?: string;
  group?: string;
  size?: number;
  sha256?: string;
  linkTarget?: string;
}

// The last line of stderr when a script sent ahead of a command failed (the command did not run).
const AHEAD_FAILED = 'hostctl: a script sent ahead of this command failed; the command did not run';

type Escalation = { kind: 'none' } | { kind: 'sudo'; user: string; password?: string };

// A host as resources see it: exec, atomic put, get and batched stat, all built on the
// channel's single `run`, with become applied in one place and every round trip counted.
export class Connection {
  readonly channel: Channel;
  readonly #become: Become | undefined;
  #escalation: Escalation = { kind: 'none' };
  // Round trips (commands and transfers) this connection made: the physical cost of a run.
  roundTrips = 0;
  #lock: LockState | undefined;
  #ifLost: string | undefined;
  // Shell scripts sent ahead of the next command, in its round trip (see ahead()).
  #ahead: string[] = [];
  // Those queued inside withAhead(): only a command sent from there carries them.
  readonly #scope = new AsyncLocalStorage<string[]>();

  constructor(channel: Channel, become?: Become) {
    this.channel = channel;
    this.#become = become;
  }

  get description(): string {
    return this.channel.description;
  }

  async open(): Promise<void> {
    await this.channel.open();
    if (!this.#become) return;
    const user = this.#become.user;
    // One round trip learns who we are and whether sudo needs a password.
    // -k: a cached sudo ticket must not pass for NOPASSWD (the password would then not be sent).
    const probe = await this.#run(
      `id -un; if sudo -k -n -u ${quote(user)} true 2>/dev/null; then echo nopasswd; else echo password; fi`,
    );
    const [login, mode] = probe.stdout.toString().trim().split('\n');
    if (login === user) return;
    if (mode === 'nopasswd') {
      this.#escalation = { kind: 'sudo', user };
      return;
    }
    const password = this.#become.password?.reveal();
    if (!password) {
      throw hostError(`sudo to ${user} needs a password on ${this.description}`, {
        hint: 'set ansible_become_password (in a vault file), or give the login user NOPASSWD sudo',
      });
    }
    this.#escalation = { kind: 'sudo', user, password };
    const check = await this.exec('true');
    if (check.code !== 0) {
      throw hostError(`sudo to ${user} refused the become password on ${this.description}`, {
        hint: 'check ansible_become_password for this host',
      });
    }
  }

  close(): Promise<void> {
    // End of input ends the lock holder: the lock is free before the connection closes.
    this.#lock?.held?.endInput();
    return this.channel.close();
  }

  // From now on the host's first command takes the run lock (run-lock.ts) and carries that
  // command along: the lock costs no round trip of its own. It is held until close().
  useLock(spec: RunLockSpec): void {
    this.#lock = { spec, token: newToken(), held: undefined, taking: undefined, had: false };
  }

  // What the host is left in if the connection is lost from now on ("authentik server and
  // worker are stopped: ..."), said in the unreachable message; undefined when nothing is
  // at stake any more.
  ifLost(note: string | undefined): void {
    this.#ifLost = note;
  }

  // A new connection after a loss (same host key rules), tried until `untilMs`, and the run
  // lock taken back. Gives up with the connection's error and what the host is left in.
  async reconnect(untilMs: number, signal?: AbortSignal): Promise<void> {
    let said = false;
    for (;;) {
      try {
        await this.channel.reconnect();
        break;
      } catch (error) {
        if (!isHostctlError(error, 'unreachable') || signal?.aborted) throw this.#left(error);
        if (Date.now() >= untilMs) {
          const gaveUp = unreachableError(`connection to ${this.description} was lost and could not be made again by ${new Date(untilMs).toLocaleTimeString()}: ${firstLineOf(error)}`, { cause: error });
          throw this.#left(gaveUp);
        }
        if (!said) this.#lock?.spec.waiting('connection', `connection lost: reconnecting until ${new Date(untilMs).toLocaleTimeString()} (${firstLineOf(error)})`);
        said = true;
        await sleep(Math.min(2000, Math.max(0, untilMs - Date.now())), undefined, signal ? { signal } : {}).catch(() => {});
      }
    }
    if (this.#lock && !this.#lock.held) await this.#takeLock(undefined);
  }

  // An unreachable error says what the host is left in.
  #left(error: unknown): unknown {
    if (!this.#ifLost || !isHostctlError(error, 'unreachable') || error.message.includes(this.#ifLost)) return error;
    return new HostctlError('unreachable', `${error.message}; the host is left so: ${this.#ifLost}`, { cause: error, ...(error.hint ? { hint: error.hint } : {}) });
  }

  // Runs `script` (in a subshell, stdin and stdout closed, as the become user) ahead of the
  // next command, in the same round trip; that command runs only if the script succeeds. A
  // record written ahead of the change it announces (the run journal) costs no round trip of
  // its own. Inside withAhead() the script waits for a command sent from there.
  ahead(script: string): void {
    (this.#scope.getStore() ?? this.#ahead).push(script);
  }

  // Runs `body` so that what it queues with ahead() goes only with a command `body` itself
  // sends (its first), never with one sent meanwhile by other code on this connection: a
  // record must reach the host in the round trip of the change it announces. What `body`
  // queued and did not send goes ahead of the connection's next command.
  async withAhead<T>(body: () => Promise<T>): Promise<T> {
    const queue: string[] = [];
    try {
      return await this.#scope.run(queue, body);
    } finally {
      this.#ahead.push(...queue.splice(0));
    }
  }

  // Sends what is still queued ahead on its own (e.g. at the end of a host's run).
  async flushAhead(): Promise<void> {
    if (this.#ahead.length) await this.check(':');
  }

  #run(command: string, options: StartOptions = {}): Promise<RunResult> {
    this.roundTrips += 1;
    return options.onStdout ? this.channel.start(command, options).result : this.channel.run(command, options);
  }

  // A command as resources send it: after a reconnect when the connection was lost since the
  // last one, and with the run lock (taken along with it when it can ride in the lock's
  // round trip).
  async #send(full: string, options: ExecOptions): Promise<RunResult> {
    try {
      if (this.channel.lost) await this.reconnect(Date.now() + RECONNECT_MS, options.signal);
      const lock = this.#lock;
      const noBecome = options.noBecome ?? false;
      if (lock && !lock.held) {
        const alone = options.stdin === undefined && !noBecome && !options.onNotice;
        const r = await this.#takeLock(alone ? full : undefined);
        if (r) return r;
      }
      const notice = options.onNotice ? noticeReader(options.onNotice) : undefined;
      const wire = this.#escalate(notice ? `${notice.prefix}${full}` : full, options.stdin, noBecome);
      const r = await this.#run(wire.command, { ...options, stdin: wire.stdin, ...(notice ? { onStdout: notice.read } : {}) });
      return notice ? { ...r, stdout: notice.strip(r.stdout) } : r;
    } catch (error) {
      throw this.#left(error);
    }
  }

  // One taking at a time; a command that came while another took the lock runs after it.
  async #takeLock(payload: string | undefined): Promise<RunResult | undefined> {
    const lock = this.#lock!;
    if (lock.taking) {
      await lock.taking;
      return lock.held ? undefined : this.#takeLock(payload);
    }
    const taking = this.#acquire(lock, payload);
    lock.taking = taking;
    try {
      return await taking;
    } finally {
      lock.taking = undefined;
    }
  }

  #acquire(lock: LockState, payload: string | undefined): Promise<RunResult | undefined> {
    const mark = `@hostctl-${newToken()}`;
    const wire = this.#escalate(lockScript({ token: lock.token, mark, spec: lock.spec, retake: lock.had, payload }), undefined, false);
    const host = this.description;
    this.roundTrips += 1;
    return new Promise((resolve, reject) => {
      let out = Buffer.alloc(0);
      const errs: Buffer[] = [];
      let state: 'waiting' | 'locked' | 'done' = 'waiting';
      const fail = (error: unknown) => {
        if (state === 'done') return;
        state = 'done';
        started.endInput();
        reject(error);
      };
      const onLine = (line: string) => {
        const [what, ...rest] = line.slice(mark.length + 1).split(' ');
        const holder = holderLine(rest.join(' '));
        if (what === 'wait') lock.spec.waiting('run-lock', `waiting for ${holder} (up to --lock-timeout ${lock.spec.timeoutSeconds}s)`);
        else if (what === 'timeout')
          fail(unreachableError(`${host} is locked by ${holder}: gave up after --lock-timeout ${lock.spec.timeoutSeconds}s; nothing was done on this host`, { hint: 'run again when that run has ended, or give a longer --lock-timeout' }));
        else if (what === 'taken')
          fail(unreachableError(`the run lock on ${host} was taken by ${holder} while this run's connection was down: stopping (what this run read before may be stale)`));
        else if (what === 'error') fail(hostError(`the run lock on ${host}: ${rest.join(' ')}`));
        else if (what === 'locked') {
          state = 'locked';
          lock.held = started;
          lock.had = true;
        }
      };
      const scan = () => {
        for (;;) {
          if (state === 'waiting') {
            const nl = out.indexOf('\n');
            if (nl < 0) return;
            const line = out.subarray(0, nl).toString('utf8');
            out = out.subarray(nl + 1);
            if (line.startsWith(`${mark}:`)) onLine(line);
            continue;
          }
          if (state !== 'locked') return;
          if (payload === undefined) {
            state = 'done';
            return resolve(undefined);
          }
          const end = out.indexOf(`\n${mark}=`);
          const nl = end < 0 ? -1 : out.indexOf('\n', end + mark.length + 2);
          if (nl < 0) return;
          state = 'done';
          const code = Number(out.subarray(end + mark.length + 2, nl).toString('utf8'));
          return resolve({ code, stdout: Buffer.from(out.subarray(0, end).toString('latin1'), 'base64'), stderr: Buffer.concat(errs).toString('utf8') });
        }
      };
      const started: Started = this.channel.start(wire.command, {
        ...(wire.stdin !== undefined ? { stdin: wire.stdin } : {}),
        holdInput: true,
        onStdout: (chunk) => {
          out = Buffer.concat([out, chunk]);
          scan();
        },
        onStderr: (chunk) => errs.push(chunk),
      });
      const ended = (error?: unknown) => {
        if (lock.held === started) lock.held = undefined;
        const said = Buffer.concat(errs).toString('utf8').trim();
        fail(error ?? hostError(`taking the run lock on ${host} failed${said ? `: ${redact(said)}` : ''}`));
      };
      started.result.then(() => ended(), ended);
    });
  }

  // The command and stdin as they go on the wire, with sudo wrapped around when needed.
  #escalate(command: string, stdin: Buffer | string | undefined, noBecome: boolean) {
    const esc = this.#escalation;
    if (esc.kind === 'none' || noBecome) return { command, stdin };
    const base = `sudo -H -u ${quote(esc.user)}`;
    if (esc.password === undefined) return { command: `${base} -n -- /bin/sh -c ${quote(command)}`, stdin };
    // sudo -S reads exactly one line from stdin for the password; the rest is the command's.
    // -k makes sudo ignore a cached ticket (which it would otherwise use without reading the
    // line, handing the password to the command as its first line of input).
    const input = Buffer.concat([Buffer.from(`${esc.password}\n`), Buffer.from(stdin ?? '')]);
    return { command: `${base} -k -S -p '' -- /bin/sh -c ${quote(command)}`, stdin: input };
  }

  async execRaw(command: string, options: ExecOptions = {}): Promise<RunResult> {
    let full = command;
    // The connection's queue first: it was filled before this command's own scope began.
    const ahead = options.noBecome ? [] : [...this.#ahead.splice(0), ...(this.#scope.getStore()?.splice(0) ?? [])];
    if (ahead.length) full = `${ahead.map((s) => `( ${s}\n) </dev/null >/dev/null || { echo ${quote(AHEAD_FAILED)} >&2; exit 125; }`).join('\n')}\n${full}`;
    if (options.env && Object.keys(options.env).length > 0) {
      const pairs = Object.entries(options.env);
      if (pairs.some(([, v]) => containsSecret(v))) {
        throw hostError('a secret was passed in a command environment; pass it on stdin or in a file');
      }
      full = `export ${pairs.map(([k, v]) => `${k}=${quote(v)}`).join(' ')}; ${full}`;
    }
    if (containsSecret(full)) {
      // Command lines are visible in the target's process list: refuse rather than leak.
      throw hostError(`a secret value would appear in a command line: ${redact(full)}`, {
        hint: 'secrets reach the host by upload or stdin only',
      });
    }
    const r = await this.#send(full, options);
    const said = r.stderr;
    if (ahead.length && r.code === 125 && said.trimEnd().endsWith(AHEAD_FAILED)) {
      // Not the command's own failure: say what the script said, not "exited 125".
      const why = said.trimEnd().slice(0, -AHEAD_FAILED.length).trim().split('\n').slice(-3).join('; ');
      throw hostError(`${redact(why) || 'a script sent ahead of a command failed'} (the command it was sent ahead of did not run)`);
    }
    return r;
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.execRaw(command, options);
    return { code: r.code, stdout: r.stdout.toString('utf8'), stderr: redact(r.stderr) };
  }

  // exec that must succeed: a non-zero exit becomes a host error with the command's stderr.
  async check(command: string, options: ExecOptions = {}): Promise<string> {
    const r = await this.exec(command, options);
    if (r.code !== 0) {
      const detail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('\n');
      throw hostError(`\`${redact(command)}\` exited ${r.code}${detail ? `: ${redact(detail)}` : ''}`);
    }
    return r.stdout;
  }

  // Atomic upload into the safely entered directory (safe-path.ts): an exclusive temp file
  // (0600 from the start), checked against the sha256 of what was sent (read from stdin
  // before the content, so no hash of a secret is ever in a command line) so a cut
  // connection can never install a partial file; then owner BEFORE mode (a chown clears
  // setuid/setgid), fsync, rename. One round trip.
  async put(path: string, content: Buffer | string, options: PutOptions): Promise<void> {
    const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const owner =
      options.owner || options.group
        ? `chown ${quote(`${options.owner ?? ''}${options.group ? `:${options.group}` : ''}`)} "$tmp"`
        : ':';
    const script = inParentOf(path, (name) =>
      [
        'set -e',
        'umask 077',
        'IFS= read -r want',
        'tmp=$(mktemp ./.hostctl.XXXXXX)',
        `trap 'rm -f "$tmp"' EXIT`,
        `trap 'rm -f "$tmp"; exit 129' HUP INT TERM PIPE`,
        'cat > "$tmp"',
        `[ "$(sha256sum < "$tmp" | cut -d' ' -f1)" = "$want" ] || { echo 'upload incomplete (checksum mismatch)' >&2; exit 1; }`,
        options.validate
          ? // A subshell: the validate command may `exit` without ending this script.
            `( ${options.validate.split('%s').join('"$hc_at/${tmp#./}"')} ) >&2 || { echo ${quote(`validation failed: ${options.validate}`)} >&2; exit 3; }`
          : ':',
        owner,
        `chmod ${options.mode.toString(8).padStart(4, '0')} "$tmp"`,
        'sync "$tmp" 2>/dev/null || sync',
        `mv -fT -- "$tmp" ${name}`,
      ].join('\n'),
    );
    const stdin = Buffer.concat([Buffer.from(`${sha}\n`), bytes]);
    const r = await this.execRaw(options.runAs ? asUser(options.runAs, script) : script, { stdin });
    if (r.code !== 0) throw hostError(`writing ${path} failed: ${redact(r.stderr.trim())}`);
  }

  // The content of a file, read with `runAs`'s privileges when given (a file in that user's
  // directory: a link there must not make root read what the user could not).
  async get(path: string, options: { runAs?: string | undefined } = {}): Promise<Buffer> {
    const cat = `cat -- ${quote(path)}`;
    const r = await this.execRaw(options.runAs ? asUser(options.runAs, cat) : cat);
    if (r.code !== 0) throw hostError(`reading ${path} failed: ${redact(r.stderr.trim())}`);
    return r.stdout;
  }

  // Stats (and hashes regular files of) many paths in one round trip. Absent is a value.
  async stat(paths: readonly string[]): Promise<PathStat[]> {
    if (paths.length === 0) return [];
    const r = await this.execRaw(statScript(paths));
    if (r.code !== 0) throw hostError(`stat failed: ${redact(r.stderr.trim())}`);
    return parseStats(r.stdout.toString('utf8'));
  }
}

const firstLineOf = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0];

// Notices in a command's stdout: lines that start with a random prefix the command finds in
// $HOSTCTL_NOTICE. Only shown, never acted on (they come from the host).
function noticeReader(onNotice: (text: string) => void) {
  const tag = `@hostctl-notice-${newToken()}`;
  let pending = '';
  const isNotice = (line: string) => line.startsWith(`${tag} `);
  return {
    prefix: `HOSTCTL_NOTICE=${tag}; export HOSTCTL_NOTICE; `,
    read: (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (isNotice(line)) onNotice(line.slice(tag.length + 1));
    },
    strip: (stdout: Buffer) => Buffer.from(stdout.toString('utf8').split('\n').filter((l) => !isNotice(l)).join('\n')),
  };
}

// One shell script that stats and hashes many paths (see STAT_LOOP).
export function statScript(paths: readonly string[]): string {
  return `set -- ${quoteAll(paths)}
${STAT_LOOP}`;
}

// The paths in "$@", for scripts that compute their paths on the host. A handful of processes
// for any number of paths (one stat and one sha256sum over all of them, a readlink per link):
// a converged run stats every path a role manages in its one round trip. Three sections, each
// ended by an empty field (no path is empty): per path, in order, (Y|N|L, path, link target);
// then (name, type|mode|user|group|size) per existing path; then "sha256  name" per regular file.
export const STAT_LOOP = `for p do
  if [ -L "$p" ]; then printf 'L\\0%s\\0%s\\0' "$p" "$(readlink -- "$p")"
  elif [ -e "$p" ]; then printf 'Y\\0%s\\0\\0' "$p"
  else printf 'N\\0%s\\0\\0' "$p"; fi
done
printf '\\0'
for p do if [ -e "$p" ] || [ -L "$p" ]; then printf '%s\\0' "$p"; fi; done | xargs -0r stat --printf '%n\\0%F|%a|%U|%G|%s\\0' -- 2>/dev/null
printf '\\0'
for p do if [ -f "$p" ] && [ ! -L "$p" ]; then printf '%s\\0' "$p"; fi; done | xargs -0r sha256sum -z -- 2>/dev/null
printf '\\0'`;

export function parseStats(text: string): PathStat[] {
  const f = text.split('\0');
  let i = 0;
  const listed: Array<{ flag: string; path: string; link: string }> = [];
  for (; i + 2 < f.length && f[i] !== ''; i += 3) listed.push({ flag: f[i]!, path: f[i + 1]!, link: f[i + 2]! });
  const stats = new Map<string, string>();
  for (i += 1; i + 1 < f.length && f[i] !== ''; i += 2) stats.set(f[i]!, f[i + 1]!);
  const hashes = new Map<string, string>();
  for (i += 1; i < f.length && f[i] !== ''; i += 1) {
    // sha256sum -z: the name unescaped, after " " (text mode) or "*" (binary mode).
    const m = /^([0-9a-f]{64}) [ *]([\s\S]*)$/.exec(f[i]!);
    if (m) hashes.set(m[2]!, m[1]!);
  }
  return listed.map(({ flag, path, link }) => {
    const st = stats.get(path);
    // Gone between the test and the stat: absent, as it is now.
    if (flag === 'N' || st === undefined) return { path, exists: false };
    const [kind, mode, owner, group, size] = st.split('|') as [string, string, string, string, string];
    const sha = hashes.get(path);
    return {
      path,
      exists: true,
      type: kind.includes('directory') ? 'directory' : kind.includes('symbolic') ? 'link' : kind.includes('regular') ? 'file' : 'other',
      mode: parseInt(mode, 8),
      owner,
      group,
      size: Number(size),
      ...(sha ? { sha256: sha } : {}),
      ...(flag === 'L' ? { linkTarget: link } : {}),
    };
  });
}
