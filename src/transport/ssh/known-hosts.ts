import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { wildcardMatch } from '../../core/glob.js';

// The OpenSSH known_hosts format (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): reading, matching
// and appending. The policy (what to do with a changed or unknown key) lives in host-key.ts.

export interface KnownHostEntry {
  file: string;
  // 1-based, as `ssh-keygen -F` and OpenSSH's warnings count.
  line: number;
  marker: 'revoked' | 'cert-authority' | undefined;
  // The host field as written: a comma-separated pattern list or one `|1|salt|hash`.
  hosts: string;
  keyType: string;
  key: Buffer;
}

// The name under which OpenSSH files a host: bare on port 22, `[host]:port` otherwise.
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const raw = (lines[i] ?? '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else continue; // unknown marker: OpenSSH skips the line too
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64) continue;
    const key = Buffer.from(b64, 'base64');
    // A damaged line must not match anything; its blob names its own type.
    if (key.length === 0 || blobKeyType(key) !== keyType) continue;
    entries.push({ file, line: i + 1, marker, hosts, keyType, key });
  }
  return entries;
}

// Every readable file's entries, in order; a missing file is simply empty, as for OpenSSH.
export async function readKnownHosts(files: readonly string[]): Promise<KnownHostEntry[]> {
  const all: KnownHostEntry[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    all.push(...parseKnownHosts(text, file));
  }
  return all;
}

// Does a host field match `name` (already in knownHostName form)? Hashed fields compare
// HMAC-SHA1(salt, name); pattern lists follow OpenSSH: `*` and `?` wildcards, and one
// matching `!pattern` vetoes the whole line.
export function hostFieldMatches(hosts: string, name: string): boolean {
  const wanted = name.toLowerCase();
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(wanted).digest();
    return mac.equals(Buffer.from(hash, 'base64'));
  }
  let found = false;
  for (const pattern of hosts.toLowerCase().split(',')) {
    const negated = pattern.startsWith('!');
    if (wildcardMatch(negated ? pattern.slice(1) : pattern, wanted)) {
      if (negated) return false;
      found = true;
    }
  }
  return found;
}

// The key type a wire-format public key blob announces (its first SSH string).
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return undefined;
  return blob.subarray(4, 4 + len).toString('latin1');
}

// OpenSSH's fingerprint: SHA256 of the blob, base64 without padding.
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

// "ED25519", "ECDSA", "RSA": how OpenSSH names a key type in its messages.
export function keyTypeLabel(keyType: string): string {
  if (keyType === 'ssh-ed25519') return 'ED25519';
  if (keyType.startsWith('ecdsa-')) return 'ECDSA';
  if (keyType === 'ssh-rsa') return 'RSA';
  if (keyType === 'ssh-dss') return 'DSA';
  return keyType;
}

export function formatKnownHostLine(name: string, blob: Buffer, hashed: boolean): string {
  const type = blobKeyType(blob) ?? 'unknown';
  let hostField = name.toLowerCase();
  if (hashed) {
    const salt = randomBytes(20);
    const mac = createHmac('sha1', salt).update(hostField).digest();
    hostField = `|1|${salt.toString('base64')}|${mac.toString('base64')}`;
  }
  return `${hostField} ${type} ${blob.toString('base64')}`;
}

// Appends one line, creating the directory (0700, like ~/.ssh) and the file (0600) when
// missing, and repairing a missing final newline so the new entry stays on its own line.
// A single append(2) of the whole line keeps concurrent writers from interleaving.
export async function appendKnownHost(file: string, name: string, blob: Buffer, hashed: boolean): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const current = await readFile(file);
    if (current.length > 0 && current[current.length - 1] !== 0x0a) prefix = '\n';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await appendFile(file, `${prefix}${formatKnownHostLine(name, blob, hashed)}\n`, { mode: 0o600 });
}

// ssh2's host key algorithms, best first (its defaults on Node 20).
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;
export type HostKeyAlgorithm = (typeof HOST_KEY_ALGORITHMS)[number];

// Like OpenSSH, ask the server first for the key types we already know for it: a server
// holding ed25519 and RSA keys, recorded by RSA only, must not look "unknown" because
// ed25519 was negotiated.
export function preferredHostKeyAlgorithms(knownTypes: ReadonlySet<string>): HostKeyAlgorithm[] {
  const known = (algo: HostKeyAlgorithm) => knownTypes.has(algo.startsWith('rsa-sha2-') ? 'ssh-rsa' : algo);
  return [...HOST_KEY_ALGORITHMS.filter(known), ...HOST_KEY_ALGORITHMS.filter((a) => !known(a))];
}
