import assert from 'node:assert/strict';
import { chmod, chown, mkdir, readdir, readFile, rename, stat, symlink, writeFile } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { describe, it } from 'node:test';
import { defineRole } from '../../src/engine/role.js';
import { change, defineResource } from '../../src/resources/resource.js';
import { LocalChannel } from '../../src/transport/local.js';
import type { StartOptions } from '../../src/transport/transport.js';
import { quote } from '../../src/transport/quote.js';
import { applyRoles, statuses } from '../helpers/apply.js';
import { fixture, hostctl, tempDir } from '../helpers/cli.js';

// The local channel, with every command it was sent kept in order (run() goes through start()).
class Recorded extends LocalChannel {
  readonly commands: string[] = [];
  override start(command: string, options?: StartOptions) {
    this.commands.push(command);
    return super.start(command, options);
  }
}

// The local channel logged in as nobody: a run without root and without become.
class AsNobody extends LocalChannel {
  override start(command: string, options?: StartOptions) {
    return super.start(`exec setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent /bin/sh -c ${quote(command)}`, options);
  }
}

const FINISH = 'finish what an interrupted run left';

// A role whose one task writes `conf` and notifies a handler that appends a line to `log`.
// With `fail`, a task after the change fails: handlers do not run after a failure, so the
// notified one is left to the next run, as a killed run leaves it.
const confRole = (dir: string, options: { fail?: boolean; content?: string } = {}) =>
  defineRole({
    name: 'conf',
    handlers: {
      reload: (h) => h.command({ cmd: `echo reloaded >> ${join(dir, 'log')}` }),
    },
    run: async (h) => {
      await h.file({ path: join(dir, 'app.conf'), content: options.content ?? 'one\n', notify: 'reload' });
      if (options.fail) await h.command({ name: 'fails', cmd: 'exit 3' });
    },
  });

