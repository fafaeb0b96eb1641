import { dirname } from 'node:path';
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { change, defineFact, defineResource, noop, quote, Secret } from 'hostctl';

export interface PostgresPasswordArgs {
  container: string;
  user: string;
  db: string;
  password: Secret;
  // Compare now: .env changed in this run, or a killed run changed it and left the check to
  // this one. Otherwise the comparison waits for its schedule.
  due: boolean;
  // The schedule: compare again when the last comparison that found the password right (or
  // set it), recorded by the mtime of `stamp` (root's, on the host), is `everyDays` old; 0:
  // every run.
  stamp: string;
  everyDays: number;
  // ... and only while this shell command passes on the host (the application answers
  // ready): a password that drifted locks the application out, and then the comparison (and
  // the repair) comes with the next run, not days later.
  scheduledWhile: string;
}

// The role's stored password verifier, read over the container's local socket (trust):
// no password is needed to read it, and none travels to check it.
const verifier = (a: PostgresPasswordArgs) =>
  defineFact({
    id: `postgres-verifier:${a.container}:${a.user}`,
    command: `podman exec ${quote(a.container)} psql -X -q -U ${quote(a.user)} -d ${quote(a.db)} -tAc "select rolpassword from pg_authid where rolname = current_user" 2>/dev/null`,
    parse: (r) => (r.code === 0 ? r.stdout.trim() : undefined),
  });

const DAY = 86_400;
// Seconds a due comparison waits for Postgres to answer psql (see plan).
const RETRIES = 20;

// The verifier, unless `stamp` says a comparison found the password right less than
// `everyDays` ago and `scheduledWhile` passes: then only the stamp's time ("checked EPOCH"),
// and no podman exec at all. A stamp from the future (a clock set back) does not count.
const scheduled = (a: PostgresPasswordArgs) => {
  const stamp = quote(a.stamp);
  return defineFact({
    id: `postgres-verifier:${a.container}:${a.user}:${a.stamp}:${a.everyDays}:${a.scheduledWhile}`,
    command: [
      `if t=$(stat -c %Y -- ${stamp} 2>/dev/null) && n=$(date +%s) && [ "$t" -le "$n" ] && [ $((n - t)) -lt ${a.everyDays * DAY} ] && ( ${a.scheduledWhile} ) >/dev/null 2>&1; then echo "checked $t"`,
      `else ${verifier(a).command}; fi`,
    ].join('\n'),
    parse: (r): { checkedAt: number } | string | undefined => {
      const checked = /^checked (\d+)$/.exec(r.stdout.trim());
      return checked ? { checkedAt: Number(checked[1]) } : verifier(a).parse(r);
    },
  });
};

// SCRAM-SHA-256 keys of a password (RFC 5802, RFC 7677): what pg_authid stores.
function scramKeys(password: string, salt: Buffer, iterations: number) {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return { storedKey, serverKey };
}

// The verifier Postgres itself would store for `password` (random 16-byte salt, 4096
// iterations, its defaults), computed on the controller so the password never reaches the
// host. It is password-equivalent for an offline guess, so it is a Secret too: never printed,
// never in a command line.
export function scramVerifier(password: string, iterations = 4096): Secret {
  const salt = randomBytes(16);
  const { storedKey, serverKey } = scramKeys(password, salt, iterations);
  const text = `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
  return new Secret(text, 'the SCRAM verifier of the Postgres password');
}

// Postgres' default is 4096; anything above this is not a verifier hostctl or Postgres made.
const MAX_SCRAM_ITERATIONS = 100_000;

// Does `password` match a SCRAM-SHA-256 (or legacy md5) verifier from pg_authid?
export function matchesVerifier(password: string, user: string, stored: string): boolean {
  const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(stored);
  if (scram) {
    // The count comes from the host: an absurd one (a compromised database can store any
    // verifier) would hold the controller for minutes, so it is taken as "differs" instead.
    const iterations = Number(scram[1]);
    if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_SCRAM_ITERATIONS) return false;
    const { storedKey } = scramKeys(password, Buffer.from(scram[2]!, 'base64'), iterations);
    const expected = Buffer.from(scram[3]!, 'base64');
    return expected.length === storedKey.length && timingSafeEqual(expected, storedKey);
  }
  if (stored.startsWith('md5')) return stored === `md5${createHash('md5').update(password + user).digest('hex')}`;
  return false;
}

// The SQL that sets the password: only the verifier, never the password, is in it.
export function alterRoleSql(user: string, verifier: Secret): string {
  return `ALTER ROLE "${user.replace(/"/g, '""')}" WITH PASSWORD '${verifier.reveal()}';\n`;
}

