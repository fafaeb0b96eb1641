import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { execa } from 'execa';
import { change, defineResource, hostError, inside, quote, type Connection, type Secret } from 'hostctl';
import type { BackupSet } from './fetch.js';
import { checkShare, parseSnapshots, shownRepository, type RepositoryCheck } from './restic-backup.js';

// The controller-side mode of playbooks/backup.ts (backup_controller_repository): for people
// without a NAS. The host's verified set is pulled over SSH a chunk at a time (nothing whole
// in memory), checked against the host's manifest as it streams, and fed uncompressed to the
// controller's own restic (Debian's package, installed by scripts/setup): encrypted at rest
// on the controller too. The password and the backend's credentials reach restic in its
// environment, never in its arguments.

// Bytes per round trip when streaming a file from or to the host.
const CHUNK = 4 << 20;

export interface ControllerRepository {
  repository: string;
  password: Secret;
  env: Record<string, Secret>;
  init: boolean;
}

const environment = (r: ControllerRepository) => ({
  ...Object.fromEntries(Object.entries(r.env).map(([k, v]) => [k, v.reveal()])),
  RESTIC_REPOSITORY: r.repository,
  RESTIC_PASSWORD: r.password.reveal(),
});

// restic on the controller; its failure is the run's, with restic's last words. With `input`,
// restic reads it on stdin; should the input fail (damaged bytes from the host), restic is
// killed before it can see the end of its input: no snapshot of a cut-off stream.
export async function resticLocal(r: ControllerRepository, args: string[], what: string, input?: Readable[]) {
  const run = execa('restic', args, { env: environment(r), reject: false, stdin: input ? 'pipe' : 'ignore' });
  const stop = () => run.kill('SIGKILL');
  // Listening before pipeline() does: the kill comes before pipeline closes restic's stdin.
  for (const stream of input ?? []) stream.on('error', stop);
  const fed = input ? pipeline([...input, run.stdin!]).then(() => undefined, (error: Error) => error) : undefined;
  const [result, feedError] = await Promise.all([run, fed]);
  if (feedError && result.exitCode !== 0) throw hostError(`${what} failed: ${feedError.message}`);
  if (result.exitCode !== 0) {
    const why = String(result.stderr).trim().split('\n').slice(-3).join(' ');
    throw hostError(`${what} failed (restic exit ${result.exitCode ?? result.signal}): ${why || String(result.message)}`);
  }
  return String(result.stdout);
}

// The repository exists (or is created, if asked); a wrong password or an unreachable one fails.
async function openRepository(r: ControllerRepository): Promise<void> {
  const probe = await execa('restic', ['cat', 'config'], { env: environment(r), reject: false });
  if (probe.exitCode === 0) return;
  const why = String(probe.stderr).trim().split('\n').slice(-3).join(' ');
  if (probe.exitCode === 10 || /Is there a repository at the following location/.test(why)) {
    if (!r.init) throw hostError(`restic repository ${shownRepository(r.repository)} does not exist; set backup_controller_repository_init: true to create it (${why})`);
    await resticLocal(r, ['init'], `creating restic repository ${shownRepository(r.repository)}`);
  } else if (probe.exitCode === 12 || /wrong password/.test(why)) {
    throw hostError(`restic repository ${shownRepository(r.repository)} does not accept the password (backup_controller_repository_password): ${why}`);
  } else {
    throw hostError(`cannot open restic repository ${shownRepository(r.repository)}: ${why}`);
  }
}

// A file of the host, a chunk per round trip, its sha256 checked against `sha256` at the end.
function pull(conn: Connection, path: string, size: number, sha256: string): Readable {
  const hash = createHash('sha256');
  async function* chunks() {
    for (let at = 0; at < size; at += CHUNK) {
      const r = await conn.execRaw(`tail -c +${at + 1} -- ${quote(path)} | head -c ${Math.min(CHUNK, size - at)}`);
      if (r.code !== 0) throw hostError(`reading ${path} failed: ${r.stderr.trim()}`);
      hash.update(r.stdout);
      yield r.stdout;
    }
    const got = hash.digest('hex');
    if (got !== sha256) throw hostError(`${path} arrived damaged: sha256 ${got}, the host's manifest says ${sha256}`);
  }
  return Readable.from(chunks());
}

export interface ControllerBackup extends RepositoryCheck {
  added: number;
}

