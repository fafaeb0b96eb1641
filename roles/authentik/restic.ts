import { fileURLToPath } from 'node:url';
import { Secret, secret, z, type Tasks } from 'hostctl';
import { LIBEXEC } from './stack.js';

// Off-host copies of the nightly backup in a restic repository: the variables, and what the
// authentik role puts on the host for them (restic from Debian, its configuration in
// root-only files, node_exporter's textfile directory). files/authentik-restic reads that
// configuration; files/authentik-backup --restic stores each set with it.

export const RESTIC_CONF = '/etc/hostctl/authentik-restic';
export const RESTIC_SCRIPT = `${LIBEXEC}/authentik-restic`;
// Where Debian's prometheus-node-exporter reads textfile metrics (its default
// --collector.textfile.directory).
export const METRICS_DIR = '/var/lib/prometheus/node-exporter';

const oneLine = (what: string) => z.string().regex(/^[^\r\n]*$/, `${what} must be one line`);
const secretLine = () => secret().refine((v) => !/[\r\n]/.test(v.reveal()), 'must be a single line');

// Spread into the role's variables (index.ts).
export const resticVars = {
  // A restic repository (sftp:backup@nas:/srv/restic/authentik, rest:https://..., s3:..., a
  // path on the host); empty: no off-host copy.
  authentik_backup_repository: oneLine('authentik_backup_repository').default(''),
  authentik_backup_repository_password: secretLine().optional(),
  // Backend credentials (e.g. AWS_ACCESS_KEY_ID), handed to restic in its environment.
  authentik_backup_repository_env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), secretLine()).default({}),
  // Create the repository when it does not exist; never done unless asked.
  authentik_backup_repository_init: z.boolean().default(false),
  // For an sftp: repository: root's private key and the repository host's key (a known_hosts
  // line as ssh-keyscan prints it, or just "TYPE KEY"), pinned.
  authentik_backup_sftp_key: secret().optional(),
  authentik_backup_sftp_known_hosts: oneLine('authentik_backup_sftp_known_hosts').default(''),
  // restic forget --prune after each backup: the newest snapshot always stays.
  authentik_backup_keep_daily: z.number().int().min(1).default(7),
  authentik_backup_keep_weekly: z.number().int().min(0).default(4),
  authentik_backup_keep_monthly: z.number().int().min(0).default(6),
  // Install Debian's prometheus-node-exporter, which serves the backup's metrics on :9100.
  // Off by default: it opens a port with much about the host on every address; the metrics
  // are written into its textfile directory either way, for an exporter you run already.
  authentik_backup_node_exporter: z.boolean().default(false),
};

const resticSchema = z.object(resticVars);
type ResticVars = z.infer<typeof resticSchema>;

// The user, host and port of an sftp: repository (sftp:user@host:/path, sftp://user@host:port//path).
export function sftpTarget(repository: string): { user: string | undefined; host: string; port: number | undefined } | undefined {
  const m = /^sftp:\/\/(?:([^@/]+)@)?([^:/]+)(?::(\d+))?\//.exec(repository) ?? /^sftp:(?:([^@:/]+)@)?([^:/]+):/.exec(repository);
  if (!m) return undefined;
  return { user: m[1], host: m[2]!, port: m[3] ? Number(m[3]) : undefined };
}

// The known_hosts line for the pinned key, under the alias ssh_config gives the repository.
export function knownHostsLine(line: string): string | undefined {
  const fields = line.trim().split(/\s+/);
  const at = fields.findIndex((f) => /^(ssh-|ecdsa-|sk-)/.test(f));
  return at >= 0 && fields[at + 1] ? `restic-repository ${fields[at]} ${fields[at + 1]}\n` : undefined;
}

