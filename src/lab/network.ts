import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { inputError } from '../core/errors.js';
import { exec } from './exec.js';
import { macFor, type LabConfig, type TargetConfig } from './options.js';

export const relayPort = 3142;

const linkExists = async (name: string) => (await exec('ip', ['link', 'show', 'dev', name], { allowFail: true })).code === 0;
export const netnsExists = (netns: string) => existsSync(`/run/netns/${netns}`);

interface IpLink {
  ifname: string;
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

// The host end: one bridge per lab carrying the gateway/relay address. An existing bridge
// is reused when it has our address; anything else by that name is someone else's.
export async function ensureBridge(config: LabConfig): Promise<void> {
  const { bridge, bridgeAddress, prefix } = config;
  if (!(await linkExists(bridge))) {
    await exec('ip', ['link', 'add', 'name', bridge, 'address', macFor(bridgeAddress), 'type', 'bridge']);
  }
  const [link] = JSON.parse((await exec('ip', ['-j', '-d', 'addr', 'show', 'dev', bridge])).stdout) as IpLink[];
  if (link?.linkinfo?.info_kind !== 'bridge') {
    throw inputError(`${bridge} exists and is not a bridge`, { hint: 'pick another --bridge' });
  }
  const v4 = (link.addr_info ?? []).filter((a) => a.family === 'inet');
  if (!v4.some((a) => a.local === bridgeAddress && a.prefixlen === prefix)) {
    if (v4.length > 0) {
      throw inputError(`bridge ${bridge} already has ${v4.map((a) => `${a.local}/${a.prefixlen}`).join(', ')}`, {
        hint: `another lab owns it: pick another --bridge, or \`hostctl lab down\` that lab`,
      });
    }
    await exec('ip', ['addr', 'add', `${bridgeAddress}/${prefix}`, 'dev', bridge], {
      hint: `is ${config.subnet} already routed on this host? pick another --subnet`,
    });
  }
  await exec('ip', ['link', 'set', bridge, 'up']);
}

export const firewallTable = (bridge: string) => `hostctl_lab_${bridge.replace(/[^A-Za-z0-9_]/g, '_')}`;

// The targets may talk to the relay port on the bridge address and to each other (bridged,
// never routed); everything else from the bridge is refused at once (fails fast in tests): no host services, no routing
// out even if someone turns ip_forward on.
export async function ensureFirewall(config: LabConfig): Promise<void> {
  const t = firewallTable(config.bridge);
  const br = JSON.stringify(config.bridge);
  const ruleset = `table inet ${t} {}
delete table inet ${t}
table inet ${t} {
  chain input {
    type filter hook input priority filter - 5; policy accept;
    iifname ${br} ct state established,related accept
    iifname ${br} ip daddr ${config.bridgeAddress} tcp dport ${relayPort} accept
    iifname ${br} icmp type echo-request accept
    iifname ${br} reject with icmpx type admin-prohibited
  }
  chain forward {
    type filter hook forward priority filter - 5; policy accept;
    # br_netfilter (on here) shows bridged target-to-target frames to this hook as well.
    iifname ${br} oifname ${br} accept
    iifname ${br} reject with icmpx type admin-prohibited
    oifname ${br} drop
  }
}
`;
  await exec('nft', ['-f', '-'], { input: ruleset, hint: 'the host needs nftables (apt-get install nftables) and kernel nf_tables' });
}

export async function removeFirewall(bridge: string): Promise<void> {
  await exec('nft', ['delete', 'table', 'inet', firewallTable(bridge)], { allowFail: true });
}

export async function removeBridge(bridge: string): Promise<void> {
  if (await linkExists(bridge)) await exec('ip', ['link', 'del', 'dev', bridge]);
}

// One namespace per target, joined by nspawn with --network-namespace-path; the veth's far
// end is renamed eth0 inside and gets the target's fixed MAC, address and default route.
export async function ensureTargetNetwork(config: LabConfig, t: TargetConfig): Promise<void> {
  const complete =
    netnsExists(t.netns) &&
    (await linkExists(t.hostVeth)) &&
    (await exec('ip', ['-n', t.netns, 'link', 'show', 'dev', 'eth0'], { allowFail: true })).code === 0;
  if (complete) return;
  await removeTargetNetwork(t);
  const peer = `hp${t.hostVeth.slice(2)}`;
  await exec('ip', ['netns', 'add', t.netns]);
  await exec('ip', ['link', 'add', t.hostVeth, 'type', 'veth', 'peer', 'name', peer, 'netns', t.netns]);
  const inside = (...args: string[]) => exec('ip', ['-n', t.netns, ...args]);
  await inside('link', 'set', peer, 'name', 'eth0');
  await inside('link', 'set', 'eth0', 'address', t.mac);
  await inside('addr', 'add', `${t.address}/${config.prefix}`, 'dev', 'eth0');
  await inside('link', 'set', 'lo', 'up');
  await inside('link', 'set', 'eth0', 'up');
  await inside('route', 'add', 'default', 'via', config.bridgeAddress);
  await exec('ip', ['link', 'set', t.hostVeth, 'master', config.bridge]);
  await exec('ip', ['link', 'set', t.hostVeth, 'up']);
}

export async function removeTargetNetwork(t: Pick<TargetConfig, 'netns' | 'hostVeth'>): Promise<void> {
  // Deleting the namespace takes eth0 with it, and a veth pair dies with either end.
  if (netnsExists(t.netns)) await exec('ip', ['netns', 'del', t.netns]);
  if (await linkExists(t.hostVeth)) await exec('ip', ['link', 'del', 'dev', t.hostVeth], { allowFail: true });
}

// Namespaces named after this bridge that no recorded target claims: left by a lab whose
// state dir was lost. `down` removes them too.
export async function strayNamespaces(bridge: string): Promise<string[]> {
  if (!existsSync('/run/netns')) return [];
  return (await readdir('/run/netns')).filter((n) => n.startsWith(`${bridge}.`));
}
