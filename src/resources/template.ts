import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { hostError, inputError } from '../core/errors.js';
import { defineResource } from '../core/resource.js';
import { planFile, type FileArgs } from './file.js';

export interface TemplateArgs extends Omit<FileArgs, "content" | "source" | "state" | "path"> {
  dest: string;
  // File name inside the role's templates folder, e.g. "authentik.env.hbs".
  src: string;
}

// Templates render on the controller, in strict mode: a missing variable is an error, never
// an empty string. No HTML escaping: these are config files, not web pages.
const engine = Handlebars.create();

export function renderTemplate(name: string, source: string, data: Record<string, unknown>): string {
  try {
    return engine.compile(source, { strict: true, noEscape: true })(data);
  } catch (error) {
    const message = (error as Error).message;
    const missing = /"([^"]+)" not defined/.exec(message);
    const at = /(\d+):(\d+)/.exec(message);
    throw inputError(
      missing ? `variable "${missing[1]}" is not defined${at ? ` (line ${at[1]})` : ''}` : message.split('\n')[0]!,
      { where: `template ${name}`, hint: missing ? `define ${missing[1]} in the inventory or the role's defaults` : undefined, cause: error },
    );
  }
}

// Renders every *.hbs of a folder for one host: run during validation, so a template error
// stops the run before any host is touched, and the run uploads exactly what was checked.
export async function renderFolder(folder: string | URL, data: Record<string, unknown>): Promise<Map<string, string>> {
  const dir = folder instanceof URL ? fileURLToPath(folder) : folder;
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.hbs')).sort();
  } catch (error) {
    throw inputError(`templates folder ${dir} cannot be read`, { cause: error });
  }
  const out = new Map<string, string>();
  for (const name of names) {
    out.set(name, renderTemplate(join(dir, name), await readFile(join(dir, name), 'utf8'), data));
  }
  return out;
}

export const template = defineResource<TemplateArgs>({
  kind: 'template',
  probes: (a) => [{ stat: a.dest }],
  title: (a) => `template ${a.src} -> ${a.dest}`,
  async plan(ctx, args) {
    const content = ctx.templates.get(args.src);
    if (content === undefined) {
      throw hostError(`template ${args.src} is not in the role's templates folder`, {
        hint: `known: ${[...ctx.templates.keys()].join(', ') || 'none'}`,
      });
    }
    const { src: _src, dest, ...rest } = args;
    return planFile(ctx, { ...rest, path: dest, content });
  },
});
