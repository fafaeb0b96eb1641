import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Semaphore } from '../../src/transport/ssh/semaphore.js';

test('grants up to the limit, then first come first served; release is idempotent', async () => {
  const sem = new Semaphore(2);
  const a = await sem.acquire();
  await sem.acquire();
  const order: string[] = [];
  const c = sem.acquire().then((r) => (order.push('c'), r));
  const d = sem.acquire().then((r) => (order.push('d'), r));
  a();
  a();
  const releaseC = await c;
  assert.deepEqual(order, ['c']);
  releaseC();
  await d;
  assert.deepEqual(order, ['c', 'd']);
});

test('an aborted waiter leaves the queue with the reason of whichever signal fired', async () => {
  const sem = new Semaphore(1);
  const release = await sem.acquire();
  const user = new AbortController();
  const lost = new AbortController();
  const waiting = sem.acquire([lost.signal, user.signal]);
  const next = sem.acquire();
  user.abort(new Error('stop'));
  await assert.rejects(waiting, /stop/);
  release();
  (await next)();
  await assert.rejects(sem.acquire([lost.signal, AbortSignal.abort(new Error('already'))]), /already/);
});
