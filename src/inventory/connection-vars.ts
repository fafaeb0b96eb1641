import { z } from 'zod';
import { inputError } from '../core/errors.js';
import { isSecret, Secret } from '../core/secret.js';
import { typedSecretFor } from '../core/schema.js';
import type { Become } from '../transport/transport.js';
import type { Sourced } from './model.js';

// The Ansible connection variables hostctl understands, read from a host's resolved vars.
export interface HostConnection {
  connection: 'ssh' | 'local';
  address: string;
  port: number | undefined;
  user: string | undefined;
  privateKeyFile: string | undefined;
  knownHostsFile: string | undefined;
  become: Become | undefined;
  // ansible_ssh_timeout, in ms.
  connectTimeoutMs: number | undefined;
  // hostctl_ssh_keepalive_interval, in ms: how soon a dead link is noticed (3 missed = lost).
  keepaliveMs: number | undefined;
}

const yes = z.union([z.boolean(), z.enum(['yes', 'no', 'true', 'false', 'True', 'False'])]).transform((v) => v === true || v === 'yes' || v === 'true' || v === 'True');
const port = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]).pipe(z.number().min(1).max(65535));

const schema = {
  ansible_connection: z.enum(['ssh', 'local', 'smart', 'paramiko']).optional(),
  ansible_host: z.string().optional(),
  ansible_port: port.optional(),
  ansible_user: z.string().optional(),
  ansible_ssh_private_key_file: z.string().optional(),
  ansible_become: yes.optional(),
  ansible_become_user: z.string().optional(),
  ansible_become_password: z.union([z.string(), z.instanceof(Secret)]).optional(),
  hostctl_known_hosts_file: z.string().optional(),
  ansible_ssh_timeout: z.number().positive().optional(),
  hostctl_ssh_keepalive_interval: z.number().positive().optional(),
} as const;

const seconds = (s: number | undefined) => (s === undefined ? undefined : s * 1000);

export function connectionFromVars(host: string, vars: Map<string, Sourced>): HostConnection {
  const read = <K extends keyof typeof schema>(key: K): z.infer<(typeof schema)[K]> => {
    const entry = vars.get(key);
    // A vaulted ansible_port or ansible_become is a Secret holding a number or boolean.
    const parsed = schema[key].safeParse(typedSecretFor(schema[key], entry?.value));
    if (!parsed.success) {
      throw inputError(`${key} for host ${host}: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { where: `${entry?.source}: ${key}` });
    }
    return parsed.data as z.infer<(typeof schema)[K]>;
  };
  const connection = read('ansible_connection');
  const password = read('ansible_become_password');
  const become = read('ansible_become');
  return {
    connection: connection === 'local' ? 'local' : 'ssh',
    address: read('ansible_host') ?? host,
    port: read('ansible_port'),
    user: read('ansible_user'),
    privateKeyFile: read('ansible_ssh_private_key_file'),
    knownHostsFile: read('hostctl_known_hosts_file'),
    connectTimeoutMs: seconds(read('ansible_ssh_timeout')),
    keepaliveMs: seconds(read('hostctl_ssh_keepalive_interval')),
    become: become
      ? {
          user: read('ansible_become_user') ?? 'root',
          password: password === undefined ? undefined : isSecret(password) ? password : new Secret(password, `ansible_become_password of ${host}`),
        }
      : undefined,
  };
}
