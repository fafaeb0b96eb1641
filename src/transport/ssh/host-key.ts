import { unreachableError } from '../../core/errors.js';
import { quote } from '../quote.js';
import {
  appendKnownHost,
  blobKeyType,
  fingerprint,
  hostFieldMatches,
  keyTypeLabel,
  type KnownHostEntry,
} from './known-hosts.js';
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
}

export interface HostIdentity {
  // The inventory name, for messages.
  label: string;
  // Every name the host may be filed under, in known_hosts form (`[h]:port` off port 22):
  // the HostName first (the one a new key is recorded under), then the alias and the address.
  names: readonly string[];
}

export type HostKeyJudgement =
  | { kind: 'known'; entry: KnownHostEntry }
  | { kind: 'revoked'; entry: KnownHostEntry }
  | { kind: 'changed'; entry: KnownHostEntry; name: string }
  | { kind: 'other-types'; types: string[] }
  | { kind: 'unknown' };

// Pure: what the known_hosts entries say about `key` for these names. A revoked key loses
// over everything; a matching key wins over a stale entry under another of the host's names.
export function judgeHostKey(key: Buffer, entries: readonly KnownHostEntry[], names: readonly string[]): HostKeyJudgement {
  const type = blobKeyType(key);
  const relevant: Array<{ entry: KnownHostEntry; name: string }> = [];
  for (const entry of entries) {
    if (entry.marker === 'cert-authority') continue; // host certificates are not supported
    const name = names.find((n) => hostFieldMatches(entry.hosts, n));
    if (name !== undefined) relevant.push({ entry, name });
  }
  const revoked = relevant.find(({ entry }) => entry.marker === 'revoked' && entry.key.equals(key));
  if (revoked) return { kind: 'revoked', entry: revoked.entry };
  const plain = relevant.filter(({ entry }) => entry.marker === undefined);
  const same = plain.find(({ entry }) => entry.key.equals(key));
  if (same) return { kind: 'known', entry: same.entry };
  const changed = plain.find(({ entry }) => entry.keyType === type);
  if (changed) return { kind: 'changed', entry: changed.entry, name: changed.name };
  if (plain.length > 0) return { kind: 'other-types', types: [...new Set(plain.map(({ entry }) => entry.keyType))] };
  return { kind: 'unknown' };
}

// Resolves when the key may be used, throws an unreachable error (exit 4) saying why not
// and what to do otherwise. Never retried: a refused key is a decision, not a glitch.
export async function verifyHostKey(
  key: Buffer,
  entries: readonly KnownHostEntry[],
  host: HostIdentity,
  policy: HostKeyPolicy,
): Promise<void> {
  const judgement = judgeHostKey(key, entries, host.names);
  const type = keyTypeLabel(blobKeyType(key) ?? 'unknown');
  const fp = fingerprint(key);
  const recordName = host.names[0] ?? host.label;
  const shown = `${host.label}${recordName !== host.label ? ` (${recordName})` : ''}`;

  switch (judgement.kind) {
    case 'known':
      return;
    case 'revoked':
      throw unreachableError(
        `host key for ${shown} is REVOKED: the server offered ${type} key ${fp}, marked @revoked at ${judgement.entry.file}:${judgement.entry.line}`,
        { hint: 'the key was withdrawn on purpose; ask whoever manages the host which key it should have' },
      );
    case 'changed': {
      const { entry, name } = judgement;
      throw unreachableError(
        `host key for ${shown} has CHANGED: the server offered ${type} key ${fp}, but ${entry.file}:${entry.line} holds another ${keyTypeLabel(entry.keyType)} key (${fingerprint(entry.key)}) for ${name}. Someone could be impersonating the host, or it was reinstalled`,
        {
          hint: `if the change is expected, remove the old key with \`ssh-keygen -R ${quote(name)} -f ${quote(entry.file)}\` and connect again`,
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
        await appendKnownHost(policy.writeFile, recordName, key, policy.hashNew);
        return;
      }
      if (policy.interactive) {
        const ok = await policy.prompter.confirm(
          `The authenticity of host '${shown}' can't be established${also}.\n` +
            `${type} key fingerprint is ${fp}.\n` +
            'Are you sure you want to continue connecting (yes/no)? ',
        );
        if (ok) {
          await appendKnownHost(policy.writeFile, recordName, key, policy.hashNew);
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
