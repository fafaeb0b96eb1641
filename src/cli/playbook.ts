import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inputError } from '../core/errors.js';
import type { Playbook } from '../core/playbook.js';

let registered = false;

// Playbooks and roles are TypeScript: only they go through tsx's loader, the CLI itself is
// compiled JavaScript. A playbook's `import ... from 'hostctl'` resolves to this package.
export async function loadPlaybook(file: string): Promise<Playbook> {
  const path = resolve(file);
  if (!existsSync(path)) throw inputError(`playbook ${file} does not exist`);
  if (!registered) {
    const { register } = await import('tsx/esm/api');
    register();
    registered = true;
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
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
