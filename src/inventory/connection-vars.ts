import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { inputError } from '../core/errors.js';
import { isSecret, Secret } from '../core/secret.js';
import { typedSecretFor } from '../core/schema.js';
import { parseSshArgs, type SshArgsText } from '../transport/ssh/config.js';
import type { Become } from '../transport/transport.js';
import type { Sourced } from './model.js';

// The Ansible connection variables hostctl understands, read from a host's resolved vars.
// Every variable ansible-core documents for the ssh connection and the become plugins is
// honoured, has no effect for a stated reason, or is refused by name (REFUSED below): none
// is dropped without a word.
export interface HostConnection {
  connection: 'ssh' | 'local';
  address: string;
  port: number | undefined;
  user: string | undefined;
  // Absolute paths (`~` and $VARS expanded as Ansible does), tried in this order.
  privateKeyFiles: string[];
  // -J / -o ProxyJump from the ssh args; undefined leaves it to ~/.ssh/config.
  proxyJump: string | undefined;
  knownHostsFile: string | undefined;
  // true: record unknown host keys (accept-new); false: refuse them; undefined: the ssh config decides.
  acceptNewHostKeys: boolean | undefined;
  become: Become | undefined;
  // ansible_ssh_timeout, in ms.
  connectTimeoutMs: number | undefined;
  // hostctl_ssh_keepalive_interval (or ServerAliveInterval), in ms: how soon a dead link is noticed (3 missed = lost).
  keepaliveMs: number | undefined;
  // ansible_ssh_retries: extra connection attempts after a network failure.
  connectRetries: number | undefined;
  // Lines for the host's recap (a weaker setting hostctl replaced by a stronger one).
  notes: string[];
}

const yes = z.union([z.boolean(), z.enum(['yes', 'no', 'true', 'false', 'True', 'False'])]).transform((v) => v === true || v === 'yes' || v === 'true' || v === 'True');
const port = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]).pipe(z.number().min(1).max(65535));
const count = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]).pipe(z.number().min(0));
const password = z.union([z.string(), z.instanceof(Secret)]);

// Aliases are listed as ansible-core lists them: when several are set, the LAST one set wins
// (its config manager loops over them all), whatever the level each was set at.
const schema = {
  ansible_connection: z.enum(['ssh', 'local', 'smart', 'paramiko']),
  ansible_host: z.string(),
  ansible_ssh_host: z.string(),
  ansible_port: port,
  ansible_ssh_port: port,
  ansible_user: z.string(),
  ansible_ssh_user: z.string(),
  ansible_private_key_file: z.string(),
  ansible_ssh_private_key_file: z.string(),
  ansible_ssh_args: z.string(),
  ansible_ssh_common_args: z.string(),
  ansible_ssh_extra_args: z.string(),
  ansible_host_key_checking: yes,
  ansible_ssh_host_key_checking: yes,
  ansible_ssh_timeout: z.coerce.number().positive(),
  ansible_ssh_retries: count,
  ansible_become: yes,
  ansible_become_method: z.string(),
  ansible_become_user: z.string(),
  ansible_sudo_user: z.string(),
  ansible_become_exe: z.string(),
  ansible_sudo_exe: z.string(),
  ansible_become_flags: z.string(),
  ansible_sudo_flags: z.string(),
  ansible_become_password: password,
  ansible_become_pass: password,
  ansible_sudo_pass: password,
  hostctl_known_hosts_file: z.string(),
  hostctl_ssh_keepalive_interval: z.number().positive(),
} as const;
type Key = keyof typeof schema;
export const HONOURED = Object.keys(schema) as Key[];

// Tune how Ansible drives the ssh binary; hostctl speaks SSH itself over one connection per
// host for the whole run, sends commands and files through it and never allocates a tty.
export const NO_EFFECT = [
  'ansible_pipelining',
  'ansible_ssh_pipelining',
  'ansible_control_path',
  'ansible_control_path_dir',
  'ansible_ssh_transfer_method',
  'ansible_scp_if_ssh',
  'ansible_sftp_batch_mode',
  'ansible_scp_extra_args',
  'ansible_sftp_extra_args',
  'ansible_ssh_use_tty',
] as const;

