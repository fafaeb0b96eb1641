import { inputError } from '../core/errors.js';
import { groupEntry, hostEntry, varLayer, type Inventory } from './model.js';
import { literalEval, shlexSplit, UnusableLiteral } from './python.js';

// INI inventories, read as ansible-core's ini inventory plugin (plugins/inventory/ini.py) reads
// them, rule for rule, so that a user's `hosts` file means here what it means to Ansible.

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const GROUP_NAME = /^([^:\]\s]+)\s*(?:#.*)?$/;

// Host patterns as ansible/parsing/utils/addresses.py reads them: an optional :port, and
// [a:b(:step)] ranges in names and addresses.
const NUM_RANGE = String.raw`\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]`;
const HEX_RANGE = String.raw`\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]`;
const ALNUM_RANGE = String.raw`\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`;
const V6 = `(?:[0-9a-f]{1,4}|${HEX_RANGE})`;
const V4 = `(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|${NUM_RANGE})`;
const WORD = String.raw`[\p{L}\p{N}_]`;
const LABEL = `(?:${WORD}|${ALNUM_RANGE})(?:${WORD}|-|${ALNUM_RANGE})*(?<![_-])`;
const BRACKETED_HOSTPORT = /^\[(.+)\]:([0-9]+)$/;
const HOSTPORT = /^((?:[^:[\]]|\[[^\]]*\])*):([0-9]+)$/;
const ADDRESS = [
  new RegExp(`^(?:${V4}\\.){3}${V4}$`, 'i'),
  new RegExp(
    '^(?:' +
      [
        `(?:${V6}:){7}${V6}`,
        `(?:${V6}:){1,6}:`,
        `(?:${V6}:)(?::${V6}){1,6}`,
        `(?:${V6}:){2}(?::${V6}){1,5}`,
        `(?:${V6}:){3}(?::${V6}){1,4}`,
        `(?:${V6}:){4}(?::${V6}){1,3}`,
        `(?:${V6}:){5}(?::${V6}){1,2}`,
        `(?:${V6}:){6}(?::${V6})`,
        `:(?::${V6}){1,6}`,
        `${V6}?::`,
        `(?:0:){6}(?:${V6}\\.){3}${V6}`,
        `::(?:ffff:)?(?:${V6}\\.){3}${V6}`,
        `(?:0:){5}ffff:(?:${V6}\\.){3}${V6}`,
      ].join('|') +
      ')$',
    'i',
  ),
  new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, 'iu'),
];

