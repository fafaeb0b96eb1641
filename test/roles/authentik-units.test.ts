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
