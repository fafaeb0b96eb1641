import { defineFact, hostError, quote, type Connection, type Tasks } from 'hostctl';

// A Postgres major version cannot start on another major's data directory: the guard the
// authentik role runs before it touches anything, and the facts postgres-upgrade.ts needs.

// The major version a tag names: postgres:16-alpine, postgres:16.4, lab-postgres:17 -> 16,
// 16, 17; latest, alpine or a digest name none.
export function tagMajor(image: string): number | undefined {
  if (image.includes('@')) return undefined;
  const last = image.slice(image.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  if (colon < 0) return undefined;
  const m = /^(\d+)(?:[.-]|$)/.exec(last.slice(colon + 1));
  return m ? Number(m[1]) : undefined;
}

// The image's Postgres major: from its tag, else by asking the image itself (`postgres
// --version`, without its entrypoint so nothing is initialised). An image already on the host
// is asked as it is (--pull=never). One that is not must be pulled first: a real run does
// (--pull=missing), check mode never pulls nor runs anything and answers undefined (see
// unknownMajor).
export async function imageMajor(h: Tasks, image: string): Promise<number | undefined> {
  const fromTag = tagMajor(image);
  if (fromTag !== undefined) return fromTag;
  const local = (await h.conn.exec(`podman image exists ${quote(image)}`)).code === 0;
  if (!local && h.check) return undefined;
  const r = await h.conn.exec(`podman run --rm --pull=${local ? 'never' : 'missing'} --entrypoint postgres ${quote(image)} --version`);
  const m = /\(PostgreSQL\)\s+(\d+)/.exec(r.stdout);
  if (r.code !== 0 || !m) {
    throw hostError(`cannot tell which Postgres major version image ${image} is: \`postgres --version\` in it said ${JSON.stringify((r.stderr || r.stdout).trim().slice(0, 200))}`, {
      hint: 'use a tag that names the major version, e.g. docker.io/library/postgres:16-alpine',
    });
  }
  return Number(m[1]);
}

// What check mode says when imageMajor cannot tell without pulling.
export const unknownMajor = (image: string, host: string) =>
  `check mode: image ${image} names no Postgres major version in its tag and is not on ${host}: which Postgres it is cannot be told without pulling it, ` +
  `which --check does not do; the real run pulls it and checks it against the data directory first`;

// The major version that made the data directory (its PG_VERSION), or undefined when there
// is none yet (a first install).
export const dataMajor = (root: string) =>
  defineFact({
    id: `postgres-data-major:${root}`,
    command: `cat ${quote(`${root}/database/PG_VERSION`)} 2>/dev/null`,
    parse: (r) => {
      const n = Number.parseInt(r.stdout.trim(), 10);
      return r.code === 0 && Number.isInteger(n) ? n : undefined;
    },
  });

// The image the Postgres container runs now, else the one its unit file names.
export async function currentPostgresImage(conn: Connection): Promise<string | undefined> {
  const r = await conn.exec(
    `podman container inspect authentik-postgresql --format '{{.ImageName}}' 2>/dev/null || sed -n 's/^Image=//p' /etc/containers/systemd/authentik-postgresql.container 2>/dev/null; true`,
  );
  return r.stdout.trim().split('\n')[0] || undefined;
}

// Refuses (before anything is written) when postgres_image is another major version than
// the data directory's, and says how to get there.
export async function postgresMajorGuard(h: Tasks, root: string, image: string): Promise<void> {
  const data = await h.fact(dataMajor(root));
  if (data === undefined) return;
  const wanted = await imageMajor(h, image);
  if (wanted === undefined) return h.note(unknownMajor(image, h.host));
  if (wanted === data) return;
  const dir = `${root}/database`;
  if (wanted > data) {
    throw hostError(
      `postgres_image ${image} is Postgres ${wanted}, but the data directory ${dir} on ${h.host} was made by Postgres ${data} (its PG_VERSION): ` +
        `a new major version cannot start on an old major's data directory. Nothing was changed.`,
      {
        hint: `to move the database to Postgres ${wanted}, run playbooks/postgres-upgrade.ts with the same inventory and -e: it dumps the database with Postgres ${data}, ` +
          `starts Postgres ${wanted} on a new, empty data directory, restores the dump, compares every table's row count and keeps the old directory as ${dir}.pg${data}-<time>. ` +
          `Or keep Postgres ${data}: set postgres_image back to a Postgres ${data} image.`,
      },
    );
  }
  throw hostError(
    `postgres_image ${image} is Postgres ${wanted}, older than Postgres ${data} which made the data directory ${dir} on ${h.host} (its PG_VERSION): ` +
      `a database cannot go back to an older major version in place. Nothing was changed.`,
    { hint: `set postgres_image back to a Postgres ${data} image` },
  );
}
