import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { hostError, inputError } from '../core/errors.js';
import { defineResource } from './resource.js';
import { planFile, type FileArgs } from './file.js';

export interface TemplateArgs extends Omit<FileArgs, "content" | "source" | "state" | "path"> {
  dest: string;
  // File name inside the role's templates folder, e.g. "authentik.env.hbs".
  src: string;
}

// Templates render on the controller, in strict mode: a missing variable is an error, never
// an empty string. No HTML escaping: these are config files, not web pages.
const engine = Handlebars.create();

// Instead, {{x}} (what Handlebars escapes) is one line: a value with a line break, CR or NUL
// would add lines of its choosing to a config file (a directive to a unit, a variable to an
// .env). {{{x}}} is left as it is, for a template that renders a multi-line block on purpose.
// Handlebars' own escaper is one function for every Handlebars in the process, so the check
// goes where this environment compiles an escaped value.
class LineBreak extends Error {
  constructor(readonly line: number, readonly column: number) {
    super('line break in an escaped value');
  }
}
// Called as a helper, whose last argument Handlebars takes for its options object: where the
// {{x}} is goes there.
const oneLine = (value: unknown, at: { line: number; column: number }): unknown => {
  if (typeof value === 'string' && /[\n\r\0]/.test(value)) throw new LineBreak(at.line, at.column);
  return value ?? '';
};
const CHECK = 'hostctl one line';
engine.registerHelper(CHECK, oneLine as Handlebars.HelperDelegate);
type Compiler = { source: { currentLocation: { start: { line: number; column: number } } }; popStack(): unknown; pushSource(code: unknown): void; appendToBuffer(code: unknown[]): unknown };
const environment = engine as unknown as { JavaScriptCompiler: new () => Compiler };
const Base = environment.JavaScriptCompiler;
class OneLineCompiler extends Base {
  appendEscaped(this: Compiler): void {
    const at = this.source.currentLocation.start;
    // Compiled code sees no module scope: the check is a helper, under a name no template uses.
    this.pushSource(this.appendToBuffer([`helpers[${JSON.stringify(CHECK)}](`, this.popStack(), `, { line: ${at.line}, column: ${at.column} })`]));
  }
}
// Nested blocks ({{#if}}) are compiled by the prototype's `compiler`.
Object.assign(OneLineCompiler.prototype, { compiler: OneLineCompiler });
environment.JavaScriptCompiler = OneLineCompiler;

export function renderTemplate(name: string, source: string, data: Record<string, unknown>): string {
  try {
    return engine.compile(source, { strict: true })(data);
  } catch (error) {
    if (error instanceof LineBreak) {
      const text = source.split('\n')[error.line - 1] ?? '';
      const end = text.indexOf('}}', error.column);
      const expression = end < 0 ? '(expression)' : text.slice(error.column, end + 2);
      throw inputError(`${expression} (line ${error.line}) is a value with a line break, CR or NUL: it would add lines to the file`, {
        where: `template ${name}`,
        hint: 'give it a one-line value; a template that renders a multi-line block on purpose uses {{{...}}}',
      });
    }
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
