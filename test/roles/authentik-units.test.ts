import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderFolder } from '../../src/resources/template.js';
import { derive, vars } from '../../roles/authentik/index.js';

const templates = fileURLToPath(new URL('../../roles/authentik/templates/', import.meta.url));

// The authentik role's units as the role renders them from its defaults.
async function workerUnit(extra: Record<string, unknown>): Promise<string> {
  const v = vars.parse({
    authentik_version: '2026.2.1',
    // Plain strings: the role imports Secret from the built 'hostctl', not from src/.
    authentik_pg_pass: 'pg-pass-for-render-test',
    authentik_secret_key: 'secret-key-for-render-test',
    ...extra,
  });
  // What templates render from: the revealed values (as the engine's revealAll gives them).
  const rendered = await renderFolder(templates, { ...v, ...derive(v), authentik_pg_pass: 'p', authentik_secret_key: 'k' });
  return rendered.get('authentik-worker.container.hbs')!;
}

describe('authentik worker unit', () => {
  it('mounts the podman API socket without a misleading :ro (a socket mount is the whole API)', async () => {
    const unit = await workerUnit({});
    assert.match(unit, /^Volume=\/run\/podman\/podman\.sock:\/var\/run\/docker\.sock$/m);
    assert.doesNotMatch(unit, /docker\.sock:ro/);
  });

  it('authentik_podman_socket: "" mounts no socket at all', async () => {
    const unit = await workerUnit({ authentik_podman_socket: '' });
    assert.doesNotMatch(unit, /docker\.sock/);
  });

  it('a relative socket path is refused', () => {
    assert.throws(() => vars.parse({ authentik_version: '1', authentik_podman_socket: 'run/podman.sock' }), /absolute path, or empty/);
  });
});

describe('authentik role variables checked together', () => {
  const base = { authentik_version: '2026.2.1', authentik_pg_pass: 'p', authentik_secret_key: 'k' };
  const problems = (extra: Record<string, unknown>) => {
    const r = vars.safeParse({ ...base, ...extra });
    return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
  };

  it('a restic repository needs its password, and an sftp one its key and pinned host key, named by key', () => {
    assert.deepEqual(problems({ authentik_backup_repository: 'sftp:backup@nas:/srv/restic' }), [
      'authentik_backup_repository_password',
      'authentik_backup_sftp_key',
      'authentik_backup_sftp_known_hosts',
    ]);
    assert.deepEqual(problems({ authentik_backup_repository: '/mnt/backup', authentik_backup_repository_password: 'pw' }), []);
  });

  it('an application bound to a group that is not declared is refused, naming the application and the group', () => {
    const apps = { copyparty: { name: 'C', protect: 'forward_single', external_host: 'https://c.example.org', groups: ['family'] } };
    assert.deepEqual(problems({ authentik_applications: apps }), ['authentik_applications.copyparty.groups.0']);
    assert.deepEqual(problems({ authentik_applications: apps, authentik_groups: { family: {} } }), []);
  });

  it('backup, restore and postgres-upgrade can still take the role\'s variables (pick and extend)', async () => {
    // zod refuses pick/extend on a refined object: these modules failed to load when the
    // role's checks across variables were put on the object they pick from.
    await import('../../roles/authentik/fetch.js');
    await import('../../roles/authentik/restore.js');
    await import('../../roles/authentik/postgres-upgrade.js');
  });
});