const KEYS_ONLY =
  'hostctl logs in with keys only: a password would be sent to whatever answers at that address, and Ansible needs sshpass for it';
const NO_SU =
  "su reads its password with a single read() from a non-terminal stdin (PAM's conversation), swallowing the command's own input after it, and cannot be told to do otherwise without a tty";
const SU_HINT = 'use ansible_become_method: sudo (give the login user sudo rights), or log in as the target user (ansible_user)';

// Refused with why and what to use instead.
export const REFUSED: Record<string, { why: string; hint: string }> = {
  ansible_password: { why: KEYS_ONLY, hint: 'install a key (ssh-copy-id) and set ansible_ssh_private_key_file, or load it into ssh-agent' },
  ansible_ssh_pass: { why: KEYS_ONLY, hint: 'install a key (ssh-copy-id) and set ansible_ssh_private_key_file, or load it into ssh-agent' },
  ansible_ssh_password: { why: KEYS_ONLY, hint: 'install a key (ssh-copy-id) and set ansible_ssh_private_key_file, or load it into ssh-agent' },
  ansible_sshpass_prompt: { why: KEYS_ONLY, hint: 'remove it; log in with a key' },
  ansible_ssh_executable: { why: 'hostctl speaks SSH itself and runs no ssh binary', hint: 'remove it; ssh options go in ~/.ssh/config or ansible_ssh_common_args' },
  ansible_scp_executable: { why: 'hostctl sends files over its own SSH connection', hint: 'remove it' },
  ansible_sftp_executable: { why: 'hostctl sends files over its own SSH connection', hint: 'remove it' },
  ansible_ssh_pkcs11_provider: { why: 'hostctl does not load PKCS#11 providers', hint: 'load the token\'s keys into ssh-agent (`ssh-add -s PROVIDER`)' },
  ansible_su_user: { why: NO_SU, hint: SU_HINT },
  ansible_su_pass: { why: NO_SU, hint: SU_HINT },
  ansible_su_exe: { why: NO_SU, hint: SU_HINT },
  ansible_su_flags: { why: NO_SU, hint: SU_HINT },
  ansible_su_prompt_l10n: { why: NO_SU, hint: SU_HINT },
};

// hostctl runs `sudo -H -u USER`, which is what these say when set to Ansible's defaults.
const SUDO_DEFAULTS: Partial<Record<Key, string>> = {
  ansible_become_exe: 'sudo',
  ansible_sudo_exe: 'sudo',
  ansible_become_flags: '-H -S -n',
  ansible_sudo_flags: '-H -S -n',
};

const seconds = (s: number | undefined) => (s === undefined ? undefined : s * 1000);

// A path as Ansible's unfrackpath reads it: $VARS and ${VARS} the environment sets, then a
// leading `~`, then relative to the working directory.
export function expandUserPath(path: string, env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const vars = path.replace(/\$(\w+)|\$\{(\w+)\}/g, (whole, a?: string, b?: string) => env[(a ?? b)!] ?? whole);
  const tilde = vars === '~' ? home : vars.startsWith('~/') ? `${home}${vars.slice(1)}` : vars;
  return resolve(tilde);
}

