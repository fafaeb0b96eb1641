import { readFile } from 'node:fs/promises';
import { inputError } from '../core/errors.js';
import { firstLine } from '../core/text.js';
import { parseVarsYaml, type VaultDecoder } from '../inventory/load.js';
import type { VarLayer } from '../inventory/model.js';
import type { ExtraVars } from '../inventory/vars.js';

const USAGE = 'use -e key=value, -e \'{"key": 1}\' or -e @vars.yml';
const KEY_VALUE_SOURCE = 'extra vars (-e)';

// -e as Ansible takes it (load_extra_vars): "@file.yml", a YAML/JSON mapping when it starts
// with { or [, otherwise key=value pairs (text, typed later by the role's schema). YAML is read
// exactly as an inventory file (PyYAML 1.1 scalars, `!vault` values and vaulted files decrypted
// with the run's passwords, duplicate keys refused), its errors naming the -e. Later -e win.
export async function parseExtraVars(values: readonly string[], vault: VaultDecoder): Promise<ExtraVars> {
  const vars: VarLayer = new Map();
  const text = new Set<string>();
  const put = (data: Record<string, unknown>, source: string) => {
    for (const [key, value] of Object.entries(data)) {
      vars.set(key, { value, source });
      text.delete(key);
    }
  };
  for (const value of values) {
    const arg = value.trim();
    if (arg.startsWith('@')) {
      const file = arg.slice(1);
      const content = await readFile(file, 'utf8').catch((error: unknown) => {
        throw inputError(`-e ${arg} (--extra-vars): cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
      });
      put(parseVarsYaml(content, `-e @${file}`, vault), `-e @${file}`);
    } else if (arg.startsWith('{') || arg.startsWith('[')) {
      put(parseVarsYaml(arg, `-e ${firstLine(arg, 40)}`, vault), KEY_VALUE_SOURCE);
    } else {
      for (const [key, v] of keyValues(arg)) {
        vars.set(key, { value: v, source: KEY_VALUE_SOURCE });
        text.add(key);
      }
    }
  }
  return { vars, text };
}

// Ansible's parse_kv: split on blanks outside quotes and Jinja blocks, decode backslash
// escapes, split at the first unescaped "=", strip one pair of matching quotes from the value.
export function keyValues(arg: string): [string, string][] {
  return splitArgs(arg).map((token) => {
    const m = /^([\s\S]+?)(?<!\\)=([\s\S]*)$/.exec(decodeEscapes(token));
    if (!m) throw inputError(`-e "${firstLine(token, 40)}" is not key=value`, { hint: USAGE });
    return [m[1]!.trim(), unquote(m[2]!.trim())];
  });
}

// Ansible's split_args: quotes (not after a backslash) and {{ }}, {% %}, {# #} keep blanks inside.
function splitArgs(arg: string): string[] {
  const tokens: string[] = [];
  let current = '';
  let quote: string | undefined;
  let depth = 0;
  for (let i = 0; i < arg.length; i++) {
    const c = arg[i]!;
    const pair = arg.slice(i, i + 2);
    if ((c === '"' || c === "'") && arg[i - 1] !== '\\') quote = quote === undefined ? c : quote === c ? undefined : quote;
    else if (quote === undefined && /^\{[{%#]$/.test(pair)) depth++;
    else if (quote === undefined && depth > 0 && /^[}%#]\}$/.test(pair)) depth--;
    if (/\s/.test(c) && quote === undefined && depth === 0) {
      if (current) tokens.push(current);
      current = '';
    } else current += c;
  }
  if (quote !== undefined || depth > 0) {
    throw inputError(`-e ${firstLine(arg, 40)}: an unbalanced quote or Jinja block`, { hint: `quote the whole value: -e 'key="a value"'` });
  }
  if (current) tokens.push(current);
  return tokens;
}

const ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

// A \U escape beyond the last code point is bad input, not a crash (exit 1).
function codePoint(code: number, seq: string): string {
  if (code > 0x10ffff) throw inputError(`-e: the escape \\${seq} is beyond the last Unicode code point`, { hint: 'write the character itself' });
  return String.fromCodePoint(code);
}

// Python's unicode_escape for the sequences Ansible's _decode_escapes matches.
function decodeEscapes(text: string): string {
  return text.replace(/\\(U[0-9a-fA-F]{8}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[0-7]{1,3}|[\\'"abfnrtv])/g, (_, seq: string) =>
    /^[Uux]/.test(seq) ? codePoint(parseInt(seq.slice(1), 16), seq) : /^[0-7]/.test(seq) ? String.fromCodePoint(parseInt(seq, 8)) : ESCAPES[seq]!,
  );
}

const unquote = (v: string) => (v.length > 1 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0] && v.at(-2) !== '\\' ? v.slice(1, -1) : v);