// Which read the resource makes: the scheduled one when nothing makes the comparison due (what
// a role's prefetch records, its recording pass knowing of no change).
const read = (a: PostgresPasswordArgs) => (a.due || a.everyDays === 0 ? verifier(a) : scheduled(a));

// What the comparison found, as the role reads it from the task's data: `compared` false when
// it did not happen (not due, or Postgres not running), so a due check stays due.
export interface PasswordCheck {
  compared: boolean;
}

// Postgres reads POSTGRES_PASSWORD only when it first creates its data directory; after that
// a new password in .env changes nothing, and authentik can no longer log in. This resource
// compares the vault's password with the verifier Postgres stores and, when they differ,
// sets it through the container's local socket. Only a SCRAM verifier computed here travels,
// on stdin: the plaintext password never leaves the controller.
// Reading the verifier is a `podman exec … psql` (~0.2 s on the target), and the drift it
// guards against outside a change of .env (someone altering the role by hand, a restore of
// another cluster) is rare: so it runs when due, else on a schedule (see PostgresPasswordArgs).
// A comparison that found the password right, or set it, touches the stamp with the next
// command (not in check mode): a run killed before that only compares again next time.
export const postgresPassword = defineResource<PostgresPasswordArgs>({
  kind: 'postgres-password',
  title: (a) => `postgres password of role ${a.user}`,
  probes: (a) => [{ fact: read(a) }],
  async plan(ctx, a) {
    let seen = await ctx.facts.get<{ checkedAt: number } | string | undefined>(read(a));
    // The role asks once Postgres answers its health check. On a first start that can be the
    // image's initialising server, which then restarts: a due comparison waits the restart out
    // rather than leaving itself due for the next run.
    for (let attempt = 0; seen === undefined && a.due && !ctx.check && attempt < RETRIES; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      seen = verifier(a).parse(await ctx.conn.exec(verifier(a).command, { signal: ctx.signal }));
    }
    const notCompared = { compared: false } satisfies PasswordCheck;
    if (typeof seen === 'object') {
      const when = new Date(seen.checkedAt * 1000).toISOString().slice(0, 16).replace('T', ' ');
      return noop(`compared ${when} UTC; again after ${a.everyDays} day${a.everyDays === 1 ? '' : 's'}, or when .env changes`, notCompared);
    }
    if (seen === undefined) return noop('postgres is not running: its password is set when it first starts', notCompared);
    const stamp = () => {
      if (!ctx.check) ctx.conn.ahead(`umask 077 && mkdir -p -- ${quote(dirname(a.stamp))} && touch -- ${quote(a.stamp)}`);
    };
    const compared = { compared: true } satisfies PasswordCheck;
    if (matchesVerifier(a.password.reveal(), a.user, seen)) {
      stamp();
      return noop('the password in .env is the database password', compared);
    }
    return change('set the new password in the database', async () => {
      await ctx.conn.check(`podman exec -i ${quote(a.container)} psql -X -v ON_ERROR_STOP=1 -q -U ${quote(a.user)} -d ${quote(a.db)}`, {
        stdin: alterRoleSql(a.user, scramVerifier(a.password.reveal())),
      });
      stamp();
      return { data: compared };
    });
  },
});
