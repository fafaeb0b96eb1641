import { change, defineResource, noop } from './resource.js';
import { account, groupEntry } from '../facts/users.js';
import { quote } from '../transport/quote.js';
import { checkNames } from '../core/names.js';

export interface UserArgs {
  name: string;
  state?: 'present' | 'absent';
  uid?: number;
  // Primary group (must exist); default: a group named like the user.
  group?: string;
  // Supplementary groups, added to what the user has (Ansible's append: yes) unless exclusive.
  groups?: string[];
  exclusiveGroups?: boolean;
  shell?: string;
  home?: string;
  system?: boolean;
  // Remove the home directory with the user.
  removeHome?: boolean;
}

// The user, its primary group and its supplementary groups: names, never options.
function checkUser(a: UserArgs): void {
  checkNames('user', 'user', [a.name]);
  checkNames('user', 'group', [...(a.group ? [a.group] : []), ...(a.groups ?? [])]);
}

export const user = defineResource<UserArgs>({
  kind: 'user',
  probes: (a) => (checkUser(a), [{ fact: account(a.name) }, ...(a.group ? [{ fact: groupEntry(a.group) }] : [])]),
  title: (a) => `user ${a.name}${a.state === 'absent' ? ' absent' : ''}`,
  async plan(ctx, args) {
    checkUser(args);
    const current = await ctx.facts.get(account(args.name));
    const name = quote(args.name);
    if (args.state === 'absent') {
      if (!current) return noop('absent');
      return change('remove', async () => {
        await ctx.conn.check(`userdel ${args.removeHome ? '-r ' : ''}-- ${name}`);
      });
    }
    if (!current) {
      const opts = [
        args.uid !== undefined ? `-u ${args.uid}` : '',
        args.group ? `-g ${quote(args.group)}` : '-U',
        args.groups?.length ? `-G ${quote(args.groups.join(','))}` : '',
        args.shell ? `-s ${quote(args.shell)}` : '-s /bin/bash',
        args.home ? `-d ${quote(args.home)}` : '',
        args.system ? '--system' : '-m',
      ].filter(Boolean);
      return change('create', async () => {
        await ctx.conn.check(`useradd ${opts.join(' ')} -- ${name}`);
      }, `+ user ${args.name}${args.groups?.length ? ` (groups ${args.groups.join(',')})` : ''}`);
    }
    const mods: string[] = [];
    const what: string[] = [];
    if (args.uid !== undefined && current.uid !== args.uid) (mods.push(`-u ${args.uid}`), what.push(`uid ${current.uid} -> ${args.uid}`));
    if (args.shell && current.shell !== args.shell) (mods.push(`-s ${quote(args.shell)}`), what.push(`shell ${current.shell} -> ${args.shell}`));
    if (args.home && current.home !== args.home) (mods.push(`-d ${quote(args.home)}`), what.push(`home ${current.home} -> ${args.home}`));
    if (args.group) {
      const g = await ctx.facts.get(groupEntry(args.group));
      if (!g || g.gid !== current.gid) (mods.push(`-g ${quote(args.group)}`), what.push(`group ${current.primaryGroup} -> ${args.group}`));
    }
    if (args.groups) {
      const missing = args.groups.filter((g) => !current.groups.includes(g));
      const extra = args.exclusiveGroups ? current.groups.filter((g) => !args.groups!.includes(g)) : [];
      if (missing.length || extra.length) {
        mods.push(args.exclusiveGroups ? `-G ${quote(args.groups.join(','))}` : `-a -G ${quote(missing.join(','))}`);
        what.push(`groups ${[...missing.map((g) => `+${g}`), ...extra.map((g) => `-${g}`)].join(' ')}`);
      }
    }
    if (mods.length === 0) return noop('up to date');
    return change(what.join(', '), async () => {
      await ctx.conn.check(`usermod ${mods.join(' ')} -- ${name}`);
    }, what.map((w) => `user ${args.name}: ${w}`).join('\n'));
  },
});

export interface GroupArgs {
  name: string;
  state?: 'present' | 'absent';
  gid?: number;
  system?: boolean;
}

export const group = defineResource<GroupArgs>({
  kind: 'group',
  probes: (a) => (checkNames('group', 'group', [a.name]), [{ fact: groupEntry(a.name) }]),
  title: (a) => `group ${a.name}${a.state === 'absent' ? ' absent' : ''}`,
  async plan(ctx, args) {
    checkNames('group', 'group', [args.name]);
    const current = await ctx.facts.get(groupEntry(args.name));
    const name = quote(args.name);
    if (args.state === 'absent') {
      if (!current) return noop('absent');
      return change('remove', async () => void (await ctx.conn.check(`groupdel -- ${name}`)));
    }
    if (!current) {
      const opts = [args.gid !== undefined ? `-g ${args.gid}` : '', args.system ? '--system' : ''].filter(Boolean).join(' ');
      return change('create', async () => void (await ctx.conn.check(`groupadd ${opts} -- ${name}`)));
    }
    if (args.gid !== undefined && current.gid !== args.gid) {
      return change(`gid ${current.gid} -> ${args.gid}`, async () => void (await ctx.conn.check(`groupmod -g ${args.gid} -- ${name}`)));
    }
    return noop('up to date');
  },
});