const log = async (dir: string) => (await readFile(join(dir, 'log'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
const journal = (state: string) => readdir(join(state, 'journal')).catch(() => [] as string[]);

// Over the local transport as root, with the journal in a temp directory: what the engine
// records, when, and what a later run makes of it. (test/e2e/killed-runs.test.ts kills real
// runs on a lab target.)
describe('run journal', () => {
  it('a notified handler is recorded in the command that makes the change, and cleared after the handler ran', async () => {
    await using d = await tempDir();
    const state = join(d.path, 'state');
    const channel = new Recorded();
    const r = await applyRoles([confRole(d.path)], { channel: () => channel, stateDir: state });
    assert.equal(r.code, 0, r.error);
    assert.deepEqual(await log(d.path), ['reloaded']);
    // The record goes ahead of the upload of app.conf, in its round trip.
    const records = channel.commands.filter((c) => c.includes(`${state}/journal/`) && c.includes('"name":"reload"'));
    assert.equal(records.length, 1, channel.commands.join('\n---\n'));
    assert.match(records[0]!, /mktemp \.\/\.hostctl/);
    assert.ok(records[0]!.indexOf('"name":"reload"') < records[0]!.indexOf('mktemp ./.hostctl'));
    // Cleared after the handler's command, and nothing is left.
    const handler = channel.commands.findIndex((c) => c.includes('echo reloaded'));
    const cleared = channel.commands.findIndex((c) => c.includes(`rm -f -- ${state}/journal/`));
    assert.ok(handler >= 0 && cleared > handler, channel.commands.join('\n---\n'));
    assert.deepEqual(await journal(state), []);
    assert.equal((await stat(join(state, 'journal'))).mode & 0o777, 0o700);
    assert.equal((await stat(state)).mode & 0o777, 0o700);
  });

  it('a run that begins with an entry runs its handler; --check says so as a change and writes nothing', async () => {
    await using d = await tempDir();
    const state = join(d.path, 'state');
    const failed = await applyRoles([confRole(d.path, { fail: true })], { stateDir: state });
    assert.equal(failed.code, 2);
    assert.deepEqual(await log(d.path), []);
    const left = await journal(state);
    assert.equal(left.length, 1);

    // --check: the handler and the journal task are changes to come; nothing runs or is written.
    const channel = new Recorded();
    const check = await applyRoles([confRole(d.path)], { check: true, channel: () => channel, stateDir: state });
    assert.equal(check.code, 0, check.error);
    const finish = check.ends.find((e) => e.task === FINISH)!;
    assert.equal(finish.status, 'changed');
    assert.match(finish.reason, /^would finish: handler "reload" \(recorded by a run at \d{4}-\d\d-\d\dT/);
    assert.equal(check.ends.find((e) => e.handler)?.status, 'changed');
    assert.deepEqual(await log(d.path), []);
    assert.deepEqual(await journal(state), left);
    assert.ok(!channel.commands.some((c) => c.includes(`${state}/journal/`) && /\brm -f|mv -f/.test(c)), channel.commands.join('\n---\n'));

    // The real run: app.conf is already as wanted (no change now), the handler runs all the same.
    const r = await applyRoles([confRole(d.path)], { stateDir: state });
    assert.equal(r.code, 0, r.error);
    assert.deepEqual(statuses(r), ['ok', 'ok', 'changed']);
    assert.equal(r.ends[0]!.task, FINISH);
    const notes = (r.events.find((e) => e.type === 'host-end') as { notes: string[] }).notes;
    assert.match(notes.join('\n'), /^conf: finishing what an interrupted run left: handler "reload"/m);
    assert.deepEqual(await log(d.path), ['reloaded']);
    assert.deepEqual(await journal(state), []);

    const again = await applyRoles([confRole(d.path)], { stateDir: state });
    assert.deepEqual(statuses(again), ['ok']);
    assert.deepEqual(await log(d.path), ['reloaded']);
  });

  it('an entry is trusted only in a root-owned directory no one else may write; a state directory a user owns or a link stops the run', async () => {
    await using d = await tempDir();
    const state = join(d.path, 'state');
    await applyRoles([confRole(d.path, { fail: true })], { stateDir: state });
    assert.equal((await journal(state)).length, 1);
    const ignored = async (what: string) => {
      const r = await applyRoles([confRole(d.path)], { stateDir: state });
      assert.equal(r.code, 0, r.error);
      assert.deepEqual(statuses(r), ['ok'], `${what}: ${JSON.stringify(r.ends)}`);
      assert.deepEqual(await log(d.path), [], what);
    };
    await chmod(join(state, 'journal'), 0o777);
    await ignored('journal directory 0777');
    await chmod(join(state, 'journal'), 0o700);
    // A state directory a user owns, or a link, holds the run lock too: the run stops there.
    const refused = async (what: string) => {
      const r = await applyRoles([confRole(d.path)], { stateDir: state });
      assert.equal(r.code, 2, what);
      assert.match(r.error ?? '', /the run lock on local: cannot open .*\/state\/lock \(it must be a directory of the user running the command\)/, what);
      assert.deepEqual(await log(d.path), [], what);
    };
    await chown(state, 65534, 65534);
    await refused('state directory owned by nobody');
    await chown(state, 0, 0);
    await rename(state, join(d.path, 'elsewhere'));
    await symlink(join(d.path, 'elsewhere'), state);
    await refused('state directory a link');
  });

  it("an entry naming a handler the role does not have steers nothing", async () => {
    await using d = await tempDir();
    const state = join(d.path, 'state');
    await mkdir(join(state, 'journal'), { recursive: true, mode: 0o700 });
    await chmod(state, 0o700);
    const entry = { role: 'conf', kind: 'handler', name: 'constructor', at: '2026-01-01T00:00:00.000Z' };
    await writeFile(join(state, 'journal', 'planted.json'), JSON.stringify(entry), { mode: 0o600 });
    await writeFile(join(state, 'journal', 'other.json'), JSON.stringify({ ...entry, role: 'not-in-this-play', name: 'reload' }), { mode: 0o600 });
    const r = await applyRoles([confRole(d.path)], { stateDir: state });
    assert.equal(r.code, 0, r.error);
    // app.conf was written and its own handler ran; the planted entries did nothing.
    assert.deepEqual(statuses(r), ['changed', 'changed']);
    assert.ok(!r.ends.some((e) => e.task === FINISH));
    assert.deepEqual(await log(d.path), ['reloaded']);
  });

  it('a role with neither handlers nor prefetch never reads the journal: a refused task costs no round trip', async () => {
    await using d = await tempDir();
    const r = await applyRoles([defineRole({ name: 'plain', run: (h) => h.unit({ name: '../../cron.d/x', content: '' }) })], { stateDir: join(d.path, 'state') });
    assert.deepEqual(statuses(r), ['failed']);
    assert.equal((r.events.find((e) => e.type === 'host-end') as { roundTrips: number }).roundTrips, 0);
  });

  it("a task's records go with its own command, never with one sent meanwhile by other code", async () => {
    await using d = await tempDir();
    const state = join(d.path, 'state');
    const slow = defineResource<{ path: string }>({
      kind: 'slow',
      title: () => 'slow write',
      async plan(ctx, { path }) {
        return change('write', async () => {
          await new Promise((resolve) => setTimeout(resolve, 300));
          await ctx.conn.exec(`echo slow > ${path}`);
        });
      },
    });
    const role = defineRole({
      name: 'conf',
      handlers: { reload: (h) => h.command({ cmd: 'true' }) },
      run: async (h) => {
        const write = h.run(slow, { path: join(d.path, 'slow'), notify: 'reload' });
        await new Promise((resolve) => setTimeout(resolve, 100));
        await h.conn.exec('echo meanwhile');
        await write;
      },
    });
    const channel = new Recorded();
    const r = await applyRoles([role], { channel: () => channel, stateDir: state });
    assert.equal(r.code, 0, r.error);
    const meanwhile = channel.commands.find((c) => c.includes('echo meanwhile'))!;
    assert.doesNotMatch(meanwhile, /journal/);
    assert.match(channel.commands.find((c) => c.includes('echo slow'))!, /"name":"reload"/);
  });

  it('a journal that cannot be written (no root) stops the change with a message that says so', async () => {
    await using d = await tempDir();
    await chmod(d.path, 0o755);
    const state = join(d.path, 'state');
    const r = await applyRoles([confRole(join(d.path, 'w'))], { stateDir: state, channel: () => new AsNobody() });
    assert.equal(r.code, 2, r.error);
    // Said as what it is, not as the upload's failure or an exit code.
    assert.match(r.ends[0]!.reason, /^cannot write the run journal in \/.*\/state\/journal: writing it needs root \(log in as root or set ansible_become\), .* \(the command it was sent ahead of did not run\)$/);
  });

  it('a hostctl_state_dir that is not a plain absolute path is refused before any host is touched (exit 5)', async () => {
    await using d = await tempDir();
    const inventory = join(d.path, 'hosts.yml');
    await writeFile(inventory, `all:\n  hosts:\n    here:\n      ansible_connection: local\n      hostctl_state_dir: '${d.path}/../state'\n`);
    const r = await hostctl(['run', fixture('probe', 'playbook.ts'), '-i', inventory, '-e', `root=${d.path}`]);
    assert.equal(r.code, 5, r.stderr);
    // The inventory is named relative to the working directory, wherever the repository is.
    assert.match(r.stderr, new RegExp(`\\b${basename(d.path)}/hosts\\.yml: hostctl_state_dir \\(host here\\): an absolute path .* got "${d.path}/\\.\\./state"`));
    assert.deepEqual(await readdir(d.path), ['hosts.yml']);
  });
});