// `defaults` are the command line's connection settings (-u, --private-key, -b ...): as in
// Ansible, a variable set anywhere in the inventory wins over them.
export function connectionFromVars(host: string, hostVars: Map<string, Sourced>, defaults: Map<string, Sourced> = new Map()): HostConnection {
  const vars = new Map([...defaults, ...hostVars]);
  const where = (key: string) => `${vars.get(key)?.source}: ${key}`;
  const read = <K extends Key>(key: K): z.infer<(typeof schema)[K]> | undefined => {
    const entry = vars.get(key);
    if (entry === undefined || entry.value === undefined || entry.value === null) return undefined;
    // A vaulted ansible_port or ansible_become is a Secret holding a number or boolean.
    const parsed = schema[key].safeParse(typedSecretFor(schema[key], entry.value));
    if (!parsed.success) throw inputError(`${key} for host ${host}: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { where: where(key) });
    return parsed.data as z.infer<(typeof schema)[K]>;
  };
  const last = <K extends Key>(...keys: K[]) => keys.map((k) => read(k)).filter((v) => v !== undefined).at(-1);

  for (const [key, { why, hint }] of Object.entries(REFUSED)) {
    if (vars.has(key)) throw inputError(`${key} is not supported by hostctl: ${why}`, { where: where(key), hint });
  }
  const connection = read('ansible_connection');
  const become = read('ansible_become') ?? false;
  if (become) {
    const method = read('ansible_become_method') ?? 'sudo';
    if (method === 'su') throw inputError(`ansible_become_method su is not supported by hostctl: ${NO_SU}`, { where: where('ansible_become_method'), hint: SU_HINT });
    if (method !== 'sudo') throw inputError(`ansible_become_method ${method} is not supported by hostctl (only sudo)`, { where: where('ansible_become_method'), hint: SU_HINT });
    for (const [key, value] of Object.entries(SUDO_DEFAULTS) as [Key, string][]) {
      const set = read(key);
      if (set !== undefined && set !== value) {
        throw inputError(`${key} "${String(set)}" is not supported by hostctl, which runs \`sudo -H -u USER\``, { where: where(key), hint: `remove it (or set it to "${value}")` });
      }
    }
  }

  const args = parseSshArgs(
    (['ansible_ssh_args', 'ansible_ssh_common_args', 'ansible_ssh_extra_args'] as const)
      .map((key): SshArgsText | undefined => {
        const text = read(key);
        return text === undefined ? undefined : { text, where: where(key) };
      })
      .filter((a) => a !== undefined),
  );
  const notes: string[] = [];
  const checking = last('ansible_host_key_checking', 'ansible_ssh_host_key_checking');
  // Ansible's settings come before the args on its ssh command line: they win.
  const strict = checking === false ? 'no' : args.strictHostKeyChecking;
  if (strict === 'no') {
    // A trust decision: hostctl never connects to a host whose key changed. "no" gets the
    // closest safe meaning, OpenSSH's accept-new, and the recap says so.
    notes.push(
      `${checking === false ? 'host key checking off' : 'StrictHostKeyChecking=no'} was taken as accept-new: a new host key is recorded, a changed one is refused`,
    );
  }
  const keyFile = last('ansible_private_key_file', 'ansible_ssh_private_key_file');
  const knownHosts = read('hostctl_known_hosts_file') ?? args.userKnownHostsFile;
  const password = last('ansible_become_password', 'ansible_become_pass', 'ansible_sudo_pass');
  return {
    connection: connection === 'local' ? 'local' : 'ssh',
    address: last('ansible_host', 'ansible_ssh_host') ?? host,
    port: last('ansible_port', 'ansible_ssh_port') ?? args.port,
    user: last('ansible_user', 'ansible_ssh_user') ?? args.user,
    privateKeyFiles: [...(keyFile !== undefined ? [keyFile] : []), ...args.identityFiles].map((f) => expandUserPath(f)),
    proxyJump: args.proxyJump,
    knownHostsFile: knownHosts === undefined ? undefined : expandUserPath(knownHosts),
    acceptNewHostKeys: strict === undefined ? undefined : strict !== 'yes',
    connectTimeoutMs: seconds(read('ansible_ssh_timeout')) ?? args.connectTimeoutMs,
    keepaliveMs: seconds(read('hostctl_ssh_keepalive_interval')) ?? args.serverAliveIntervalMs,
    connectRetries: read('ansible_ssh_retries'),
    notes,
    become: become
      ? {
          user: last('ansible_become_user', 'ansible_sudo_user') ?? 'root',
          password: password === undefined ? undefined : isSecret(password) ? password : new Secret(password, `ansible_become_password of ${host}`),
        }
      : undefined,
  };
}
