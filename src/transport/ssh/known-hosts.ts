import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
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

// A file as last read: its entries, and those whose host field is a plain list of names (no
// wildcard, negation or hash) filed under each name. A run against N hosts reads the same
// known_hosts N times: parsed once and looked up by name, a handshake costs O(1) instead of
// O(N) in the file's size (1,000 hosts: seconds of CPU otherwise).
interface ParsedFile {
  entries: KnownHostEntry[];
  byName: Map<string, KnownHostEntry[]>;
  // Hashed, wildcard and negated fields: matched against every name.
  rest: KnownHostEntry[];
}
// The parse of each file by its stamp; a promise, so that the handshakes of a run that all
// start at once share one read instead of racing to parse the file each.
const parsed = new Map<string, { stamp: string; file: Promise<ParsedFile | undefined> }>();

async function parsedFile(file: string): Promise<ParsedFile | undefined> {
  let stamp: string;
  try {
    const s = await stat(file);
    // An append (accept-new, another process) changes the size; an edit, the mtime or inode.
    stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const cached = parsed.get(file);
  if (cached?.stamp === stamp) return cached.file;
  const fresh = parseFile(file);
  parsed.set(file, { stamp, file: fresh });
  // A failed read is not kept: the next handshake tries again.
  fresh.catch(() => parsed.delete(file));
  return fresh;
}

async function parseFile(file: string): Promise<ParsedFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const entries = parseKnownHosts(text, file);
  const byName = new Map<string, KnownHostEntry[]>();
  const rest: KnownHostEntry[] = [];
  for (const entry of entries) {
    const names = entry.hosts.toLowerCase().split(',');
    if (entry.hosts.startsWith('|') || names.some((n) => /[*?]/.test(n) || n.startsWith('!'))) {
      rest.push(entry);
      continue;
    }
    for (const name of new Set(names)) {
      const list = byName.get(name);
      if (list) list.push(entry);
      else byName.set(name, [entry]);
    }
  }
  return { entries, byName, rest };
}

// Every readable file's entries, in order; a missing file is simply empty, as for OpenSSH.
// With `names`, only the entries that may match one of them (still to be matched with
// hostFieldMatches), in the same order.
export async function readKnownHosts(files: readonly string[], names?: readonly string[]): Promise<KnownHostEntry[]> {
  const all: KnownHostEntry[] = [];
  for (const file of files) {
    const f = await parsedFile(file);
    if (!f) continue;
    if (!names) {
      all.push(...f.entries);
      continue;
    }
    const some = new Set(f.rest);
    for (const name of names) for (const e of f.byName.get(name.toLowerCase()) ?? []) some.add(e);
    all.push(...[...some].sort((a, b) => a.line - b.line));
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
    const bare = negated ? pattern.slice(1) : pattern;
    if (bare === wanted || (/[*?]/.test(bare) && wildcardMatch(bare, wanted))) {
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
