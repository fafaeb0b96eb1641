import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { change, defineFact, defineResource, noop, quote, type Secret } from 'hostctl';

export interface PostgresPasswordArgs {
  container: string;
  user: string;
  db: string;
  password: Secret;
}

// The role's stored password verifier, read over the container's local socket (trust):
// no password is needed to read it, and none travels to check it.
const verifier = (a: PostgresPasswordArgs) =>
  defineFact({
    id: `postgres-verifier:${a.container}:${a.user}`,
    command: `podman exec ${quote(a.container)} psql -X -q -U ${quote(a.user)} -d ${quote(a.db)} -tAc "select rolpassword from pg_authid where rolname = current_user" 2>/dev/null`,
    parse: (r) => (r.code === 0 ? r.stdout.trim() : undefined),
  });

// Does `password` match a SCRAM-SHA-256 (or legacy md5) verifier from pg_authid?
export function matchesVerifier(password: string, user: string, stored: string): boolean {
  const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(stored);
  if (scram) {
    const salted = pbkdf2Sync(password, Buffer.from(scram[2]!, 'base64'), Number(scram[1]), 32, 'sha256');
    const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest();
    const expected = Buffer.from(scram[3]!, 'base64');
    return expected.length === storedKey.length && timingSafeEqual(expected, storedKey);
  }
  if (stored.startsWith('md5')) return stored === `md5${createHash('md5').update(password + user).digest('hex')}`;
  return false;
}

// Postgres reads POSTGRES_PASSWORD only when it first creates its data directory; after that
// a new password in .env changes nothing, and authentik can no longer log in. This resource
// compares the vault's password with the verifier Postgres stores and, when they differ,
// sets it through the container's local socket. The password travels on stdin only.
export const postgresPassword = defineResource<PostgresPasswordArgs>({
  kind: 'postgres-password',
  title: (a) => `postgres password of role ${a.user}`,
  probes: (a) => [{ fact: verifier(a) }],
  async plan(ctx, a) {
    const stored = await ctx.facts.get(verifier(a));
    if (stored === undefined) return noop('postgres is not running: its password is set when it first starts');
    if (matchesVerifier(a.password.reveal(), a.user, stored)) return noop('the password in .env is the database password');
    return change('set the new password in the database', async () => {
      const literal = a.password.reveal().replace(/'/g, "''");
      await ctx.conn.check(`podman exec -i ${quote(a.container)} psql -X -v ON_ERROR_STOP=1 -q -U ${quote(a.user)} -d ${quote(a.db)}`, {
        stdin: `ALTER ROLE "${a.user.replace(/"/g, '""')}" WITH PASSWORD '${literal}';\n`,
      });
    });
  },
});
