import { change, defineResource, noop } from '../core/resource.js';
import { quote } from '../transport/quote.js';
import { planFile } from './file.js';

export interface SysctlArgs {
  name: string;
  value: string | number;
  // Where the setting persists across reboots.
  file?: string;
  // Also set the live value now (default true).
  apply?: boolean;
}

export const sysctl = defineResource<SysctlArgs>({
  kind: 'sysctl',
  title: (a) => `sysctl ${a.name} = ${a.value}`,
  async plan(ctx, args) {
    const file = args.file ?? '/etc/sysctl.d/90-hostctl.conf';
    const value = String(args.value);
    const r = await ctx.conn.exec(`cat -- ${quote(file)} 2>/dev/null; printf '\\0'; sysctl -n ${quote(args.name)}`);
    const [content = '', live = ''] = r.stdout.split('\0');
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
        if (liveDiffers) await ctx.conn.check(`sysctl -q -w ${quote(`${args.name}=${value}`)}`);
      },
      filePlan.action === 'change' ? filePlan.diff : `${args.name}: ${live.trim()} -> ${value}`,
    );
  },
});
