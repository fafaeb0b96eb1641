import { unreachableError } from '../../core/errors.js';
import { quote } from '../quote.js';
import {
  appendKnownHost,
  blobKeyType,
  fingerprint,
  hostFieldMatches,
  keyTypeLabel,
  knownHostName,
  type KnownHostEntry,
} from './known-hosts.js';
import type { Endpoint } from './config.js';
import type { Prompter } from './prompt.js';

// What to do with the key a server offers: OpenSSH's StrictHostKeyChecking, decided here
// because ssh2 itself accepts any key.

export interface HostKeyPolicy {
  // Files read for known keys, in order (the user's file, then the system-wide one).
  knownHostsFiles: readonly string[];
  // Where an accepted new key is recorded.
  writeFile: string;
  // Record and trust a key for a host that has no key on file (OpenSSH's accept-new).
  acceptNew: boolean;
  // A human can be asked (stdin is a TTY).
  interactive: boolean;
  // Record new keys hashed (HashKnownHosts yes) instead of as plain names.
  hashNew: boolean;
  prompter: Prompter;
  // Where a warning goes (CheckHostIP); a warning never decides anything.
  warn: (message: string) => void;
}

// Who the server must prove to be. OpenSSH knows a host by ONE name: its HostKeyAlias, else
// the HostName connected to. The inventory name and the address are not identities: a key
// filed under either must never vouch for a host that another key is recorded for.
export interface HostIdentity {
  // The inventory name (or ProxyJump entry), for messages.
  label: string;
  // HostName and port connected to, for messages.
  host: string;
  port: number;
  // The name known_hosts files it under (hostKeyName); a new key is recorded under it.
  name: string;
  // The address connected to, in known_hosts form, when CheckHostIP applies: only ever warned about.
  address?: string | undefined;
}

// OpenSSH's lookup name: HostKeyAlias as written, else the HostName, `[h]:port` off port 22.
export function hostKeyName(endpoint: Pick<Endpoint, 'host' | 'port' | 'hostKeyAlias'>): string {
  return endpoint.hostKeyAlias !== undefined ? endpoint.hostKeyAlias.toLowerCase() : knownHostName(endpoint.host, endpoint.port);
}

export type HostKeyJudgement =
  | { kind: 'known'; entry: KnownHostEntry }
  | { kind: 'revoked'; entry: KnownHostEntry }
  | { kind: 'changed'; entry: KnownHostEntry }
  | { kind: 'cert-authority'; entry: KnownHostEntry }
  | { kind: 'other-types'; types: string[] }
  | { kind: 'unknown' };

// Pure: what the known_hosts entries filed under `name` say about `key`. A revoked key loses
// over everything. A @cert-authority line cannot vouch for the key (ssh2 has no host
// certificates) but says the host is not new: it is never silently passed over.
export function judgeHostKey(key: Buffer, entries: readonly KnownHostEntry[], name: string): HostKeyJudgement {
  const type = blobKeyType(key);
  const filed = entries.filter((entry) => hostFieldMatches(entry.hosts, name));
  const revoked = filed.find((entry) => entry.marker === 'revoked' && entry.key.equals(key));
  if (revoked) return { kind: 'revoked', entry: revoked };
  const plain = filed.filter((entry) => entry.marker === undefined);
  const same = plain.find((entry) => entry.key.equals(key));
  if (same) return { kind: 'known', entry: same };
  const changed = plain.find((entry) => entry.keyType === type);
  if (changed) return { kind: 'changed', entry: changed };
  const authority = filed.find((entry) => entry.marker === 'cert-authority');
  if (authority) return { kind: 'cert-authority', entry: authority };
  if (plain.length > 0) return { kind: 'other-types', types: [...new Set(plain.map((entry) => entry.keyType))] };
  return { kind: 'unknown' };
}

// Pure, OpenSSH's CheckHostIP: a plain entry under the address that holds another key of the
// offered type, unless one there holds the offered key itself.
export function addressKeyMismatch(key: Buffer, entries: readonly KnownHostEntry[], address: string): KnownHostEntry | undefined {
  const type = blobKeyType(key);
  const same = entries.filter((e) => e.marker === undefined && e.keyType === type && hostFieldMatches(e.hosts, address));
  return same.some((e) => e.key.equals(key)) ? undefined : same[0];
}

