import { parseArgs, type ParseArgsConfig } from 'node:util';
import { inputError } from '../core/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Config<T extends Options> = { args: string[]; options: T; allowPositionals: true; strict: true };

// util.parseArgs with its errors turned into input errors (exit 5) that say what to do.
export function parse<T extends Options>(argv: string[], options: T, command: string): ReturnType<typeof parseArgs<Config<T>>> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw inputError((error as Error).message, { hint: `see \`hostctl ${command} --help\`` });
  }
}
