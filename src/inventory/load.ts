import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative } from 'node:path';
import { LineCounter, parseDocument, isMap, type Document, type Tags } from 'yaml';
import { HostctlError, inputError } from '../core/errors.js';
import { parseIni } from './ini.js';
import { pyyamlTags } from './yaml11.js';
import { groupEntry, hostEntry, varLayer, type Inventory, type VarLayer } from './model.js';

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

// The text of an inventory or vars file, decrypted when the whole file is a vault.
async function readText(path: string, vault: VaultDecoder): Promise<{ text: string; decrypted: boolean }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw inputError(`cannot read ${display(path)}`, { cause: error });
  }
  const plain = vault.decryptFile(text, display(path));
  return { text: plain ?? text, decrypted: plain !== undefined };
}

// YAML text holding a mapping (or nothing) as a plain object; the error says why it is not.
function parseYaml(text: string, decrypted: boolean, file: string, vault: VaultDecoder): Record<string, unknown> | HostctlError {
  const lines = new LineCounter();
  // YAML 1.1 as PyYAML reads Ansible's files: yes/no are booleans, 0644 is octal.
  const doc = parseDocument(text, { version: '1.1', customTags: pyyamlTags(vault.customTags), uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    return inputError(`invalid YAML: ${e.message.split('\n')[0]}`, { where: `${file}:${e.linePos?.[0].line ?? '?'}` });
  }
  if (doc.contents === null) return {};
  if (!isMap(doc.contents)) return inputError('expected a mapping at the top level', { where: file });
  vault.locate(doc, lines);
  const data = doc.toJS() as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    out[key] = decrypted ? vault.secretLeaves(value, file, key) : vault.reveal(value, file, key);
  }
  return out;
}

// Parses one YAML (or vault-encrypted YAML) file into a plain object.
export async function readYamlFile(path: string, vault: VaultDecoder): Promise<Record<string, unknown>> {
  const { text, decrypted } = await readText(path, vault);
  const data = parseYaml(text, decrypted, display(path), vault);
  if (data instanceof HostctlError) throw data;
  return data;
}

// Variables written as YAML (or vault-encrypted YAML) that come from elsewhere than a file of
// the inventory (`-e`), read exactly as an inventory file; `file` names the text in errors and
// in each Secret's origin.
export function parseVarsYaml(text: string, file: string, vault: VaultDecoder): Record<string, unknown> {
  const plain = vault.decryptFile(text, file);
  const data = parseYaml(plain ?? text, plain !== undefined, file, vault);
  if (data instanceof HostctlError) throw data;
  return data;
}


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
      for (const file of await walk(path)) layers.push(varLayer(await readYamlFile(file, vault), display(file)));
    } else if (YAML_EXT.has(ext)) {
      layers.push(varLayer(await readYamlFile(path, vault), display(path)));
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

const GROUP_KEYS = new Set(['hosts', 'vars', 'children']);

function addGroup(inv: Inventory, name: string, body: unknown, file: string, parent: string | undefined): void {
  const where = `${file}: ${name}`;
  const g = groupEntry(inv, name);
  if (parent && parent !== name) {
    g.parents.add(parent);
    groupEntry(inv, parent).children.add(name);
  }
  if (body === null || body === undefined) return;
  if (typeof body !== 'object' || Array.isArray(body)) throw inputError('a group must be a mapping with hosts, vars or children', { where });
  for (const [key, value] of Object.entries(body)) {
    if (!GROUP_KEYS.has(key)) {
      throw inputError(`unknown key "${key}" in group ${name}`, { where, hint: 'a group holds only hosts, vars and children' });
    }
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw inputError(`${key} must be a mapping`, { where: `${where}.${key}` });
    if (key === 'vars') g.inline.push(varLayer(value as Record<string, unknown>, file));
    if (key === 'children') for (const [child, childBody] of Object.entries(value)) addGroup(inv, child, childBody, file, name);
    if (key === 'hosts') {
      for (const [hostName, hostVars] of Object.entries(value)) {
        const host = hostEntry(inv, hostName);
        g.hosts.add(hostName);
        if (hostVars && typeof hostVars === 'object') host.inline.push(varLayer(hostVars as Record<string, unknown>, file));
        else if (hostVars !== null && hostVars !== undefined) throw inputError(`host ${hostName} must map to its variables`, { where: `${where}.hosts.${hostName}` });
      }
    }
  }
}

const YAML_FILES = new Set(['.yml', '.yaml', '.json']);
// What Ansible skips in an inventory directory: hidden names, the vars directories and its
// INVENTORY_IGNORE_EXTS (so a hosts.ini inside a directory is not read, by Ansible either).
const IGNORED = /^\.|^host_vars$|^group_vars$|^vars_plugins$|(?:\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.ini|\.cfg|\.retry)$/;
const CONVERT = 'convert it with `ansible-inventory -i FILE --list -y > hosts.yml`';

async function inventoryFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).filter((e) => !IGNORED.test(e.name)).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(dir, entry.name);
    out.push(...(entry.isDirectory() ? await inventoryFiles(path) : [path]));
  }
  return out;
}

