import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative } from 'node:path';
import { LineCounter, parseDocument, isMap, type Document, type Tags } from 'yaml';
import { inputError } from '../core/errors.js';
import { pyyamlTags } from './yaml11.js';
import { emptyGroup, type GroupEntry, type Inventory, type VarLayer } from './model.js';

// How the loader meets the vault: whole encrypted files and `!vault` values. Kept as an
// interface so the inventory does not care where passwords come from.
export interface VaultDecoder {
  customTags: Tags;
  // The plaintext of a vault-encrypted file, or undefined when the text is not a vault.
  decryptFile(text: string, file: string): string | undefined;
  // Note where each `!vault` value starts, so errors can give its line.
  locate(doc: Document, lines: LineCounter): void;
  // Replace vaulted values in a parsed tree (the value of top-level `key`) by Secrets.
  reveal(value: unknown, file: string, key: string): unknown;
  // Make every leaf (string, number, boolean) of a decrypted file's top-level `key` a Secret.
  secretLeaves(value: unknown, file: string, key: string): unknown;
}

const YAML_EXT = new Set(['.yml', '.yaml', '.json', '']);
const display = (path: string) => relative(process.cwd(), path) || path;

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

// Parses one YAML (or vault-encrypted YAML) file into a plain object.
export async function readYamlFile(path: string, vault: VaultDecoder): Promise<Record<string, unknown>> {
  const file = display(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw inputError(`cannot read ${file}`, { cause: error });
  }
  return parseVarsYaml(text, file, vault);
}

// Variables written as YAML (or vault-encrypted YAML), read as Ansible reads an inventory file;
// `file` names the text in errors and in each Secret's origin.
export function parseVarsYaml(text: string, file: string, vault: VaultDecoder): Record<string, unknown> {
  const plain = vault.decryptFile(text, file);
  const lines = new LineCounter();
  // YAML 1.1 as PyYAML reads Ansible's files: yes/no are booleans, 0644 is octal.
  const doc = parseDocument(plain ?? text, { version: '1.1', customTags: pyyamlTags(vault.customTags), uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw inputError(`invalid YAML: ${e.message.split('\n')[0]}`, { where: `${file}:${e.linePos?.[0].line ?? '?'}` });
  }
  if (doc.contents === null) return {};
  if (!isMap(doc.contents)) throw inputError('expected a mapping at the top level', { where: file });
  vault.locate(doc, lines);
  const data = doc.toJS() as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    out[key] = plain !== undefined ? vault.secretLeaves(value, file, key) : vault.reveal(value, file, key);
  }
  return out;
}

const layer = (vars: Record<string, unknown>, source: string): VarLayer =>
  new Map(Object.entries(vars).map(([k, value]) => [k, { value, source }]));

// group_vars/<name>.yml, group_vars/<name>/*.yml (any depth, sorted), as Ansible reads them.
async function varsFiles(dir: string, name: string, vault: VaultDecoder): Promise<VarLayer[]> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  const layers: VarLayer[] = [];
  for (const entry of entries.sort()) {
    const ext = extname(entry);
    const stem = YAML_EXT.has(ext) && ext !== '' ? basename(entry, ext) : entry;
    if (stem !== name) continue;
    const path = join(dir, entry);
    if (await isDir(path)) {
      for (const file of await walk(path)) layers.push(layer(await readYamlFile(file, vault), display(file)));
    } else if (YAML_EXT.has(ext)) {
      layers.push(layer(await readYamlFile(path, vault), display(path)));
    }
  }
  return layers;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path)));
    else if (YAML_EXT.has(extname(entry.name)) && !entry.name.startsWith('.')) out.push(path);
  }
  return out;
}

function group(inv: Inventory, name: string): GroupEntry {
  let g = inv.groups.get(name);
  if (!g) inv.groups.set(name, (g = emptyGroup(name)));
  return g;
}

const GROUP_KEYS = new Set(['hosts', 'vars', 'children']);

function addGroup(inv: Inventory, name: string, body: unknown, file: string, parent: string | undefined): void {
  const where = `${file}: ${name}`;
  const g = group(inv, name);
  if (parent && parent !== name) {
    g.parents.add(parent);
    group(inv, parent).children.add(name);
  }
  if (body === null || body === undefined) return;
  if (typeof body !== 'object' || Array.isArray(body)) throw inputError('a group must be a mapping with hosts, vars or children', { where });
  for (const [key, value] of Object.entries(body)) {
    if (!GROUP_KEYS.has(key)) {
      throw inputError(`unknown key "${key}" in group ${name}`, { where, hint: 'a group holds only hosts, vars and children' });
    }
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw inputError(`${key} must be a mapping`, { where: `${where}.${key}` });
    if (key === 'vars') g.inline.push(layer(value as Record<string, unknown>, file));
    if (key === 'children') for (const [child, childBody] of Object.entries(value)) addGroup(inv, child, childBody, file, name);
    if (key === 'hosts') {
      for (const [hostName, hostVars] of Object.entries(value)) {
        let host = inv.hosts.get(hostName);
        if (!host) inv.hosts.set(hostName, (host = { name: hostName, inline: [], files: [] }));
        g.hosts.add(hostName);
        if (hostVars && typeof hostVars === 'object') host.inline.push(layer(hostVars as Record<string, unknown>, file));
        else if (hostVars !== null && hostVars !== undefined) throw inputError(`host ${hostName} must map to its variables`, { where: `${where}.hosts.${hostName}` });
      }
    }
  }
}

// Loads Ansible YAML inventories (files or directories) with their group_vars/host_vars.
export async function loadInventory(sources: string[], vault: VaultDecoder): Promise<Inventory> {
  const inv: Inventory = { sources, hosts: new Map(), groups: new Map() };
  group(inv, 'all');
  const varDirs: string[] = [];
  for (const source of sources) {
    const st = await stat(source).catch(() => undefined);
    if (!st) throw inputError(`inventory ${source} does not exist`, { hint: 'pass -i with an inventory file or directory' });
    const files = st.isDirectory()
      ? (await readdir(source)).filter((f) => ['.yml', '.yaml'].includes(extname(f))).sort().map((f) => join(source, f))
      : [source];
    if (!st.isDirectory() && !['.yml', '.yaml', '.json'].includes(extname(source))) {
      throw inputError(`inventory ${source} is not YAML`, { hint: 'hostctl reads YAML inventories (convert INI with `ansible-inventory -i FILE --list -y`)' });
    }
    for (const file of files) {
      const data = await readYamlFile(file, vault);
      for (const [name, body] of Object.entries(data)) addGroup(inv, name, body, display(file), name === 'all' ? undefined : 'all');
    }
    varDirs.push(st.isDirectory() ? source : dirname(source));
  }
  // Every group hangs below "all"; hosts in no other group are "ungrouped", as in Ansible.
  for (const g of inv.groups.values()) if (g.name !== 'all' && g.parents.size === 0) addGroup(inv, g.name, null, '', 'all');
  const grouped = new Set([...inv.groups.values()].filter((g) => g.name !== 'all').flatMap((g) => [...g.hosts]));
  for (const host of inv.hosts.keys()) if (!grouped.has(host)) addGroup(inv, 'ungrouped', { hosts: { [host]: null } }, '', 'all');
  for (const dir of varDirs) {
    for (const g of inv.groups.values()) g.files.push(...(await varsFiles(join(dir, 'group_vars'), g.name, vault)));
    for (const h of inv.hosts.values()) h.files.push(...(await varsFiles(join(dir, 'host_vars'), h.name, vault)));
  }
  return inv;
}
