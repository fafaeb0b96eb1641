import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { inputError } from '../core/errors.js';

// What a caller may ask for; everything has a default so `hostctl lab up` alone works.
export interface LabOptions {
  count?: number;
  names?: string[];
  subnet?: string;
  bridge?: string;
  cacheDir?: string;
  stateDir?: string;
  // Progress lines ("building rootfs", "lab1 ssh ready"); silent when absent.
  log?: (line: string) => void;
}

export interface TargetConfig {
  name: string;
  address: string;
  mac: string;
  // "<bridge>.<name>": two labs can both have a "lab1", and as bridge names hold no "." the
  // bridge a namespace belongs to is never ambiguous (hlbr0 vs hlbr0-x).
  netns: string;
  hostVeth: string;
}

// The resolved, serialisable description of one lab; saved in <state>/lab.json so that
// down/status/ssh need nothing but --state.
export interface LabConfig {
  stateDir: string;
  cacheDir: string;
  bridge: string;
  subnet: string;
  prefix: number;
  bridgeAddress: string;
  targets: TargetConfig[];
}

export const defaults = {
  count: 1,
  subnet: '10.200.0.0/24',
  bridge: 'hlbr0',
  cacheDir: '/var/cache/hostctl-lab',
  stateDir: '.lab',
} as const;

// A Linux bridge takes at most 1024 ports; what the host can hold is checked by `up`
// against its limits (inotify, files, tasks, memory), not guessed here.
export const maxTargets = 1000;

const NAME = /^[a-z][a-z0-9-]{0,30}$/;
const BRIDGE = /^[A-Za-z][A-Za-z0-9_-]{0,14}$/;

export function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

export const formatIPv4 = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

// A fixed MAC per address: re-creating a target on the same IP otherwise leaves the peers
// with ~8 s of stale ARP. 02: locally administered, 68 ("h") marks the lab.
export function macFor(address: string): string {
  const n = parseIPv4(address) ?? 0;
  return ['02', '68', ...[24, 16, 8, 0].map((s) => (Math.floor(n / 2 ** s) % 256).toString(16).padStart(2, '0'))].join(':');
}

function subnetOf(text: string): { network: number; prefix: number } {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  const network = m ? parseIPv4(m[1]!) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (network === undefined || !(prefix >= 8 && prefix <= 29)) {
    throw inputError(`bad --subnet ${JSON.stringify(text)}`, { hint: 'give an IPv4 network with a prefix of /8 to /29, e.g. 10.200.0.0/24' });
  }
  const size = 2 ** (32 - prefix);
  if (network % size !== 0) {
    throw inputError(`--subnet ${text} has host bits set`, { hint: `use ${formatIPv4(network - (network % size))}/${prefix}` });
  }
  return { network, prefix };
}

export function targetConfig(bridge: string, name: string, address: string): TargetConfig {
  // Interface names stop at 15 bytes: hash instead of concatenating bridge and name.
  const tag = createHash('sha256').update(`${bridge}/${name}`).digest('hex').slice(0, 10);
  return { name, address, mac: macFor(address), netns: `${bridge}.${name}`, hostVeth: `hl${tag}` };
}

export function targetNames(options: Pick<LabOptions, 'count' | 'names'>): string[] {
  if (options.names && options.names.length > 0) {
    if (options.count !== undefined && options.count !== options.names.length) {
      throw inputError(`--count ${options.count} but ${options.names.length} --names given`, { hint: 'give one of them, or make them agree' });
    }
    const seen = new Set<string>();
    for (const n of options.names) {
      if (!NAME.test(n)) throw inputError(`bad target name ${JSON.stringify(n)}`, { hint: 'lower-case letters, digits and "-", starting with a letter' });
      if (seen.has(n)) throw inputError(`target name ${n} given twice`);
      seen.add(n);
    }
    return [...options.names];
  }
  const count = options.count ?? defaults.count;
  if (!Number.isInteger(count) || count < 1 || count > maxTargets) {
    throw inputError(`bad --count ${count}`, { hint: `a whole number from 1 to ${maxTargets}` });
  }
  return Array.from({ length: count }, (_, i) => `lab${i + 1}`);
}

// Resolves options into a lab, keeping the addresses of targets an earlier `up` recorded so
// that growing a lab never renumbers the ones already running.
export function resolveConfig(options: LabOptions, recorded?: LabConfig): LabConfig {
  const bridge = options.bridge ?? recorded?.bridge ?? defaults.bridge;
  if (!BRIDGE.test(bridge)) throw inputError(`bad --bridge ${JSON.stringify(bridge)}`, { hint: 'at most 15 letters, digits, "-" or "_"' });
  const subnet = options.subnet ?? recorded?.subnet ?? defaults.subnet;
  const { network, prefix } = subnetOf(subnet);
  const cacheDir = resolve(options.cacheDir ?? recorded?.cacheDir ?? defaults.cacheDir);
  const stateDir = resolve(options.stateDir ?? defaults.stateDir);
  if (recorded && (recorded.bridge !== bridge || recorded.subnet !== subnet)) {
    throw inputError(`the lab in ${stateDir} uses bridge ${recorded.bridge} and subnet ${recorded.subnet}`, {
      hint: 'run `hostctl lab down` first, or give another --state for a second lab',
    });
  }
  const targets: TargetConfig[] = recorded ? recorded.targets.map((t) => ({ ...t })) : [];
  const used = new Set(targets.map((t) => t.address));
  const last = network + 2 ** (32 - prefix) - 2;
  let next = network + 2;
  for (const name of targetNames(options)) {
    if (targets.some((t) => t.name === name)) continue;
    while (used.has(formatIPv4(next))) next++;
    if (next > last) throw inputError(`subnet ${subnet} has no room for target ${name}`, { hint: 'use a larger --subnet' });
    const address = formatIPv4(next);
    used.add(address);
    targets.push(targetConfig(bridge, name, address));
  }
  return { stateDir, cacheDir, bridge, subnet, prefix, bridgeAddress: formatIPv4(network + 1), targets };
}
