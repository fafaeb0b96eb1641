import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { events, fixture, hostctl, tempDir } from '../helpers/cli.js';

const playbook = fixture('sample', 'playbook.ts');
const inventory = fixture('sample', 'inventory');

describe('--json event stream', () => {
  it('is one event per line: run-start, host-start, task start/end pairs, host-end, recap last', async () => {
    await using root = await tempDir();
    const r = await hostctl(['run', playbook, '-i', inventory, '-e', `root=${root.path}`, '--json', '--diff']);
    assert.equal(r.code, 0, r.stderr);
    const all = events(r.stdout);
    assert.equal(all[0]!.type, 'run-start');
    assert.deepEqual(all[0], { type: 'run-start', playbook: 'sample', hosts: ['box'], check: false });
    assert.equal(all[1]!.type, 'host-start');
    const last = all.at(-1)!;
    assert.deepEqual(Object.keys(last), ['type', 'hosts', 'durationMs']);
    assert.deepEqual(last.hosts, { box: { ok: 0, changed: 7, failed: 0, skipped: 0, unreachable: false } });
    assert.equal(all.at(-2)!.type, 'host-end');

    const tasks = all.slice(2, -2);
    for (let i = 0; i < tasks.length; i += 2) {
      const [start, end] = [tasks[i]!, tasks[i + 1]!];
      assert.equal(start.type, 'task-start');
      assert.equal(end.type, 'task-end');
      assert.equal(end.task, start.task);
      assert.equal(end.host, 'box');
      assert.equal(end.role, 'site');
      assert.ok(typeof end.durationMs === 'number' && end.durationMs >= 0);
      assert.ok(typeof end.reason === 'string' && end.reason.length > 0);
    }
    const template = tasks.find((e) => e.type === 'task-end' && String(e.task).startsWith('template'))!;
    assert.match(String(template.diff), /\+port = 8081/);
    const handler = tasks.find((e) => e.type === 'task-end' && e.handler === true)!;
    assert.equal(handler.task, 'reload app');
  });

  it('carries no diff unless --diff is given', async () => {
    await using root = await tempDir();
    const r = await hostctl(['run', playbook, '-i', inventory, '-e', `root=${root.path}`, '--json']);
    assert.ok(events(r.stdout).every((e) => !('diff' in e)));
  });
});
