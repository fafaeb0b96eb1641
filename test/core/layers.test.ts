import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// The floors of src/ and the folders each may import from: every import runs downwards, so
// "where does a run start?" has one answer (engine) and the vocabulary at the bottom (core)
// depends on nothing. A new folder must be placed here before it can import anything.
const FLOORS: Record<string, string[]> = {
  cli: ['engine', 'resources', 'facts', 'inventory', 'vault', 'report', 'transport', 'lab', 'core'],
  engine: ['resources', 'facts', 'inventory', 'vault', 'report', 'transport', 'core'],
  resources: ['facts', 'report', 'transport', 'core'],
  facts: ['transport', 'core'],
  inventory: ['vault', 'transport', 'core'],
  lab: ['transport', 'core'],
  vault: ['core'],
  report: ['core'],
  transport: ['core'],
  core: [],
};

const root = fileURLToPath(new URL('../../', import.meta.url));
const src = join(root, 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

// Relative module specifiers of static and dynamic imports and re-exports.
const specifiers = (text: string) => [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);

describe('layout', () => {
  it('imports run one way: cli → engine → resources → facts/inventory → vault/report/transport → core', () => {
    const wrong: string[] = [];
    for (const file of tsFiles(src)) {
      const floor = relative(src, file).split('/')[0]!;
      if (file === join(src, 'index.ts')) continue; // the public surface re-exports every floor
      assert.ok(floor in FLOORS, `src/${floor}/ is not placed in FLOORS`);
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        const target = relative(src, resolve(dirname(file), spec)).split('/')[0]!;
        if (target !== floor && !FLOORS[floor]!.includes(target)) wrong.push(`${relative(root, file)} imports ${spec} (${floor} → ${target})`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('roles keep no module-level mutable state (what a run needs travels through the run)', () => {
    const wrong: string[] = [];
    for (const file of tsFiles(join(root, 'roles'))) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (/^(export\s+)?let\s/.test(line) || /^(export\s+)?const\s+\w+\s*(:[^=]+)?=\s*new\s+(Map|Set|WeakMap|Array)\b/.test(line)) {
          wrong.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`);
        }
      });
    }
    assert.deepEqual(wrong, []);
  });
});
