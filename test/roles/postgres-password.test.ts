import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { isSecret, quote } from 'hostctl';
import { alterRoleSql, matchesVerifier, scramVerifier } from '../../roles/authentik/postgres-password.js';
import { tempDir } from '../helpers/cli.js';

// A password with both quote characters, as a vault may hold.
const password = () => `pw'"${randomBytes(8).toString('hex')}`;

describe('the Postgres password as a SCRAM verifier', () => {
  it('is computed on the controller, verifies, and is the only thing in the SQL', () => {
    const pw = password();
    const verifier = scramVerifier(pw);
    assert.ok(isSecret(verifier));
    assert.match(verifier.reveal(), /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
    assert.ok(matchesVerifier(pw, 'app', verifier.reveal()));
    assert.ok(!matchesVerifier(`${pw}x`, 'app', verifier.reveal()));
    // A fresh salt each time.
    assert.notEqual(scramVerifier(pw).reveal(), verifier.reveal());
    const sql = alterRoleSql('app', verifier);
    assert.equal(sql, `ALTER ROLE "app" WITH PASSWORD '${verifier.reveal()}';\n`);
    assert.ok(!sql.includes(pw) && !sql.includes(pw.slice(4)), 'no plaintext in the SQL');
    // The verifier is password-equivalent: registered like any secret, so refused in a command line.
    assert.throws(() => quote(verifier.reveal()), /the SCRAM verifier of the Postgres password/);
    assert.equal(JSON.stringify({ verifier }), '{"verifier":"********"}');
  });

  // A throwaway Postgres on a Unix socket in a temp dir, when this machine has one installed.
  const bin = ['17', '16', '15'].map((v) => `/usr/lib/postgresql/${v}/bin`).find((b) => existsSync(join(b, 'initdb')));
  const root = process.getuid?.() === 0;
  const skip = !bin ? 'needs a Postgres server installed (postgresql)' : root && !existsSync('/usr/sbin/runuser') ? 'needs runuser' : false;
  it('a real Postgres takes the verifier and then accepts the password, and only it', { skip, timeout: 120_000 }, async () => {
    await using d = await tempDir('hostctl-pg-');
    // Postgres will not run as root: as root, run it as the postgres user.
    const owner = root ? (await execa('id', ['-u', 'postgres'])).stdout : undefined;
    if (owner) await chown(d.path, Number(owner), Number(owner));
    const as = (cmd: string, args: string[], input?: string, env: Record<string, string> = {}) =>
      execa(root ? 'runuser' : join(bin!, cmd), root ? ['-u', 'postgres', '--', join(bin!, cmd), ...args] : args, { reject: false, input: input ?? '', env });
    const data = join(d.path, 'data');
    assert.equal((await as('initdb', ['-D', data, '-U', 'app', '--auth=trust', '-E', 'UTF8'])).exitCode, 0);
    const port = String(20000 + (process.pid % 20000));
    const started = await as('pg_ctl', ['-D', data, '-l', join(d.path, 'log'), '-w', '-o', `-k ${d.path} -c listen_addresses='' -p ${port}`, 'start']);
    assert.equal(started.exitCode, 0, started.stderr);
    try {
      const psql = (sql: string, env: Record<string, string> = {}) =>
        as('psql', ['-X', '-q', '-tA', '-v', 'ON_ERROR_STOP=1', '-h', d.path, '-p', port, '-U', 'app', '-d', 'postgres'], sql, env);
      const pw = password();
      const verifier = scramVerifier(pw);
      const set = await psql(alterRoleSql('app', verifier));
      assert.equal(set.exitCode, 0, set.stderr);
      const stored = (await psql('select rolpassword from pg_authid where rolname = current_user')).stdout.trim();
      assert.equal(stored, verifier.reveal(), 'Postgres stored the verifier as it was sent');
      assert.ok(matchesVerifier(pw, 'app', stored));
      // From now on the socket asks for the password, checked by SCRAM.
      await writeFile(join(data, 'pg_hba.conf'), 'local all all scram-sha-256\n');
      assert.equal((await as('pg_ctl', ['-D', data, '-w', 'reload'])).exitCode, 0);
      await new Promise((r) => setTimeout(r, 500));
      const good = await psql('select 1', { PGPASSWORD: pw });
      assert.equal(good.exitCode, 0, good.stderr);
      assert.equal(good.stdout.trim(), '1');
      const bad = await psql('select 1', { PGPASSWORD: `${pw}x` });
      assert.notEqual(bad.exitCode, 0);
      assert.match(bad.stderr, /password authentication failed for user "app"/);
      assert.ok(!(await readFile(join(d.path, 'log'), 'utf8')).includes(pw), 'the password is not in the server log');
    } finally {
      await as('pg_ctl', ['-D', data, '-w', '-m', 'fast', 'stop']);
    }
  });
});

describe('a verifier from the host', () => {
  it('with an absurd iteration count is taken as "differs" at once, never computed', () => {
    const started = performance.now();
    assert.equal(matchesVerifier('pw', 'authentik', 'SCRAM-SHA-256$2147483647:c2FsdA==$c3RvcmVk:c2VydmVy'), false);
    assert.ok(performance.now() - started < 1000);
  });
});
