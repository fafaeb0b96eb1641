import { HostctlError, quoteAll, unitJournalCommand, type Pending, type Tasks } from 'hostctl';
import { dnatCleanup } from './dnat-cleanup.js';
import { CLEANUP, ensurePostgres, failure, restoreDump, startApp, stopAndDump, stopApp, type StackVars } from './stack.js';

export const QUADLET_DIR = '/etc/containers/systemd';
// Every unit file the role has ever owned: what a rollback puts back.
export const UNIT_NAMES = [
  'authentik-internal.network',
  'authentik-postgresql.container',
  'authentik-redis.container',
  'authentik-server.container',
  'authentik-worker.container',
] as const;

// What is deployed before this run: the server's image (the running container's, else its
// unit file's) and the role's unit files and .env as they are, to put back if the new
// version does not become ready.
export interface Deployed {
  image: string | undefined;
  units: Record<string, string>;
  env: string | undefined;
}

export interface Upgrade {
  from: string;
  to: string;
  version: string;
  deployed: Deployed;
  // The verified pre-upgrade dump on the host (undefined until taken, or in check mode).
  dump?: string;
  // Set when this run finishes an upgrade a run that ended early began (its start time).
  interrupted?: string;
}

// The run journal's entry for an upgrade in flight: recorded before server and worker stop,
// cleared when the upgrade or its rollback finished. What was deployed before (unit files and
// .env, which holds secrets) waits beside it, root's only, in saved(h).
export const UPGRADE = 'authentik upgrade';
const saved = (h: Tasks) => `${h.stateDir}/authentik-upgrade`;
interface InFlight {
  from: string;
  to: string;
  version: string;
  dump?: string;
}

// One read-only command: the server's image and the current files, base64 line by line.
// In a recording pass (prefetch) it answers nothing, which reads as "nothing deployed".
export async function readDeployed(h: Tasks, root: string): Promise<Deployed> {
  const image = `podman container inspect authentik-server --format '{{.ImageName}}' 2>/dev/null || sed -n 's/^Image=//p' ${QUADLET_DIR}/authentik-server.container 2>/dev/null`;
  const files = Object.fromEntries([...UNIT_NAMES.map((n) => [`${QUADLET_DIR}/${n}`, n]), [`${root}/.env`, '.env']]);
  return readFiles(h, 'deployed authentik version and unit files', image, files);
}

// What an interrupted upgrade saved before it began (saveDeployed).
const readSaved = (h: Tasks, from: string): Promise<Deployed> =>
  readFiles(h, `unit files and .env of ${from}, saved before the upgrade`, undefined, Object.fromEntries([...UNIT_NAMES, '.env'].map((n) => [`${saved(h)}/${n}`, n])));

// The files (path -> unit name, or ".env") that exist, and the image `image` prints.
async function readFiles(h: Tasks, name: string, image: string | undefined, files: Record<string, string>): Promise<Deployed> {
  const r = await h.command({
    name,
    cmd: `img=$(${image ?? 'true'})
printf 'image %s\\n' "$img"
for f in ${quoteAll(Object.keys(files))}; do [ -f "$f" ] && printf 'file %s %s\\n' "$(base64 -w0 < "$f")" "$f"; done; true`,
    readOnly: true,
  });
  const out = (r.data as { stdout?: string } | undefined)?.stdout ?? '';
  const deployed: Deployed = { image: undefined, units: {}, env: undefined };
  for (const line of out.split('\n')) {
    // The path last: it may hold spaces (authentik_root is the user's), base64 never does.
    const [, kind, value = '', path = ''] = /^(image|file) ?(\S*) ?(.*)$/.exec(line) ?? [];
    if (kind === 'image') deployed.image = value || undefined;
    const what = files[path];
    if (kind !== 'file' || what === undefined) continue;
    const text = Buffer.from(value, 'base64').toString('utf8');
    if (what === '.env') deployed.env = text;
    else deployed.units[what] = text;
  }
  return deployed;
}

