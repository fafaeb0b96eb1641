import { inputError } from '../core/errors.js';
import type { Inventory } from './model.js';

// Ansible host patterns: "all", "web:db" (union), "web:&prod" (and), "web:!staging" (not),
// globs "app*", regexes "~app\d+", separated by ":" or ",". `source` names where the pattern
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

function match(inventory: Inventory, term: string, source: string): string[] {
  if (term === 'all' || term === '*') return [...inventory.hosts.keys()];
  const group = inventory.groups.get(term);
  if (group) return [...groupHosts(inventory, term)];
  if (inventory.hosts.has(term)) return [term];
  const re = term.startsWith('~') ? regex(term, source) : /[*?[]/.test(term) ? globToRegExp(term) : undefined;
  if (!re) return [];
  const out = new Set<string>();
  for (const g of inventory.groups.keys()) if (re.test(g)) groupHosts(inventory, g).forEach((h) => out.add(h));
  for (const h of inventory.hosts.keys()) if (re.test(h)) out.add(h);
  return [...out];
}

function regex(term: string, source: string): RegExp {
  try {
    return new RegExp(term.slice(1));
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

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}
