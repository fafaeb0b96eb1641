import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defineRole } from '../../src/engine/role.js';
import { commandFact } from '../../src/facts/probe.js';
import { applyRoles, statuses, type Applied } from '../helpers/apply.js';
import { tempDir } from '../helpers/cli.js';

const roundTrips = (a: Applied) => (a.events.find((e) => e.type === 'host-end') as { roundTrips: number }).roundTrips;

// Over the local transport, which counts commands as SSH does: what a host reads before its
// roles run, and that what a change made stale is read again.
describe('prefetch across roles', () => {
  it('a converged host costs one round trip: every role and the preflights read together', async () => {
    await using d = await tempDir();
    const [a, b, log] = ['a.conf', 'b.conf', 'probes.log'].map((n) => join(d.path, n)) as [string, string, string];
    // The probes log when they run, so the test sees which were asked and how often.
    const logged = (name: string) => commandFact(`echo ${name} >> ${log}; true`);
    const first = defineRole({
      name: 'first',
      prefetch: true,
      preflight: (h) => Promise.all([h.fact(logged('preflight-1')), h.fact(logged('preflight-2'))]),
      run: (h) => h.file({ path: a, content: 'a\n' }),
    });
    const second = defineRole({
      name: 'second',
      prefetch: true,
      run: async (h) => {
        await h.file({ path: b, content: 'b\n' });
        await h.command({ cmd: 'true', readOnly: true, name: 'probe', unless: `echo second >> ${log}` });
      },
    });

    const fresh = await applyRoles([first, second]);
    assert.equal(fresh.code, 0, fresh.error);
    assert.deepEqual(statuses(fresh), ['ok', 'changed', 'changed', 'ok']);

    await writeFile(log, '');
    const converged = await applyRoles([first, second]);
    assert.deepEqual(statuses(converged), ['ok', 'ok', 'ok', 'ok']);
    assert.equal(roundTrips(converged), 1);
    assert.deepEqual((await readFile(log, 'utf8')).split('\n').sort(), ['', 'preflight-1', 'preflight-2', 'second']);
  });

  it('a change drops what was read: a later role reads its part again and sees the new state', async () => {
    await using d = await tempDir();
    const path = join(d.path, 'shared.conf');
    await writeFile(path, 'old\n');
    // Both roles manage the same file: had the second kept the first round trip's answer,
    // it would see "old" and write again.
    const writer = defineRole({ name: 'writer', prefetch: true, run: (h) => h.file({ path, content: 'new\n' }) });
    const reader = defineRole({ name: 'reader', prefetch: true, run: (h) => h.file({ path, content: 'new\n' }) });
    const r = await applyRoles([writer, reader]);
    assert.deepEqual(statuses(r), ['changed', 'ok']);
    assert.ok(roundTrips(r) > 1);
  });

  it('what a failed apply or a role without prefetch may have changed is read again', async () => {
    await using d = await tempDir();
    const [a, b] = ['a.conf', 'b.conf'].map((n) => join(d.path, n)) as [string, string];
    await writeFile(a, 'old\n');
    await writeFile(b, 'old\n');
    // Writes, then fails: the change happened although the task failed.
    const halfway = defineRole({ name: 'halfway', prefetch: true, run: (h) => h.command({ cmd: `echo new > ${a}; exit 1`, ignoreErrors: true }) });
    // Changes the host behind the tasks' back, as a role without prefetch may.
    const direct = defineRole({ name: 'direct', run: (h) => h.conn.exec(`echo new > ${b}`) });
    const reader = defineRole({ name: 'reader', prefetch: true, run: async (h) => [await h.file({ path: a, content: 'new\n' }), await h.file({ path: b, content: 'new\n' })] });
    const r = await applyRoles([halfway, direct, reader]);
    assert.deepEqual(statuses(r), ['failed', 'ok', 'ok']);
  });

  it('two reads started together while recording, awaited one by one, do not crash the run', async () => {
    const role = defineRole({
      name: 'reads',
      prefetch: true,
      run: async (h) => {
        const a = h.fact(commandFact('echo a'));
        const b = h.fact(commandFact('echo b'));
        return [(await a).stdout, (await b).stdout];
      },
    });
    const r = await applyRoles([role]);
    assert.equal(r.error, undefined);
  });

  it('a body that waits in a loop of its own does not hold the recording pass forever', async () => {
    let polls = 0;
    const role = defineRole({
      name: 'polls',
      prefetch: true,
      run: async (h) => {
        // Recording answers "no state": this loop would never end there, by a timer or not.
        while ((await h.fact(commandFact('echo up')).catch(() => ({ stdout: '' }))).stdout.trim() !== 'up') {
          polls += 1;
          if (polls % 2 === 0) await new Promise((r) => setTimeout(r, 1));
        }
      },
    });
    const r = await applyRoles([role]);
    assert.equal(r.error, undefined);
    assert.equal(r.code, 0);
  });

  it('tasks the tags do not select are not read', async () => {
    await using d = await tempDir();
    const log = join(d.path, 'probes.log');
    const role = defineRole({
      name: 'tagged',
      prefetch: true,
      run: async (h) => {
        await h.command({ cmd: 'true', readOnly: true, tags: ['one'], unless: `echo one >> ${log}` });
        await h.command({ cmd: 'true', readOnly: true, tags: ['two'], unless: `echo two >> ${log}` });
      },
    });
    const r = await applyRoles([role], { tags: ['one'] });
    assert.equal(r.code, 0, r.error);
    assert.equal(await readFile(log, 'utf8'), 'one\n');
  });
});

// A fact's output may hold what a user on the host chose (a link target, a file name), and
// the section marker is in a command line anyone there can read (ps): the output must never
// pass for another fact's section.
describe('prefetch framing', () => {
  it('output that forges another fact\'s section, marker and all, is only that fact\'s text', async () => {
    const { Connection } = await import('../../src/transport/connection.js');
    const { LocalChannel } = await import('../../src/transport/local.js');
    const { Facts, defineFact } = await import('../../src/facts/cache.js');
    const { prefetch } = await import('../../src/facts/prefetch.js');
    const conn = new Connection(new LocalChannel());
    await conn.open();
    try {
      const facts = new Facts(conn);
      const real = defineFact({ id: 'test:real', command: 'echo real', parse: (r) => r.stdout.trim() });
      // Reads the marker from the process list, as a hostile user would, and prints a section
      // for fact 0 after its own.
      const hostile = defineFact({
        id: 'test:hostile',
        command: `m=$(grep -aho '@hostctl-[0-9a-f]\\{16\\}' /proc/[0-9]*/cmdline 2>/dev/null | head -n 1); printf 'x\\n%s:0\\nforged\\n%s=0\\n' "$m" "$m"`,
        parse: (r) => r.stdout,
      });
      await prefetch(conn, facts, [{ fact: real }, { fact: hostile }]);
      assert.equal(await facts.get(real), 'real');
      assert.match(await facts.get(hostile), /^x\n@hostctl-[0-9a-f]{16}:0\nforged\n/);
    } finally {
      await conn.close();
    }
  });
});
