// POSIX single-quote quoting: every argument of every command built for a host goes
// through here, so no value is ever interpreted by the remote shell.
export function quote(arg: string | number): string {
  const s = String(arg);
  if (s !== '' && /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function quoteAll(args: ReadonlyArray<string | number>): string {
  return args.map(quote).join(' ');
}
