import { createHash } from 'node:crypto';
import { hostError } from '../core/errors.js';
import { defineResource, noop, type Plan } from './resource.js';
import type { HostContext } from './host-context.js';
import { unifiedDiff } from '../report/diff.js';
import { quote } from '../transport/quote.js';
import { inDirectory } from '../transport/safe-path.js';
import { checkNames } from '../core/names.js';
import { statsOf } from '../facts/files.js';

export interface QuadletArgs {
  // Unit files by name ("web.container", "net.network") with their content: the whole set a
  // role owns in `dir`, so they are validated together (a .container may name a .network).
  units: Record<string, string>;
  // Units of this set that must not exist (e.g. left by an older version); removed after
  // their services are stopped by the role.
  absent?: string[];
  dir?: string;
}

export interface QuadletResult {
  // Unit files that were (or in check mode would be) written or removed.
  changed: string[];
}

const GENERATOR = '/usr/lib/systemd/system-generators/podman-system-generator';

// Unit names become file names in the Quadlet folder (and in the generator's scratch folder).
function unitNames(a: QuadletArgs): string[] {
  const all = [...Object.keys(a.units), ...(a.absent ?? [])];
  checkNames('quadlet', 'quadlet unit', all);
  return all;
}

// Quadlet units: every changed set is first run through podman's own generator (--dryrun in
// a scratch dir, the way systemd would at daemon-reload) and installed only if it passes;
// a daemon-reload is then due. Unchanged units cost one batched stat.
export const quadlet = defineResource<QuadletArgs>({
  kind: 'quadlet',
  probes: (a) => unitNames(a).map((n) => ({ stat: `${a.dir ?? '/etc/containers/systemd'}/${n}` })),
  title: (a) => `quadlet units ${Object.keys(a.units).join(', ')}`,
  async plan(ctx: HostContext, args): Promise<Plan<QuadletResult>> {
    const dir = args.dir ?? '/etc/containers/systemd';
    unitNames(args);
    const names = Object.keys(args.units);
    const absent = args.absent ?? [];
    const stats = await statsOf(ctx.facts, [...names, ...absent].map((n) => `${dir}/${n}`));
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const write = names.filter((n, i) => !stats[i]!.exists || stats[i]!.sha256 !== sha(args.units[n]!));
    const remove = absent.filter((_, i) => stats[names.length + i]!.exists);
    const changed = [...write, ...remove];
    if (changed.length === 0) return noop('up to date', { changed: [] });

    let diff: string | undefined;
    if (ctx.diff) {
      const parts: string[] = [];
      for (const n of write) {
        const i = names.indexOf(n);
        const before = stats[i]!.exists ? (await ctx.conn.get(`${dir}/${n}`)).toString('utf8') : undefined;
        parts.push(await unifiedDiff(`${dir}/${n}`, before, args.units[n]!));
      }
      for (const n of remove) parts.push(`--- ${dir}/${n}\n+++ /dev/null (removed)`);
      diff = parts.join('\n');
    }
    const reason = [write.length ? `write ${write.join(', ')}` : '', remove.length ? `remove ${remove.join(', ')}` : ''].filter(Boolean).join('; ');
    return {
      action: 'change',
      reason,
      data: { changed },
      items: changed,
      reloadsUnits: true,
      ...(diff !== undefined ? { diff } : {}),
      apply: async () => {
        await validate(ctx, args.units);
        for (const n of write) await ctx.conn.put(`${dir}/${n}`, args.units[n]!, { mode: 0o644, owner: 'root', group: 'root' });
        if (remove.length) await ctx.conn.check(inDirectory(dir, `rm -f -- ${remove.map((n) => quote(`./${n}`)).join(' ')}`));
        ctx.state.daemonReloadPending = true;
        return { data: { changed } };
      },
    };
  },
});

async function validate(ctx: HostContext, units: Record<string, string>): Promise<void> {
  const scratch = (await ctx.conn.check('mktemp -d /tmp/hostctl-quadlet.XXXXXX')).trim();
  try {
    await ctx.conn.check(`mkdir -p ${quote(`${scratch}/units`)} ${quote(`${scratch}/out`)}`);
    for (const [name, content] of Object.entries(units)) await ctx.conn.put(`${scratch}/units/${name}`, content, { mode: 0o644 });
    const r = await ctx.conn.exec(`QUADLET_UNIT_DIRS=${quote(`${scratch}/units`)} ${GENERATOR} --dryrun ${quote(`${scratch}/out`)} >/dev/null`);
    if (r.code !== 0) {
      throw hostError(`podman's Quadlet generator rejects the units: ${r.stderr.trim().split('\n').slice(-5).join('; ')}`, {
        hint: 'nothing was installed; fix the unit template',
      });
    }
  } finally {
    await ctx.conn.exec(`rm -rf -- ${quote(scratch)}`);
  }
}
