import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { inputError } from '../core/errors.js';

// -e as Ansible takes it: "k=v k2=v2" (strings), a JSON/YAML mapping, or "@file.yml".
export async function parseExtraVars(values: readonly string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const value of values) {
    const text = value.trim();
    if (text.startsWith('@')) {
      const file = text.slice(1);
      const content = await readFile(file, 'utf8').catch((error: unknown) => {
        throw inputError(`-e ${text} (--extra-vars): cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
      });
      Object.assign(out, mapping(yaml(content, `-e ${text}`), `-e ${text}`));
    } else if (text.startsWith('{')) {
      Object.assign(out, mapping(yaml(text, `-e ${text}`), `-e ${text}`));
    } else {
      for (const pair of text.match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g) ?? []) {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw inputError(`-e "${pair}" is not key=value`, { hint: 'use -e key=value, -e \'{"key": 1}\' or -e @vars.yml' });
        out[pair.slice(0, eq)] = pair.slice(eq + 1).replace(/^(["'])(.*)\1$/, '$2');
      }
    }
  }
  return out;
}

// JSON is YAML: one parser for both, its error (with line and column) named after the -e.
function yaml(text: string, where: string): unknown {
  try {
    return parseYaml(text);
  } catch (error) {
    throw inputError(`${where} (--extra-vars) is not valid JSON/YAML: ${(error as Error).message.split('\n')[0]!.replace(/:$/, '')}`, {
      hint: 'use -e key=value, -e \'{"key": 1}\' or -e @vars.yml',
      cause: error,
    });
  }
}

function mapping(value: unknown, where: string): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw inputError(`${where} is not a mapping of variables`);
  return value as Record<string, unknown>;
}
