import { inputError } from '../core/errors.js';
import { wildcardRegExp } from '../core/glob.js';
import type { Inventory } from './model.js';

// Ansible host patterns: "all", "web:db" (union), "web:&prod" (and), "web:!staging" (not),
// globs "app*" and "web[12]" (fnmatch), regexes "~app\d+" (anchored at the start), subscripts
// "web[0]", "web[1:3]", separated by ":" or ",". `source` names where the pattern
// was given (--limit, the playbook's hosts) for an error.
export function selectHosts(inventory: Inventory, pattern: string, source = 'host pattern'): string[] {
  const terms = pattern.split(/[,:](?![^[]*\])/).map((t) => t.trim()).filter(Boolean);
  if (terms.length === 0) throw inputError(`empty host pattern "${pattern}"`, { where: source });
  const union = new Set<string>();
  const and: Set<string>[] = [];
  const not = new Set<string>();
  for (const term of terms) {
    const op = term[0] === '!' || term[0] === '&' ? term[0] : '';
    const matched = match(inventory, op ? term.slice(1) : term, source);
    if (op === '!') matched.forEach((h) => not.add(h));
    else if (op === '&') and.push(new Set(matched));
    else matched.forEach((h) => union.add(h));
  }
  return [...inventory.hosts.keys()].filter((h) => union.has(h) && and.every((s) => s.has(h)) && !not.has(h));
}

// Ansible's subscript on a term: web[0], web[-1], web[1:3] (both ends included), web[1:] (to
// the end); web[1-3] is the old spelling of web[1:3]. A regex term has none.
const SUBSCRIPT = /^(.+)\[(?:(-?\d+)|(\d+)([:-])(\d*))\]$/;

function match(inventory: Inventory, term: string, source: string): string[] {
  const sub = term.startsWith('~') ? null : SUBSCRIPT.exec(term);
  if (!sub) return enumerate(inventory, term, source);
  const hosts = enumerate(inventory, sub[1]!, source);
  const one = (i: number) => {
    const h = hosts.at(i);
    return h === undefined ? [] : [h];
  };
  if (sub[2] !== undefined) return one(Number(sub[2]));
  const start = Number(sub[3]);
  // As Ansible (Python's `if end:`): an end of 0 selects the start host alone.
  if (sub[5] === '0') return one(start);
  return hosts.slice(start, sub[5] ? Number(sub[5]) + 1 : undefined);
}

// The hosts a term names, in Ansible's order: those of every group it matches, then (when no
// group matched, or it is a wildcard or regex) the hosts it matches by name.
function enumerate(inventory: Inventory, term: string, source: string): string[] {
  if (term === 'all' || term === '*') return [...inventory.hosts.keys()];
  const re = term.startsWith('~') ? regex(term, source) : wildcardRegExp(term, { classes: true });
  const names = (all: Iterable<string>, has: (n: string) => boolean) => (re ? [...all].filter((n) => re.test(n)) : has(term) ? [term] : []);
  const groups = names(inventory.groups.keys(), (n) => inventory.groups.has(n));
  const out = groups.flatMap((g) => [...groupHosts(inventory, g)]);
  if (groups.length === 0 || re) out.push(...names(inventory.hosts.keys(), (n) => inventory.hosts.has(n)));
  return [...new Set(out)];
}

function regex(term: string, source: string): RegExp {
  try {
    // Checked as given (so the error quotes what the user wrote), then used as Python's
    // re.match, as Ansible does: anchored at the start only.
    return new RegExp(`^(?:${new RegExp(term.slice(1)).source})`);
  } catch (error) {
    throw inputError(`"${term}" is not a regular expression: ${(error as Error).message}`, {
      where: source,
      hint: 'a pattern starting with ~ is a JavaScript regular expression, e.g. ~app\\d+',
    });
  }
}

export function groupHosts(inventory: Inventory, name: string, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  const group = inventory.groups.get(name);
  if (!group || seen.has(name)) return out;
  seen.add(name);
  if (name === 'all') return new Set(inventory.hosts.keys());
  group.hosts.forEach((h) => out.add(h));
  for (const child of group.children) groupHosts(inventory, child, seen).forEach((h) => out.add(h));
  return out;
}
