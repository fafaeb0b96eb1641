import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { isHostctlError } from '../../src/core/errors.js';
import { Connection } from '../../src/transport/connection.js';
import { LocalChannel } from '../../src/transport/local.js';
import { DEFAULT_STATE_DIR, type RunLockSpec } from '../../src/transport/run-lock.js';

const LOCK_FILE = `${DEFAULT_STATE_DIR}/lock`;

// The run lock over the local transport (a real flock on this machine, as root the real
// /var/lib/hostctl/lock): the SSH side is in test/e2e/run-lock.test.ts.
const root = process.getuid?.() === 0;
const spec = (waits: string[], timeoutSeconds = 30, pid = 4242): RunLockSpec => ({
  owner: { user: 'tester', controller: 'ctl', pid, started: new Date('2026-01-02T03:04:05Z') },
  timeoutSeconds,
  waiting: (_what, message) => waits.push(message),
  stateDir: DEFAULT_STATE_DIR,
});
const locked = async (waits: string[] = [], timeoutSeconds = 30, pid = 4242) => {
  const conn = new Connection(new LocalChannel());
  conn.useLock(spec(waits, timeoutSeconds, pid));
  return conn;
};
// The process holding the lock, from the file's third field.
const holderPid = async () => Number((await readFile(LOCK_FILE, 'utf8')).split(' ')[2]);
const gone = async (pid: number) => {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('the run lock', { skip: root ? false : 'needs root (the lock lives in /var/lib/hostctl)' }, () => {
  it('the first command takes the lock in its own round trip; a second run waits, saying whose run it is, then gives up', async () => {
    const a = await locked([], 30, 1111);
    try {
      assert.equal(await a.check('echo first'), 'first\n');
      assert.equal(a.roundTrips, 1);
      assert.match(await readFile(LOCK_FILE, 'utf8'), /^[0-9a-f]{16} 1111 \d+ 2026-01-02T03:04:05Z tester@ctl\n$/);
      const waits: string[] = [];
      const b = await locked(waits, 1);
      const refused = await b.exec('echo second').then(() => undefined, (e: unknown) => e);
      assert.ok(isHostctlError(refused, 'unreachable'), String(refused));
      assert.match((refused as Error).message, /^local is locked by the run started by tester@ctl at 2026-01-02T03:04:05Z \(pid 1111\): gave up after --lock-timeout 1s; nothing was done on this host$/);
      assert.deepEqual(waits, ['waiting for the run started by tester@ctl at 2026-01-02T03:04:05Z (pid 1111) (up to --lock-timeout 1s)']);
    } finally {
      await a.close();
    }
  });

  it('a run whose lock holder died takes the lock back and goes on, unless another run held it meanwhile', async () => {
    const a = await locked();
    try {
      await a.check('true');
      let pid = await holderPid();
      process.kill(pid, 'SIGKILL');
      await gone(pid);
      // Nobody came in between: the lock is this run's again.
      assert.equal(await a.check('echo again'), 'again\n');
      pid = await holderPid();
      process.kill(pid, 'SIGKILL');
      await gone(pid);
      const b = await locked([], 30, 2222);
      await b.check('true');
      await b.close();
      const refused = await a.exec('echo stale').then(() => undefined, (e: unknown) => e);
      assert.ok(isHostctlError(refused, 'unreachable'), String(refused));
      assert.match((refused as Error).message, /^the run lock on local was taken by the run started by tester@ctl at \S+ \(pid 2222\) while this run's connection was down: stopping/);
    } finally {
      await a.close();
    }
  });
});

describe('notices', () => {
  it('lines a command prints with $HOSTCTL_NOTICE come at once and are not in its stdout', async () => {
    const conn = new Connection(new LocalChannel());
    const seen: Array<[string, number]> = [];
    const started = Date.now();
    const out = await conn.check('printf "%s %s\\n" "$HOSTCTL_NOTICE" "held by 7 (x)"; sleep 1; echo out', { onNotice: (t) => seen.push([t, Date.now() - started]) });
    assert.equal(out, 'out\n');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]![0], 'held by 7 (x)');
    assert.ok(seen[0]![1] < 900, `the notice came after ${seen[0]![1]} ms`);
  });
});