// Resolves when the key may be used, throws an unreachable error (exit 4) saying why not
// and what to do otherwise. Never retried: a refused key is a decision, not a glitch.
export async function verifyHostKey(
  key: Buffer,
  entries: readonly KnownHostEntry[],
  host: HostIdentity,
  policy: HostKeyPolicy,
): Promise<void> {
  const type = keyTypeLabel(blobKeyType(key) ?? 'unknown');
  const fp = fingerprint(key);
  const { name, address } = host;
  const shown = `${host.label}${name !== host.label ? ` (${name})` : ''}`;

  const stale = address !== undefined ? addressKeyMismatch(key, entries, address) : undefined;
  if (stale && address !== undefined) {
    policy.warn(
      `WARNING: the ${type} host key of ${shown} (${fp}) differs from the key ${stale.file}:${stale.line} holds for its IP address ${address} (${fingerprint(stale.key)}); ` +
        `only ${name} decides whether the host is trusted. If the address now belongs to this host, remove the stale line with \`ssh-keygen -R ${quote(address)} -f ${quote(stale.file)}\``,
    );
  }

  const judgement = judgeHostKey(key, entries, name);
  switch (judgement.kind) {
    case 'known':
      return;
    case 'revoked':
      throw unreachableError(
        `host key for ${shown} is REVOKED: the server offered ${type} key ${fp}, marked @revoked at ${judgement.entry.file}:${judgement.entry.line}`,
        { hint: 'the key was withdrawn on purpose; ask whoever manages the host which key it should have' },
      );
    case 'changed': {
      const { entry } = judgement;
      throw unreachableError(
        `host key for ${shown} has CHANGED: the server offered ${type} key ${fp}, but ${entry.file}:${entry.line} holds another ${keyTypeLabel(entry.keyType)} key (${fingerprint(entry.key)}) for ${name}. Someone could be impersonating the host, or it was reinstalled`,
        {
          hint: `if the change is expected, remove the old key with \`ssh-keygen -R ${quote(name)} -f ${quote(entry.file)}\` and connect again`,
        },
      );
    }
    case 'cert-authority': {
      const { entry } = judgement;
      throw unreachableError(
        `host key for ${shown} cannot be verified: only the @cert-authority line ${entry.file}:${entry.line} vouches for ${name}, and hostctl cannot check host certificates (the server offered ${type} key ${fp})`,
        {
          hint: `add the host's own key for ${name} to ${policy.writeFile}: \`ssh-keyscan -p ${host.port} ${quote(host.host)} | ssh-keygen -lf -\` shows its fingerprints; when the host's owner confirms one, add that key from ssh-keyscan's output as a line for ${name}`,
        },
      );
    }
    case 'other-types':
    case 'unknown': {
      const also =
        judgement.kind === 'other-types'
          ? ` (known_hosts holds only ${judgement.types.map(keyTypeLabel).join(', ')} keys for it)`
          : '';
      // accept-new is for hosts seen for the first time; a host known under another key
      // type is not that, so it needs a human.
      if (policy.acceptNew && judgement.kind === 'unknown') {
        await appendKnownHost(policy.writeFile, name, key, policy.hashNew);
        return;
      }
      if (policy.interactive) {
        const ok = await policy.prompter.confirm(
          `The authenticity of host '${shown}' can't be established${also}.\n` +
            `${type} key fingerprint is ${fp}.\n` +
            'Are you sure you want to continue connecting (yes/no)? ',
        );
        if (ok) {
          await appendKnownHost(policy.writeFile, name, key, policy.hashNew);
          return;
        }
        throw unreachableError(`host key for ${shown} was not accepted (${type} ${fp})`);
      }
      throw unreachableError(
        `host key for ${shown} is not known${also}: the server offered ${type} key ${fp}, and no known_hosts entry (${policy.knownHostsFiles.join(', ')}) matches it`,
        {
          hint:
            judgement.kind === 'unknown'
              ? `check the fingerprint with the host's owner, then rerun with --accept-new-host-keys to record it in ${policy.writeFile} (or run on a terminal to be asked)`
              : `check the fingerprint with the host's owner, then run on a terminal to be asked, or add the key to ${policy.writeFile}`,
        },
      );
    }
  }
}