// One inventory file, recognised as Ansible does: .yml/.yaml/.json are YAML; a file with no
// extension is YAML when it reads as a YAML mapping, INI otherwise; any other name is INI.
async function loadFile(inv: Inventory, path: string, vault: VaultDecoder): Promise<void> {
  const file = display(path);
  const ext = extname(path);
  if (ext === '.toml') throw inputError(`inventory ${file} is TOML, which hostctl does not read`, { hint: CONVERT });
  const { text, decrypted } = await readText(path, vault);
  if (text.startsWith('#!')) throw inputError(`inventory ${file} is a script, which hostctl does not run`, { hint: CONVERT });
  const yaml = YAML_FILES.has(ext) || ext === '' ? parseYaml(text, decrypted, file, vault) : undefined;
  if (YAML_FILES.has(ext) && yaml instanceof HostctlError) throw yaml;
  if (yaml && !(yaml instanceof HostctlError)) {
    for (const [name, body] of Object.entries(yaml)) addGroup(inv, name, body, file, name === 'all' ? undefined : 'all');
    return;
  }
  try {
    parseIni(text, file, inv, (value, key) => (decrypted ? vault.secretLeaves(value, file, key) : value));
  } catch (error) {
    // A file with no extension may have been meant as YAML: say why it was read as INI.
    if (yaml && error instanceof HostctlError) {
      throw inputError(error.message, { where: error.where ?? file, hint: `${file} was read as INI because it is not a YAML mapping (${yaml.where}: ${yaml.message})` });
    }
    throw error;
  }
}

// Loads Ansible inventories (YAML and INI files, or directories of them) with their
// group_vars/host_vars.
export async function loadInventory(sources: string[], vault: VaultDecoder): Promise<Inventory> {
  const inv: Inventory = { sources, hosts: new Map(), groups: new Map() };
  groupEntry(inv, 'all');
  const varDirs: string[] = [];
  for (const source of sources) {
    const st = await stat(source).catch(() => undefined);
    if (!st) throw inputError(`inventory ${source} does not exist`, { hint: 'pass -i with an inventory file or directory' });
    for (const file of st.isDirectory() ? await inventoryFiles(source) : [source]) await loadFile(inv, file, vault);
    varDirs.push(st.isDirectory() ? source : dirname(source));
  }
  // Every group hangs below "all"; hosts in no other group are "ungrouped" (and only those),
  // as in Ansible.
  for (const g of inv.groups.values()) if (g.name !== 'all' && g.parents.size === 0) addGroup(inv, g.name, null, '', 'all');
  const grouped = new Set([...inv.groups.values()].filter((g) => g.name !== 'all' && g.name !== 'ungrouped').flatMap((g) => [...g.hosts]));
  for (const host of inv.hosts.keys()) {
    if (!grouped.has(host)) addGroup(inv, 'ungrouped', { hosts: { [host]: null } }, '', 'all');
    else inv.groups.get('ungrouped')?.hosts.delete(host);
  }
  for (const dir of varDirs) {
    for (const g of inv.groups.values()) g.files.push(...(await varsFiles(join(dir, 'group_vars'), g.name, vault)));
    for (const h of inv.hosts.values()) h.files.push(...(await varsFiles(join(dir, 'host_vars'), h.name, vault)));
  }
  return inv;
}
