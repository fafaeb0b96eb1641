import { MASK, redact } from '../core/secret.js';

// Unified diff of a file's content. For a file that holds secrets every line of the diff
// keeps its key and loses its value ("PASSWORD=********"): the old value read from the host
// is not a known secret, so masking by value alone would print it.
export async function unifiedDiff(path: string, before: string | undefined, after: string | undefined, sensitive = false): Promise<string> {
  // Loaded only when a diff is shown.
  const { createTwoFilesPatch } = await import('diff');
  const patch = createTwoFilesPatch(
    before === undefined ? '/dev/null' : `${path} (before)`,
    after === undefined ? '/dev/null' : `${path} (after)`,
    before ?? '',
    after ?? '',
    '',
    '',
    { context: 3 },
  )
    .split('\n')
    .slice(1) // the "=====" banner
    .join('\n')
    .trimEnd();
  if (!sensitive) return redact(patch);
  return patch
    .split('\n')
    .map((line) => (/^[ +-]/.test(line) && !/^(\+\+\+|---) /.test(line) ? line[0] + maskValue(line.slice(1)) : line))
    .join('\n');
}

function maskValue(line: string): string {
  const m = /^(\s*[^=:\s]+\s*[=:]\s*)(.*)$/.exec(line);
  if (m) return m[2] === '' ? line : `${m[1]}${MASK}`;
  return line.trim() === '' || line.trim().startsWith('#') ? redact(line) : MASK;
}

// Mode and ownership changes as diff header lines, the way a reviewer reads them.
export function attributeDiff(path: string, changes: Array<[string, string | undefined, string]>): string {
  return changes.map(([what, from, to]) => `${path}: ${what} ${from ?? '(none)'} -> ${to}`).join('\n');
}
