import { change, defineResource, noop, quote, type Secret } from 'hostctl';

export interface PostgresPasswordArgs {
  container: string;
  user: string;
  db: string;
  password: Secret;
}

// Postgres reads POSTGRES_PASSWORD only when it first creates its data directory; after that
// a new password in .env changes nothing, and authentik can no longer log in. This resource
// tries the password the way authentik connects (TCP, password auth) and, if it fails, sets
// it through the container's local socket. The password travels on stdin only.
export const postgresPassword = defineResource<PostgresPasswordArgs>({
  kind: 'postgres-password',
  title: (a) => `postgres password of role ${a.user}`,
  async plan(ctx, a) {
    const running = await ctx.conn.exec(`podman container inspect -f '{{.State.Running}}' ${quote(a.container)} 2>/dev/null`);
    if (running.stdout.trim() !== 'true') return noop('postgres is not running: its password is set when it first starts');
    const login = await ctx.conn.exec(
      `podman exec -i ${quote(a.container)} sh -c 'IFS= read -r PGPASSWORD; export PGPASSWORD; psql -h 127.0.0.1 -U "$1" -d "$2" -tAc "select 1" >/dev/null' _ ${quote(a.user)} ${quote(a.db)}`,
      { stdin: `${a.password.reveal()}\n` },
    );
    if (login.code === 0) return noop('the password in .env logs in');
    return change('set the new password in the database', async () => {
      const literal = a.password.reveal().replace(/'/g, "''");
      await ctx.conn.check(`podman exec -i ${quote(a.container)} psql -v ON_ERROR_STOP=1 -q -U ${quote(a.user)} -d ${quote(a.db)}`, {
        stdin: `ALTER ROLE "${a.user.replace(/"/g, '""')}" WITH PASSWORD '${literal}';\n`,
      });
    });
  },
});
