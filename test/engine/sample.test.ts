import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { events, fixture, hostctl, tempDir } from '../helpers/cli.js';

const playbook = fixture('sample', 'playbook.ts');
const inventory = fixture('sample', 'inventory');
const sample = (root: string, ...extra: string[]) => hostctl(['run', playbook, '-i', inventory, '-e', `root=${root}`, ...extra]);

async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const st = await stat(p);
      if (e.isDirectory()) {
        out[p] = `dir ${st.mode.toString(8)}`;
        await walk(p);
      } else out[p] = `${st.mode.toString(8)} ${await readFile(p, 'utf8')}`;
    }
  };
  await walk(root);
  return out;
}

const recapOf = (stdout: string) => events(stdout).find((e) => e.type === 'recap') as { hosts: Record<string, Record<string, number | boolean>> };

describe('sample playbook over the local transport', () => {
  it('changes on the first run, nothing on the second', async () => {
    await using root = await tempDir();
    const first = await sample(root.path, '--json');
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(recapOf(first.stdout).hosts.box, { ok: 0, changed: 7, failed: 0, skipped: 0, unreachable: false });
    assert.equal(await readFile(join(root.path, 'etc/app/app.conf'), 'utf8'), '# sample: managed by hostctl\nport = 8081\nworkers = 2\n');
    assert.equal(await readFile(join(root.path, 'var/log/app-reloads'), 'utf8'), 'reload\n');

    const second = await sample(root.path, '--json');
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(recapOf(second.stdout).hosts.box, { ok: 6, changed: 0, failed: 0, skipped: 0, unreachable: false });
    // The handler was not notified again.
    assert.equal(await readFile(join(root.path, 'var/log/app-reloads'), 'utf8'), 'reload\n');
  });

  it('--check on a fresh root reports the changes and leaves the tree byte-identical but for the run lock', async () => {
    await using root = await tempDir();
    await writeFile(join(root.path, 'keep'), 'untouched\n');
    const before = await tree(root.path);
    const r = await sample(root.path, '--check', '--json');
    assert.equal(r.code, 0, r.stderr);
    const ends = events(r.stdout).filter((e) => e.type === 'task-end');
    assert.ok(ends.length >= 6);
    // The template depends on a directory that was only "would create": may-change, not failed.
    assert.deepEqual(
      ends.map((e) => [e.task, e.status]),
      [
        [`directory ${root.path}/etc/app`, 'changed'],
        [`directory ${root.path}/var/lib/app`, 'changed'],
        [`directory ${root.path}/var/log`, 'changed'],
        [`template app.conf.hbs -> ${root.path}/etc/app/app.conf`, 'changed'],
        [`file ${root.path}/etc/app/motd`, 'changed'],
        ['initialise the data directory', 'changed'],
        ['reload app', 'changed'],
      ],
    );
    // Only hostctl's own state directory appears (the run lock, taken by --check too).
    const after = await tree(root.path);
    assert.deepEqual(Object.keys(after).filter((p) => p.startsWith(join(root.path, '.hostctl'))).sort(), [join(root.path, '.hostctl'), join(root.path, '.hostctl', 'lock')]);
    assert.deepEqual(Object.fromEntries(Object.entries(after).filter(([p]) => !p.startsWith(join(root.path, '.hostctl')))), before);
  });

  it('--check after a change in a variable shows exactly the changed line', async () => {
    await using root = await tempDir();
    assert.equal((await sample(root.path)).code, 0);
    const r = await sample(root.path, '--check', '--diff', '-e', 'app_workers=4', '--plain');
    // -e key=value text takes the type the schema asks for (a number here), as in Ansible.
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /-workers = 2\n\s+\+workers = 4/);
    const ok = await hostctl(['run', playbook, '-i', inventory, '-e', `{"root": "${root.path}", "app_workers": 4}`, '--check', '--diff', '--plain']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /-workers = 2\n\s+\+workers = 4/);
    // The template would change, and so the handler it notifies would run: two changes.
    assert.match(ok.stdout, /reload app \(handler\) \| changed .* would run/);
    assert.match(ok.stdout, /ok=5 changed=2 /);
    assert.equal(await readFile(join(root.path, 'etc/app/app.conf'), 'utf8'), '# sample: managed by hostctl\nport = 8081\nworkers = 2\n');
  });

  it('--tags and --skip-tags select tasks', async () => {
    await using root = await tempDir();
    assert.equal((await sample(root.path)).code, 0);
    await writeFile(join(root.path, 'etc/app/motd'), 'edited by hand\n');
    const only = await sample(root.path, '--tags', 'motd', '--json');
    assert.equal(only.code, 0, only.stderr);
    const tasks = events(only.stdout).filter((e) => e.type === 'task-end').map((e) => e.task);
    assert.deepEqual(tasks, [`file ${root.path}/etc/app/motd`]);
    assert.equal(await readFile(join(root.path, 'etc/app/motd'), 'utf8'), 'Welcome to sample\n');
    const skipped = await sample(root.path, '--skip-tags', 'motd', '--json');
    assert.equal(events(skipped.stdout).filter((e) => e.type === 'task-end').length, 5);
    assert.ok(!events(skipped.stdout).some((e) => e.type === 'task-end' && String(e.task).includes('motd')));
  });
});
