import { inputError } from '../core/errors.js';
import { Secret, holdsSecret, isSecret, revealAll } from '../core/secret.js';
import { firstLine } from '../core/text.js';
import type { Inventory, Sourced, VarLayer } from './model.js';

// A group's depth below "all" (its longest path), which orders group vars as Ansible does.
function depths(inv: Inventory): Map<string, number> {
  const depth = new Map<string, number>([['all', 0]]);
  const visit = (name: string, d: number, seen: Set<string>) => {
    if (seen.has(name)) return;
    if ((depth.get(name) ?? -1) < d) depth.set(name, d);
    for (const child of inv.groups.get(name)?.children ?? []) visit(child, d + 1, new Set([...seen, name]));
  };
  visit('all', 0, new Set());
  return depth;
}

export function hostGroups(inv: Inventory, host: string): string[] {
  const direct = [...inv.groups.values()].filter((g) => g.hosts.has(host)).map((g) => g.name);
  const out = new Set<string>(['all']);
  const up = (name: string) => {
    if (out.has(name) && name !== 'all') return;
    out.add(name);
    for (const p of inv.groups.get(name)?.parents ?? []) up(p);
  };
  direct.forEach(up);
  return [...out];
}

export interface ExtraLayers {
  // A role's defaults that refer to other variables (below everything else, as Ansible's
  // roles/<role>/defaults/main.yml), playbook vars (above the inventory) and -e extra vars
  // (above everything), each value with where it came from.
  defaults?: VarLayer;
  play?: Record<string, unknown>;
  playSource?: string;
  extra?: VarLayer;
}

// -e variables, each with the flag or file it came from. Those typed as key=value are text
// with no type of their own: the role's schema gives them one (see prepare).
export interface ExtraVars {
  vars: VarLayer;
  text: ReadonlySet<string>;
}

// The host's variables, each with the file it came from, in Ansible's precedence:
// role defaults < inventory-file group vars < group_vars/all < group_vars/<group> (parents before children)
// < inventory-file host vars < host_vars/<host> < play vars < extra vars.
export function resolveHostVars(inv: Inventory, host: string, extras: ExtraLayers = {}): Map<string, Sourced> {
  const depth = depths(inv);
  const groups = hostGroups(inv, host).sort((a, b) => (depth.get(a) ?? 0) - (depth.get(b) ?? 0) || a.localeCompare(b));
  const entry = inv.hosts.get(host);
  const layers: VarLayer[] = [
    ...groups.flatMap((g) => inv.groups.get(g)!.inline),
    ...inv.groups.get('all')!.files,
    ...groups.filter((g) => g !== 'all').flatMap((g) => inv.groups.get(g)!.files),
    ...(entry?.inline ?? []),
    ...(entry?.files ?? []),
  ];
  const merged = new Map<string, Sourced>(extras.defaults);
  for (const l of layers) for (const [k, v] of l) merged.set(k, v);
  for (const [k, value] of Object.entries(extras.play ?? {})) merged.set(k, { value, source: extras.playSource ?? 'playbook vars' });
  for (const [k, v] of extras.extra ?? []) merged.set(k, v);
  merged.set('inventory_hostname', { value: host, source: 'inventory' });
  merged.set('group_names', { value: groups.filter((g) => g !== 'all').sort(), source: 'inventory' });
  return interpolate(merged);
}

