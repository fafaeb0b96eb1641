import { change, defineResource, noop } from './resource.js';
import { quote } from '../transport/quote.js';
import { checkNames } from '../core/names.js';
import { inputError } from '../core/errors.js';
import { planFile } from './file.js';
import { readFact } from '../facts/files.js';

const DEFAULT_FILE = '/etc/sysctl.d/90-hostctl.conf';
// What `sysctl -n a.b.c` reads: /proc/sys/a/b/c.
const procPath = (name: string) => `/proc/sys/${name.replace(/\./g, '/')}`;

export interface SysctlArgs {
  name: string;
  value: string | number;
  // Where the setting persists across reboots.
  file?: string;
  // Also set the live value now (default true).
  apply?: boolean;
}

// The key becomes a path under /proc/sys and a line of the file; the value a line too (a
// newline in it would add another setting).
function checkSysctl(a: SysctlArgs): void {
  checkNames('sysctl', 'sysctl key', [a.name]);
  if (/[\n\r\0]/.test(String(a.value))) throw inputError(`sysctl ${a.name}: the value ${JSON.stringify(String(a.value))} holds a line break or NUL; nothing was run on the host`);
}

export const sysctl = defineResource<SysctlArgs>({
  kind: 'sysctl',
  probes: (a) => (checkSysctl(a), [{ fact: readFact(a.file ?? DEFAULT_FILE) }, { stat: a.file ?? DEFAULT_FILE }, { fact: readFact(procPath(a.name)) }]),
  title: (a) => `sysctl ${a.name} = ${a.value}`,
  async plan(ctx, args) {
    checkSysctl(args);
    const file = args.file ?? DEFAULT_FILE;
    const value = String(args.value);
    const content = (await ctx.facts.get(readFact(file))) ?? '';
    const live = (await ctx.facts.get(readFact(procPath(args.name)))) ?? '';
    const line = `${args.name} = ${value}`;
    const key = new RegExp(`^\\s*${args.name.replace(/\./g, '[./]')}\\s*=`);
    const lines = content.split('\n').filter((l, i, all) => !(l === '' && i === all.length - 1));
    const at = lines.findIndex((l) => key.test(l));
    if (at >= 0) lines[at] = line;
    else lines.push(line);
    const filePlan = await planFile(ctx, { path: file, content: `${lines.join('\n')}\n`, mode: 0o644 });
    // The kernel prints tab-separated values (e.g. port ranges); compare word by word.
    const liveDiffers = args.apply !== false && live.trim().split(/\s+/).join(' ') !== value.trim().split(/\s+/).join(' ');
    if (filePlan.action !== 'change' && !liveDiffers) return noop(`${args.name} = ${value}`);
    const steps = [filePlan.action === 'change' ? `write ${file}` : '', liveDiffers ? `set live value (was ${live.trim()})` : ''].filter(Boolean);
    return change(
      steps.join(', '),
      async () => {
        if (filePlan.action === 'change') await filePlan.apply();
        if (liveDiffers) await ctx.conn.check(`sysctl -q -w -- ${quote(`${args.name}=${value}`)}`);
      },
      filePlan.action === 'change' ? filePlan.diff : `${args.name}: ${live.trim()} -> ${value}`,
    );
  },
});