const firstLines = (e: unknown) => {
  const parts: string[] = [];
  for (let c: unknown = e; c instanceof Error; c = c.cause) parts.push(c.message);
  return parts.join(': ');
};

// The new version did not come up (or a step before it failed): back to the previous units
// and .env, the database as the pre-upgrade dump has it, the previous version started and
// awaited; then the upgrade is reported as failed, with the tail of the server's journal.
//
// The dump is always restored. Server and worker were stopped before it was taken, so it
// holds every write up to the upgrade and restoring it loses nothing; whether the new
// version's migrations touched the database cannot be told from outside (a half-applied
// migration leaves no reliable mark), and the old version must not start on a schema it
// does not know.
// `fail: false` when the previous version is what the inventory asks for (it was set back
// after a killed upgrade): the rollback is then the run's goal, not a failure.
export async function rollback(h: Tasks, v: StackVars, up: Upgrade, cause: unknown, fail = true): Promise<void> {
  const why = firstLines(cause);
  // The failed version's own output (its container's log lines in this invocation of the
  // unit); if it wrote none (e.g. it never started), what systemd and podman said.
  const journal = await h.command({
    name: `journal of authentik-server (${up.version})`,
    cmd: `${unitJournalCommand('authentik-server.service', { container: 'authentik-server', lines: 20 })}; true`,
    readOnly: true,
    ignoreErrors: true,
  });
  const tail = ((journal.data as { stdout?: string } | undefined)?.stdout ?? '').trim();

  await stopApp(h);
  let changed: string[] = [];
  if (up.deployed.units['authentik-server.container'] !== undefined) {
    const absent = UNIT_NAMES.filter((n) => up.deployed.units[n] === undefined);
    // Server and worker on the image that really ran (a unit file may already name another).
    const units = Object.fromEntries(Object.entries(up.deployed.units).map(([name, text]) =>
      [name, /^authentik-(server|worker)\.container$/.test(name) ? text.replace(/^Image=.*$/m, `Image=${up.from}`) : text]));
    const restored = await h.quadlet({ name: `put back the units of ${up.from}`, units, absent });
    changed = (restored.data as { changed: string[] } | undefined)?.changed ?? [];
  }
  if (up.deployed.env !== undefined) {
    await h.file({ name: `put back the .env of ${up.from}`, path: `${v.authentik_root}/.env`, content: up.deployed.env, mode: '0600', owner: 'root', group: 'root', sensitive: true });
  }
  await h.daemonReload({});
  // Postgres (and Redis, for a version that had it) as before, restarted only if its unit changed.
  for (const unit of ['authentik-postgresql.container', 'authentik-redis.container']) {
    if (up.deployed.units[unit] === undefined) continue;
    await h.service({ name: unit.replace(/\.container$/, '.service'), state: changed.includes(unit) ? 'restarted' : 'started' });
  }
  await ensurePostgres(h, v);
  if (up.dump) await restoreDump(h, v, up.dump);
  await h.run(dnatCleanup, { script: CLEANUP, network: 'authentik-internal' });
  let back = 'ready again';
  try {
    // The previous version ran a minute ago: give it time, even when the timeout that
    // judged the new version was short.
    await startApp(h, { ...v, authentik_ready_timeout: Math.max(v.authentik_ready_timeout, 120) });
  } catch (error) {
    if (error instanceof HostctlError && (error.kind === 'interrupted' || error.kind === 'unreachable')) throw error;
    back = `NOT ready either (${firstLines(error).split('\n')[0]}): see journalctl -u authentik-server.service`;
  }
  // Finished: the next run has nothing of this upgrade left to do.
  h.clearPending(UPGRADE);
  const what = up.interrupted ? `the upgrade to authentik ${up.version} (${up.to}) that an interrupted run began at ${up.interrupted}` : `upgrade to authentik ${up.version} (${up.to})`;
  const message = [
    `${what} failed: ${why}`,
    `rolled back to ${up.from}: ${back}; database ${up.dump ? `restored from the pre-upgrade dump ${up.dump}` : 'not touched (no dump was taken)'}`,
    `--- last lines of authentik-server's journal (${up.version}) ---`,
    tail || '(empty)',
  ].join('\n');
  h.note(`${up.interrupted ? 'finished an interrupted upgrade: ' : ''}rolled back to ${up.from} (${back})${up.dump ? `; database restored from ${up.dump}` : ''}`);
  if (!fail) return;
  await h.run(failure, {
    what: `upgrade to authentik ${up.version}`,
    message,
    hint: `authentik_version is still ${up.version} in the inventory: set it back to the running version, or fix the cause and run again (a new pre-upgrade dump is taken)`,
  });
  throw new HostctlError('host', message);
}

