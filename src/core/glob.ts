import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

// Wildcard patterns, one implementation for every dialect hostctl reads: OpenSSH's host
// patterns (`*`, `?`), Ansible's host patterns (Python's fnmatch: also `[seq]`, `[!seq]`) and
// glob(3) for ssh's Include (also `[^seq]` and `\` escapes).
export interface WildcardDialect {
  // `[...]` classes, negated by a leading `!` (or `^`); an unclosed `[` is a plain character.
  classes?: boolean;
  // `\x` stands for a literal x.
  escapes?: boolean;
}

// The pattern as an anchored regular expression, or undefined when it has no wildcard (a
// literal name, compared as such by the caller).
export function wildcardRegExp(pattern: string, dialect: WildcardDialect = {}): RegExp | undefined {
  let re = '';
  let wild = false;
  const literal = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (dialect.escapes && c === '\\' && i + 1 < pattern.length) {
      re += literal(pattern[++i]!);
      continue;
    }
    if (c === '*' || c === '?') {
      re += c === '*' ? '.*' : '.';
      wild = true;
      continue;
    }
    // A class: `!` or `^` first negates it, and a `]` right after that is a member.
    const negated = c === '[' && (pattern[i + 1] === '!' || pattern[i + 1] === '^');
    const end = dialect.classes && c === '[' ? pattern.indexOf(']', i + (negated ? 3 : 2)) : -1;
    if (end > 0) {
      const members = pattern.slice(i + (negated ? 2 : 1), end).replace(/[\\\]^]/g, '\\$&');
      re += `[${negated ? '^' : ''}${members}]`;
      i = end;
      wild = true;
    } else re += literal(c);
  }
  return wild ? new RegExp(`^${re}$`) : undefined;
}

// Does `name` match `pattern` (a pattern without wildcards matches only itself)?
export function wildcardMatch(pattern: string, name: string, dialect: WildcardDialect = {}): boolean {
  const re = wildcardRegExp(pattern, dialect);
  return re ? re.test(name) : name === (dialect.escapes ? pattern.replace(/\\(.)/g, '$1') : pattern);
}

// glob(3) over the file system: wildcards in any path segment, a leading `.` matched only by a
// pattern that starts with one; the existing files matched, sorted (as ssh reads them).
export function globFiles(pattern: string): string[] {
  const segments = pattern.split('/').filter(Boolean);
  let found = ['/'];
  for (const [n, segment] of segments.entries()) {
    const last = n === segments.length - 1;
    const re = wildcardRegExp(segment, { classes: true, escapes: true });
    const candidates = re
      ? found.flatMap((dir) => listDir(dir).filter((name) => re.test(name) && (name[0] !== '.' || segment[0] === '.')).map((name) => join(dir, name)))
      : found.map((dir) => join(dir, segment.replace(/\\(.)/g, '$1')));
    found = candidates.filter((p) => (last ? isFile(p) : isDirectory(p)));
  }
  return found.sort();
}

const isFile = (p: string) => statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
const isDirectory = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
const listDir = (dir: string) => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};
