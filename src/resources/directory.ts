import { hostError } from '../core/errors.js';
import { change, defineResource, noop } from './resource.js';
import { attributeDiff } from '../report/diff.js';
import { inParentOf } from '../transport/safe-path.js';
import { setAttributes } from './file.js';
import { statsOf } from '../facts/files.js';
import { modeString, parseMode } from './mode.js';

export interface DirectoryArgs {
  path: string;
  state?: 'present' | 'absent';
  mode?: number | string;
  owner?: string;
  group?: string;
  // Set mode and owner only when creating, then leave them to whoever owns the directory
  // (a container that chowns its data directory would otherwise be fought on every run).
  createOnly?: boolean;
}

export const directory = defineResource<DirectoryArgs>({
  kind: 'directory',
  probes: (a) => [{ stat: a.path }],
  title: (a) => `directory ${a.path}${a.state === 'absent' ? ' absent' : ''}`,
  async plan(ctx, args) {
    const [stat] = await statsOf(ctx.facts, [args.path]);
    // Every command runs in the safely entered parent, on the entry's relative name.
    const inParent = (body: (name: string) => string, create = false) => async () =>
      void (await ctx.conn.check(inParentOf(args.path, body, { create })));
    if (args.state === 'absent') {
      if (!stat!.exists) return noop('absent');
      return change('remove recursively', inParent((name) => `rm -rf -- ${name}`), `${args.path}: removed`);
    }
    const mode = args.mode === undefined ? undefined : parseMode(args.mode, args.path);
    if (!stat!.exists) {
      const create = (name: string) => `mkdir -- ${name} && ${setAttributes(name, mode ?? 0o755, args.owner, args.group)}`;
      return change('create', inParent(create, true), `${args.path}/: created`);
    }
    if (stat!.type !== 'directory') throw hostError(`${args.path} exists and is a ${stat!.type}, not a directory`);
    if (args.createOnly) return noop(`exists (owned by ${stat!.owner}, mode ${modeString(stat!.mode!)}; not enforced)`);
    const attrs: Array<[string, string | undefined, string]> = [];
    if (mode !== undefined && stat!.mode !== mode) attrs.push(['mode', modeString(stat!.mode!), modeString(mode)]);
    if (args.owner && stat!.owner !== args.owner) attrs.push(['owner', stat!.owner, args.owner]);
    if (args.group && stat!.group !== args.group) attrs.push(['group', stat!.group, args.group]);
    if (attrs.length === 0) return noop('up to date');
    return change(
      `set ${attrs.map(([w, , to]) => `${w} ${to}`).join(', ')}`,
      inParent((name) => setAttributes(name, mode, args.owner, args.group)),
      attributeDiff(args.path, attrs),
    );
  },
});