const inFlight = (up: Upgrade): InFlight => ({ from: up.from, to: up.to, version: up.version, ...(up.dump ? { dump: up.dump } : {}) });

// Before anything of the upgrade happens: what is deployed now saved root-only in saved(h) (a
// unit the previous version did not have saved as absent), then the upgrade recorded in the
// run journal, ahead of the next command (the stop of server and worker).
export async function saveDeployed(h: Tasks, up: Upgrade): Promise<void> {
  await h.directory({ path: h.stateDir, mode: '0700', owner: 'root', group: 'root' });
  await h.directory({ path: saved(h), mode: '0700', owner: 'root', group: 'root' });
  const files: Array<[string, string | undefined]> = [...UNIT_NAMES.map((n) => [n, up.deployed.units[n]] as [string, string | undefined]), ['.env', up.deployed.env]];
  for (const [name, text] of files) {
    const path = `${saved(h)}/${name}`;
    await h.file(text === undefined ? { name: `saved ${name} of ${up.from}`, path, state: 'absent' } : { name: `save ${name} of ${up.from}`, path, content: text, mode: '0600', owner: 'root', group: 'root', sensitive: true });
  }
  h.recordPending(UPGRADE, inFlight(up));
}

// Before the new image starts: server and worker stopped (nothing writes any more) and a
// verified dump of the database labelled with the new version, its path recorded in the
// journal before the new version can start.
export async function prepareUpgrade(h: Tasks, v: StackVars, up: Upgrade): Promise<void> {
  up.dump = await stopAndDump(h, v, `pre-${up.version.replace(/[^A-Za-z0-9._-]/g, '_')}`);
  if (up.dump) h.note(`pre-upgrade dump (${up.from}): ${up.dump}`);
  if (!h.check) h.recordPending(UPGRADE, inFlight(up));
}

// An upgrade a run that ended early left in the journal, finished as that run would have:
// the new version deployed and awaited (after the pre-upgrade dump, if the run died before
// taking it), else rolled back with the dump restored. When the inventory no longer asks for
// the new version it is rolled back at once; the previous version is never taken for a new
// upgrade (a fresh dump would be of a database the new version may have migrated).
export async function finishUpgrade<V extends StackVars>(h: Tasks, v: V, entry: Pending, wanted: string, deploy: (h: Tasks, v: V) => Promise<void>): Promise<void> {
  const data = entry.data as InFlight;
  // Check mode: the journal task reported it as a change to come; nothing else is planned.
  if (h.check) return;
  const saved = await readSaved(h, data.from);
  const up: Upgrade = { ...data, deployed: { ...saved, image: data.from }, interrupted: entry.at };
  if (wanted !== up.to) {
    const cause = new Error(`the inventory now asks for ${wanted}`);
    await rollback(h, v, up, cause, wanted !== up.from);
    return;
  }
  try {
    if (!up.dump) await prepareUpgrade(h, v, up);
    await deploy(h, v);
  } catch (error) {
    if (error instanceof HostctlError && (error.kind === 'interrupted' || error.kind === 'unreachable')) throw error;
    await rollback(h, v, up, error);
    return;
  }
  h.clearPending(UPGRADE);
  h.note(`finished an interrupted upgrade: authentik upgraded from ${up.from} to ${up.to}`);
}