// The set into the controller's repository: the dump as /authentik.sql and the files archive as
// /authentik-files.tar (both uncompressed, for deduplication), tagged as the host's script tags
// them; then forget --prune with the host's keep policy.
// Then the snapshot's size and tonight's share of `restic check --read-data-subset`.
export const feedController = defineResource<{ set: BackupSet; repo: ControllerRepository; keep: { daily: number; weekly: number; monthly: number }; cycle: number }>({
  kind: 'restic-controller',
  title: (a) => `store ${a.set.name} in ${shownRepository(a.repo.repository)} (restic on the controller)`,
  async plan(ctx, a) {
    return change(`stream ${a.set.files.map((f) => f.name).join(', ')} into restic`, async () => {
      await openRepository(a.repo);
      const tags = ['--host', ctx.host, '--tag', 'authentik', '--tag', `host=${ctx.host}`, '--tag', `set=${a.set.name}`];
      let added = 0;
      for (const f of a.set.files) {
        const db = f.name.endsWith('.sql.gz');
        const source = pull(ctx.conn, inside(a.set.dir, f.name, `host ${ctx.host}`), f.size, f.sha256);
        const out = await resticLocal(a.repo, ['backup', '--json', '--stdin', '--stdin-filename', db ? 'authentik.sql' : 'authentik-files.tar', ...tags, ...(db ? [] : ['--tag', 'files'])],
          `storing ${f.name} in ${shownRepository(a.repo.repository)}`, [source, createGunzip()]);
        const summary = JSON.parse(out.split('\n').find((l) => l.includes('"message_type":"summary"')) ?? '{}') as { data_added?: number };
        added += summary.data_added ?? 0;
      }
      await resticLocal(a.repo, ['forget', '--prune', '--host', ctx.host, '--tag', 'authentik', '--group-by', 'host,paths',
        '--keep-daily', String(a.keep.daily), '--keep-weekly', String(a.keep.weekly), '--keep-monthly', String(a.keep.monthly)], `restic forget --prune on ${shownRepository(a.repo.repository)}`);
      const [snapshot] = parseSnapshots(await resticLocal(a.repo, ['snapshots', '--json', '--tag', `set=${a.set.name}`, '--path', '/authentik.sql'], 'listing the snapshots'), shownRepository(a.repo.repository));
      if (!snapshot) throw hostError(`${shownRepository(a.repo.repository)} holds no snapshot of ${a.set.name} after restic backup succeeded`);
      const stats = JSON.parse(await resticLocal(a.repo, ['stats', '--json', '--mode', 'restore-size', snapshot.id], 'restic stats')) as { total_size?: number };
      const share = checkShare(a.cycle);
      await resticLocal(a.repo, ['check', `--read-data-subset=${share}`], `restic check --read-data-subset=${share} of ${shownRepository(a.repo.repository)}`);
      const ageSeconds = Math.round((Date.now() - Date.parse(snapshot.time)) / 1000);
      const result: ControllerBackup = { snapshot, added, size: stats.total_size ?? NaN, ageSeconds, share };
      return { data: result, reason: `snapshot ${snapshot.short_id}, ${added} bytes added` };
    });
  },
});

// A snapshot's dump out of the controller's repository onto the host (gzip there), for the drill.
export const pushSnapshot = defineResource<{ repo: ControllerRepository; id: string; path: string }>({
  kind: 'restic-controller-push',
  title: (a) => `stream snapshot ${a.id.slice(0, 8)} from ${shownRepository(a.repo.repository)} to ${a.path}`,
  async plan(ctx, a) {
    return change('stream it', async () => {
      const partial = `${a.path}.partial`;
      await ctx.conn.check(`umask 077; : >${quote(partial)}`);
      const dump = execa('restic', ['dump', a.id, '/authentik.sql'], { env: environment(a.repo), reject: false, buffer: false });
      let pending = Buffer.alloc(0);
      const send = async (data: Buffer) => {
        const r = await ctx.conn.execRaw(`gzip -1 >>${quote(partial)}`, { stdin: data });
        if (r.code !== 0) throw hostError(`writing ${partial} failed: ${r.stderr.trim()}`);
      };
      for await (const chunk of dump.stdout!) {
        pending = Buffer.concat([pending, chunk as Buffer]);
        if (pending.length >= CHUNK) {
          await send(pending);
          pending = Buffer.alloc(0);
        }
      }
      if (pending.length) await send(pending);
      const done = await dump;
      if (done.exitCode !== 0) throw hostError(`restic dump ${a.id.slice(0, 8)} failed: ${String(done.stderr).trim()}`);
      await ctx.conn.check(`mv -f -- ${quote(partial)} ${quote(a.path)}`);
      return { reason: 'streamed' };
    });
  },
});
