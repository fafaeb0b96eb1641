import { refuseSecretInCommand } from '../core/secret.js';

// POSIX single-quote quoting: every argument of every command built for a host goes
// through here, so no value is ever interpreted by the remote shell. It is also where a
// secret is refused: on the whole value, before quoting changes its bytes (a secret with a
// `'` in it no longer looks like itself once quoted).
export function quote(arg: string | number): string {
  const s = String(arg);
  refuseSecretInCommand(s);
  if (s !== '' && /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function quoteAll(args: ReadonlyArray<string | number>): string {
  return args.map(quote).join(' ');
}