// With a repository: its password, and for sftp: the key and the pinned host key. Checked with
// the role's variables, so a missing one stops the run before any host is touched (exit 5),
// naming the key.
export function resticChecks(v: ResticVars, ctx: z.RefinementCtx): void {
  const repo = v.authentik_backup_repository;
  if (!repo) return;
  if (!v.authentik_backup_repository_password) {
    ctx.addIssue({ code: 'custom', path: ['authentik_backup_repository_password'], message: 'authentik_backup_repository is set: its password is needed too (a vault value, e.g. "{{ vault_restic_password }}")' });
  }
  if (!sftpTarget(repo)) return;
  if (!v.authentik_backup_sftp_key) {
    ctx.addIssue({ code: 'custom', path: ['authentik_backup_sftp_key'], message: `the sftp repository ${repo} needs the private key root logs in with (a vault value)` });
  }
  if (!knownHostsLine(v.authentik_backup_sftp_known_hosts)) {
    ctx.addIssue({ code: 'custom', path: ['authentik_backup_sftp_known_hosts'], message: `the sftp repository ${repo} needs its host's key line, pinned: ssh-keyscan -t ed25519 ${sftpTarget(repo)!.host}` });
  }
}

const file = (name: string) => fileURLToPath(new URL(`./files/${name}`, import.meta.url));
const PRIVATE = { mode: '0600', owner: 'root', group: 'root' } as const;

// restic, its configuration (only root reads it), and the metrics directory.
export async function installRestic(h: Tasks, v: ResticVars): Promise<void> {
  if (v.authentik_backup_node_exporter) await h.apt({ packages: ['prometheus-node-exporter'] });
  // Root's alone: the backup script writes into it as root (and refuses any other).
  await h.directory({ path: METRICS_DIR, mode: '0755', owner: 'root', group: 'root' });
  await h.file({ path: RESTIC_SCRIPT, source: file('authentik-restic'), mode: '0755' });
  const repo = v.authentik_backup_repository;
  const sftp = sftpTarget(repo);
  const names = ['env', 'password', 'ssh_config', 'sftp_key', 'known_hosts'];
  if (!repo) {
    for (const name of names) await h.file({ path: `${RESTIC_CONF}/${name}`, state: 'absent' });
    return;
  }
  await h.apt({ packages: ['restic'] });
  await h.directory({ path: '/etc/hostctl', mode: '0755', owner: 'root', group: 'root' });
  await h.directory({ path: RESTIC_CONF, mode: '0700', owner: 'root', group: 'root' });
  await h.directory({ path: '/var/cache/authentik-restic', mode: '0700', owner: 'root', group: 'root' });
  await h.file({ path: `${RESTIC_CONF}/password`, content: v.authentik_backup_repository_password!, ...PRIVATE });
  const env = [
    `RESTIC_REPOSITORY=${repo}`,
    `RESTIC_PASSWORD_FILE=${RESTIC_CONF}/password`,
    'RESTIC_CACHE_DIR=/var/cache/authentik-restic',
    `AUTHENTIK_RESTIC_HOST=${h.host}`,
    ...Object.entries(v.authentik_backup_repository_env).map(([k, s]) => `${k}=${s.reveal()}`),
  ].join('\n');
  await h.file({ path: `${RESTIC_CONF}/env`, content: new Secret(`${env}\n`, 'authentik_backup_repository_env'), ...PRIVATE });
  if (sftp) {
    const config = [
      'Host restic-repository',
      `  HostName ${sftp.host}`,
      ...(sftp.user ? [`  User ${sftp.user}`] : []),
      ...(sftp.port ? [`  Port ${sftp.port}`] : []),
      `  IdentityFile ${RESTIC_CONF}/sftp_key`,
      '  IdentitiesOnly yes',
      '  HostKeyAlias restic-repository',
      `  UserKnownHostsFile ${RESTIC_CONF}/known_hosts`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  ConnectTimeout 30',
      '  ServerAliveInterval 30',
      '',
    ].join('\n');
    const key = v.authentik_backup_sftp_key!.reveal();
    await h.file({ path: `${RESTIC_CONF}/sftp_key`, content: new Secret(key.endsWith('\n') ? key : `${key}\n`, 'authentik_backup_sftp_key'), ...PRIVATE });
    await h.file({ path: `${RESTIC_CONF}/known_hosts`, content: knownHostsLine(v.authentik_backup_sftp_known_hosts)!, ...PRIVATE, sensitive: false });
    await h.file({ path: `${RESTIC_CONF}/ssh_config`, content: config, ...PRIVATE, sensitive: false });
  } else {
    for (const name of ['ssh_config', 'sftp_key', 'known_hosts']) await h.file({ path: `${RESTIC_CONF}/${name}`, state: 'absent' });
  }
}
