import { stringify } from 'yaml';
import type { LabConfig } from './options.js';
import { statePaths, writeFileAtomic } from './state.js';

// Ansible's YAML inventory shape, so the same file drives hostctl and, if need be, ansible.
export function inventoryYaml(config: LabConfig): string {
  const p = statePaths(config.stateDir);
  const hosts: Record<string, Record<string, string>> = {};
  const group: Record<string, Record<string, never>> = {};
  for (const t of config.targets) {
    hosts[t.name] = {
      ansible_host: t.address,
      ansible_user: 'root',
      ansible_ssh_private_key_file: p.key,
      hostctl_known_hosts_file: p.knownHosts,
    };
    group[t.name] = {};
  }
  return `# Written by \`hostctl lab up\`; rewritten on every up, removed by down.\n${stringify({
    all: { hosts, children: { lab: { hosts: group } } },
  })}`;
}

// One line per address and one per name, both the key read from the target's own rootfs
// before it booted: nothing is learnt on first use.
export function knownHostsText(entries: { name: string; address: string; key: string }[]): string {
  return entries.map((e) => `${e.address} ${e.key}\n${e.name} ${e.key}\n`).join('');
}

export async function writeInventory(config: LabConfig, keys: Map<string, string>): Promise<void> {
  const p = statePaths(config.stateDir);
  const entries = config.targets.flatMap((t) => {
    const key = keys.get(t.name);
    return key ? [{ name: t.name, address: t.address, key }] : [];
  });
  await writeFileAtomic(p.knownHosts, knownHostsText(entries));
  await writeFileAtomic(p.inventory, inventoryYaml(config));
}