// parse_address(pattern, allow_ranges=True); what it cannot read stays the whole name, no port.
function splitPort(pattern: string): { name: string; port: number | undefined } {
  let name = pattern;
  let port: number | undefined;
  for (const re of [BRACKETED_HOSTPORT, HOSTPORT]) {
    const m = re.exec(name);
    if (m) [name, port] = [m[1]!, Number(m[2])];
  }
  return ADDRESS.some((re) => re.test(name)) ? { name, port } : { name: pattern, port: undefined };
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
// Python's int() of a string.
function pyInt(text: string): number {
  if (!/^\s*[-+]?[0-9]+(?:_[0-9]+)*\s*$/.test(text)) throw new Error(`"${text}" is not a number`);
  return Number(text.replace(/_/g, ''));
}

function pyRange(from: number, to: number, step: number): number[] {
  if (step === 0) throw new Error('a range step cannot be zero');
  const out: number[] = [];
  for (let i = from; step > 0 ? i < to : i > to; i += step) out.push(i);
  return out;
}

// expand_hostname_range: web[01:10:2] -> web01 web03 ..., db-[a:c] -> db-a db-b db-c.
function expandRange(line: string): string[] {
  const parts = line.replace('[', '|').replace(']', '|').split('|');
  if (parts.length !== 3) throw new Error(`cannot read the range in ${line}`);
  const [head, range, tail] = parts as [string, string, string];
  const bounds = range.split(':');
  if (bounds.length !== 2 && bounds.length !== 3) throw new Error('host range must be begin:end or begin:end:step');
  const beg = bounds[0] || '0';
  const end = bounds[1]!;
  const step = bounds.length === 3 ? pyInt(bounds[2]!) : 1;
  if (!end) throw new Error('host range must specify end value');
  let fill = (x: string | number) => String(x);
  if (beg[0] === '0' && beg.length > 1) {
    if (beg.length !== end.length) throw new Error('host range must specify equal-length begin and end formats');
    fill = (x) => String(x).padStart(beg.length, '0');
  }
  let seq: (string | number)[];
  const [iBeg, iEnd] = [LETTERS.indexOf(beg), LETTERS.indexOf(end)];
  if (iBeg >= 0 && iEnd >= 0) {
    if (iBeg > iEnd) throw new Error('host range must have begin <= end');
    seq = pyRange(iBeg, iEnd + 1, step).map((i) => LETTERS[i]!);
  } else {
    seq = pyRange(pyInt(beg), pyInt(end) + 1, step);
  }
  return seq.flatMap((x) => {
    const name = head + fill(x) + tail;
    return name.includes('[') ? expandRange(name) : [name];
  });
}

// The hosts a host pattern names, and the port written with it.
export function expandHostPattern(pattern: string): { hosts: string[]; port: number | undefined } {
  const { name, port } = splitPort(pattern);
  if (pattern.trim().endsWith(':') && port === undefined) {
    throw new Error(`invalid host pattern "${pattern}": a trailing ":" must be followed by a port`);
  }
  const hosts = name.includes('[') ? expandRange(name) : [name];
  if (hosts.some((h) => h.trim() === '---')) throw new Error(`invalid host pattern "${pattern}": "---" is a sign this is a YAML file`);
  return { hosts, port };
}

// Reads one INI inventory file into `inv`. `wrap` turns each value into what the inventory
// keeps (a Secret for every value of a vault-encrypted file).
export function parseIni(text: string, file: string, inv: Inventory, wrap: (value: unknown, key: string) => unknown): void {
  let lineNo = 0;
  const fail = (message: string, hint?: string, line = lineNo) => inputError(message, { where: `${file}:${line}`, ...(hint ? { hint } : {}) });
  // Ansible's inventory always holds "all" and "ungrouped".
  const known = (name: string) => inv.groups.has(name) || name === 'ungrouped';

  // Both kinds of values go through Python's literal_eval, as in Ansible: `23` is a number,
  // `True` a boolean, `'23'` text, and anything that is no Python literal stays as written.
  const value = (key: string, raw: string): unknown => {
    try {
      const literal = literalEval(raw);
      return wrap(literal === undefined ? raw : literal, key);
    } catch (error) {
      if (!(error instanceof UnusableLiteral)) throw error;
      throw fail(`${key}: Python reads "${raw}" as ${error.message}, which no inventory value can be`, `quote it to keep it as text: ${key}="'…'"`);
    }
  };

  const addChild = (parent: string, child: string, line = lineNo) => {
    const ancestors = new Set<string>();
    const up = (name: string) => {
      if (ancestors.has(name)) return;
      ancestors.add(name);
      inv.groups.get(name)?.parents.forEach(up);
    };
    up(parent);
    if (ancestors.has(child)) throw fail(`group ${child} cannot be a child of ${parent}: that makes a loop`, undefined, line);
    groupEntry(inv, parent).children.add(child);
    groupEntry(inv, child).parents.add(parent);
  };

  // Groups named in a [x:children] (or given [x:vars]) before they are declared.
  const pending = new Map<string, { line: number; state: 'children' | 'vars'; parents: string[] }>();
  const resolvePending = (name: string) => {
    for (const parent of pending.get(name)!.parents) {
      addChild(parent, name, pending.get(name)!.line);
      if (pending.get(parent)?.state === 'children') resolvePending(parent);
    }
    pending.delete(name);
  };

  let group = 'ungrouped';
  let state = 'hosts';
  for (const raw of text.split(/\r\n|\r|\n/)) {
    lineNo++;
    const line = raw.trim();
    if (!line || line[0] === '#' || line[0] === ';') continue;

    const section = SECTION.exec(line);
    if (section) {
      group = section[1]!;
      state = section[2] ?? 'hosts';
      if (!['hosts', 'children', 'vars'].includes(state)) {
        throw fail(`section [${group}:${state}] has unknown type: ${state}`, 'a section is [group], [group:children] or [group:vars]');
      }
      if (!known(group)) {
        // [group] or [group:children] declares a group; [group:vars] needs one declared somewhere.
        if (state === 'vars' && !pending.has(group)) pending.set(group, { line: lineNo, state, parents: [] });
        groupEntry(inv, group);
      }
      if (pending.has(group) && state !== 'vars') {
        if (pending.get(group)!.state === 'children') resolvePending(group);
        else pending.delete(group);
      }
      continue;
    }
    if (line.startsWith('[') && line.endsWith(']')) {
      throw fail(`invalid section ${line}`, 'a section is [group], [group:children] or [group:vars], with no spaces');
    }

    if (state === 'hosts') {
      let tokens: string[];
      try {
        tokens = shlexSplit(line);
      } catch (error) {
        throw fail(`cannot read the host line "${line}": ${(error as Error).message}`);
      }
      if (tokens.length === 0) continue;
      let pattern: { hosts: string[]; port: number | undefined };
      try {
        pattern = expandHostPattern(tokens[0]!);
      } catch (error) {
        throw fail((error as Error).message);
      }
      const vars: Record<string, unknown> = {};
      for (const token of tokens.slice(1)) {
        const eq = token.indexOf('=');
        if (eq < 0) throw fail(`expected key=value after the host name, got "${token}"`, 'quote a value that holds spaces: key="a b"');
        vars[token.slice(0, eq)] = value(token.slice(0, eq), token.slice(eq + 1));
      }
      for (const name of pattern.hosts) {
        if (!name) throw fail('a host name is empty');
        const isNew = !inv.hosts.has(name);
        const host = hostEntry(inv, name);
        groupEntry(inv, group).hosts.add(name);
        // As Ansible: the port written with a host counts only where the host first appears.
        if (isNew && pattern.port) host.inline.push(varLayer({ ansible_port: wrap(pattern.port, 'ansible_port') }, file));
        if (tokens.length > 1) host.inline.push(varLayer(vars, file));
      }
    } else if (state === 'vars') {
      const eq = line.indexOf('=');
      if (eq < 0) throw fail(`expected key=value in [${group}:vars], got "${line}"`);
      const key = line.slice(0, eq).trim();
      groupEntry(inv, group).inline.push(varLayer({ [key]: value(key, line.slice(eq + 1).trim()) }, file));
    } else {
      const child = GROUP_NAME.exec(line)?.[1];
      if (!child) throw fail(`expected a group name in [${group}:children], got "${line}"`);
      if (known(child)) addChild(group, child);
      else if (pending.has(child)) pending.get(child)!.parents.push(group);
      else pending.set(child, { line: lineNo, state: 'children', parents: [group] });
    }
  }

  const [name, first] = [...pending][0] ?? [];
  if (name && first) {
    throw first.state === 'vars'
      ? fail(`section [${name}:vars] is for a group that is not declared`, `add a [${name}] section (or list ${name} in a [parent:children])`, first.line)
      : fail(`section [${first.parents.at(-1)}:children] includes the undeclared group ${name}`, `add a [${name}] section`, first.line);
  }
}
