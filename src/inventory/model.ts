// A variable with the file it came from, so an error can say where to fix it.
export interface Sourced {
  value: unknown;
  source: string;
}

export type VarLayer = Map<string, Sourced>;

export interface HostEntry {
  name: string;
  // Vars written under the host in an inventory file, in source order.
  inline: VarLayer[];
  // host_vars/<host>.yml or host_vars/<host>/*.yml.
  files: VarLayer[];
}

export interface GroupEntry {
  name: string;
  inline: VarLayer[];
  files: VarLayer[];
  hosts: Set<string>;
  children: Set<string>;
  parents: Set<string>;
}

export interface Inventory {
  // The sources given with -i, for messages.
  sources: string[];
  // Hosts in the order the inventory lists them.
  hosts: Map<string, HostEntry>;
  groups: Map<string, GroupEntry>;
}

export function emptyGroup(name: string): GroupEntry {
  return { name, inline: [], files: [], hosts: new Set(), children: new Set(), parents: new Set() };
}

export const varLayer = (vars: Record<string, unknown>, source: string): VarLayer =>
  new Map(Object.entries(vars).map(([k, value]) => [k, { value, source }]));

// The group or host of that name, created (empty) on first mention.
export function groupEntry(inv: Inventory, name: string): GroupEntry {
  let g = inv.groups.get(name);
  if (!g) inv.groups.set(name, (g = emptyGroup(name)));
  return g;
}

export function hostEntry(inv: Inventory, name: string): HostEntry {
  let h = inv.hosts.get(name);
  if (!h) inv.hosts.set(name, (h = { name, inline: [], files: [] }));
  return h;
}