const REF = /\{\{\s*([\s\S]*?)\s*\}\}/g;
const PLAIN_REF = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/;
// What Jinja would read as a statement, a comment or an expression, once the references are out.
const OTHER_JINJA: [RegExp, string][] = [
  [/\{%[\s\S]*?(%\}|$)/, 'a Jinja statement'],
  [/\{#[\s\S]*?(#\}|$)/, 'a Jinja comment'],
  [/\{\{[\s\S]*$/, 'an unclosed Jinja expression'],
];
const TYPESCRIPT_WAY = "compute the value in the role's derive() (TypeScript), or write the plain value";

// The variables a value refers to with {{ name }} or {{ name.key }}: their first names.
export const referencedNames = (value: string): string[] => [...value.matchAll(REF)].map((m) => m[1]!.split('.')[0]!);

// Ansible inventories write `db_pass: "{{ vault_db_pass }}"`. hostctl resolves plain variable
// references (and dotted paths into mappings and lists); any other Jinja is an error, never
// literal text a host would receive.
function interpolate(vars: Map<string, Sourced>): Map<string, Sourced> {
  const done = new Map<string, unknown>();
  const resolving = new Set<string>();

  const lookup = (path: string, where: string): unknown => {
    const [head, ...rest] = path.split('.');
    if (!vars.has(head!)) throw inputError(`"{{ ${path} }}" refers to an undefined variable`, { where, hint: `define ${head}` });
    let value = resolveKey(head!);
    for (const [i, part] of rest.entries()) {
      // Own keys of a mapping, indexes of a list: never a prototype's (constructor, __proto__)
      // nor a list's length, which Jinja would not find either.
      const found = Array.isArray(value) ? /^\d+$/.test(part) && Number(part) < value.length : isMapping(value) && Object.hasOwn(value, part);
      if (!found) throw inputError(`"{{ ${path} }}": ${part} is not defined`, { where, hint: `${[head, ...rest.slice(0, i)].join('.')} has no key ${part}` });
      value = (value as Record<string, unknown>)[part];
    }
    return value;
  };

  const resolveValue = (value: unknown, where: string): unknown => {
    if (typeof value === 'string' && /\{[{%#]/.test(value)) {
      const refs = [...value.matchAll(REF)];
      for (const m of refs) {
        if (!PLAIN_REF.test(m[1]!)) {
          throw inputError(`"${m[0]}" is a Jinja expression; hostctl resolves only plain variable references like {{ name }}`, { where, hint: TYPESCRIPT_WAY });
        }
      }
      const rest = value.replace(REF, '');
      for (const [pattern, what] of OTHER_JINJA) {
        const m = pattern.exec(rest);
        if (m) throw inputError(`"${firstLine(m[0], 40)}" is ${what}; hostctl resolves only plain variable references like {{ name }}`, { where, hint: TYPESCRIPT_WAY });
      }
      const whole = refs.length === 1 && refs[0]![0] === value;
      if (whole) return lookup(refs[0]![1]!, where);
      let secret = false;
      const text = value.replace(REF, (_, path: string) => {
        const v = lookup(path, where);
        // A Secret anywhere inside makes the whole text a secret; it is spliced in revealed,
        // never as the mask (an object's JSON would otherwise carry "********" to the host).
        if (holdsSecret(v)) secret = true;
        const plain = revealAll(v);
        return plain && typeof plain === 'object' ? JSON.stringify(plain) : String(plain);
      });
      return secret ? new Secret(text, where) : text;
    }
    if (Array.isArray(value)) return value.map((v, i) => resolveValue(v, `${where}[${i}]`));
    if (isMapping(value)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveValue(v, `${where}.${k}`)]));
    }
    return value;
  };

  const resolveKey = (key: string): unknown => {
    if (done.has(key)) return done.get(key);
    const entry = vars.get(key)!;
    if (resolving.has(key)) throw inputError(`variable ${key} refers to itself`, { where: `${entry.source}: ${key}` });
    resolving.add(key);
    const value = resolveValue(entry.value, `${entry.source}: ${key}`);
    resolving.delete(key);
    done.set(key, value);
    return value;
  };

  return new Map([...vars].map(([k, entry]) => [k, { value: resolveKey(k), source: entry.source }]));
}

const isMapping = (value: unknown): value is Record<string, unknown> => !!value && typeof value === 'object' && !Array.isArray(value) && !isSecret(value);

export const plainVars = (vars: Map<string, Sourced>): Record<string, unknown> =>
  Object.fromEntries([...vars].map(([k, v]) => [k, v.value]));
