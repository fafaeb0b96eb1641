import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { labSkip, useLab } from '../helpers/lab.js';
import { apply } from '../helpers/apply.js';
import type { Tasks } from '../../src/engine/tasks.js';
import type { EventOf } from '../../src/core/events.js';
import { SshChannel } from '../../src/transport/ssh/index.js';

// Cuts a target's link for real (its veth on the lab bridge goes down) while a run waits.
describe('a run whose connection drops during a wait', { skip: labSkip, timeout: 900_000 }, () => {
  const t = useLab(11, ['r1']);
  // hostctl's SSH transport with a 5 s keepalive: the cut is noticed within ~20 s, well
  // inside the 60 s the link stays down.
  const run = (body: (h: Tasks) => Promise<unknown>) => {
    const target = t.lab.targets[0]!;
    return apply(body, {
      host: 'r1',
      channel: () => new SshChannel({ alias: 'r1', host: target.address, user: 'root', privateKeyFiles: [t.lab.keyPath], knownHostsFile: t.lab.knownHostsPath, keepaliveIntervalMs: 5000 }),
    });
  };
  const link = async (state: 'up' | 'down') => execa('ip', ['link', 'set', await t.hostVeth('r1'), state]);
  const whenReachable = async () => {
    for (let i = 0; i < 60 && (await t.sh('r1', 'true', { timeoutMs: 5000 })).code !== 0; i++) await sleep(1000);
  };

  it('link down for 60 s during a ready wait: the run reconnects, takes its lock back and finishes, exit 0', async () => {
    await t.sh('r1', 'rm -f /root/ready');
    const running = run((h) => h.wait({ what: 'the ready flag', command: 'test -e /root/ready', retries: 60, delaySeconds: 3 }));
    await sleep(4000);
    await link('down');
    try {
      await sleep(60_000);
    } finally {
      await link('up');
    }
    await whenReachable();
    await t.sh('r1', 'touch /root/ready');
    const r = await running;
    assert.equal(r.code, 0, r.error);
    const waits = r.events.filter((e): e is EventOf<'waiting'> => e.type === 'waiting');
    assert.ok(waits.some((w) => w.what === 'connection' && /^connection lost while waiting for the ready flag: reconnecting/.test(w.message)), JSON.stringify(waits));
    // The lock was this run's again after the reconnect (the same token on the first field).
    const progress = r.events.filter((e) => e.type === 'task-progress').map((e) => (e as EventOf<'task-progress'>).message);
    assert.ok(progress.some((m) => m.includes('connection lost; reconnected')), progress.join('\n'));
  });

  it('gone past the wait\'s end: unreachable, saying the connection was lost and what the host is left in', async () => {
    await t.sh('r1', 'rm -f /root/ready');
    const running = run(async (h) => {
      h.conn.ifLost('the demo service is stopped; the next run starts it');
      await h.wait({ what: 'the ready flag', command: 'test -e /root/ready', retries: 2, delaySeconds: 2 });
    });
    await sleep(2000);
    await link('down');
    let r;
    try {
      r = await running;
    } finally {
      await link('up');
    }
    assert.equal(r.code, 4, r.error);
    assert.match(r.error ?? '', /^connection to ssh root@10\.220\.11\.2:22 was lost and could not be made again by .*; the host is left so: the demo service is stopped; the next run starts it$/);
    await whenReachable();
  });
});
