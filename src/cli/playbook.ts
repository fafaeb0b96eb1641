import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { inputError } from '../core/errors.js';
import type { Playbook } from '../engine/playbook.js';
import { importPlaybook } from '../engine/bundle.js';

// Playbooks and roles are TypeScript: bundled into one cached module (bundle.ts), the CLI
// itself is compiled JavaScript. A playbook's `import ... from 'hostctl'` is this library.
export async function loadPlaybook(file: string): Promise<Playbook> {
  const path = resolve(file);
  if (!existsSync(path)) throw inputError(`playbook ${file} does not exist`);
  let mod: { default?: unknown };
  try {
    mod = await importPlaybook(path);
  } catch (error) {
    throw inputError(`playbook ${file} cannot be loaded: ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
  const playbook = mod.default as Playbook | undefined;
  if (!playbook || playbook.kind !== 'playbook') {
    throw inputError(`playbook ${file} has no default export made by definePlaybook()`, {
      hint: "write `export default definePlaybook({ name, hosts, roles })` with `import { definePlaybook } from 'hostctl'`",
    });
  }
  return playbook;
}

