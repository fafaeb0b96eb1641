import { hostError } from '../core/errors.js';
import { change, defineResource, noop } from '../core/resource.js';
import { account } from '../facts/users.js';
import { quote } from '../transport/quote.js';
import { planFile } from './file.js';
import { readFact, statsOf } from '../facts/files.js';

export interface AuthorizedKeyArgs {
  user: string;
  keys: string[];
  state?: 'present' | 'absent';
  // The file holds exactly these keys; others are removed.
  exclusive?: boolean;
}

// Keys are the same key when type and base64 match; the comment may differ.
const identity = (line: string) => line.trim().split(/\s+/).slice(0, 2).join(' ');

export const authorizedKey = defineResource<AuthorizedKeyArgs>({
  kind: 'authorized-key',
  probes: (a) => [{ account: a.user }],
  title: (a) => `authorized keys of ${a.user}`,
  async plan(ctx, args) {
    const acct = await ctx.facts.get(account(args.user));
    if (!acct) throw hostError(`user ${args.user} does not exist`, { hint: 'create it with the user resource first' });
    const dir = `${acct.home}/.ssh`;
    const path = `${dir}/authorized_keys`;
    const [dirStat, fileStat] = await statsOf(ctx.facts, [dir, path]);
    const current = fileStat!.exists ? ((await ctx.facts.get(readFact(path))) ?? '') : '';
    const lines = current.split('\n').filter((l) => l.trim() !== '');
    const wanted = new Set(args.keys.map(identity));
    let next: string[];
    if (args.state === 'absent') next = lines.filter((l) => !wanted.has(identity(l)));
    else {
      const kept = args.exclusive ? lines.filter((l) => l.trim().startsWith('#') || wanted.has(identity(l))) : lines;
      const have = new Set(kept.map(identity));
      next = [...kept, ...args.keys.filter((k) => !have.has(identity(k))).map((k) => k.trim())];
    }
    const content = next.length ? `${next.join('\n')}\n` : '';
    const dirOk = dirStat!.exists && dirStat!.type === 'directory' && dirStat!.mode === 0o700 && dirStat!.owner === args.user;
    const filePlan = await planFile(ctx, { path, content, mode: 0o600, owner: args.user, group: acct.primaryGroup }, fileStat);
    if (dirOk && filePlan.action !== 'change') return noop(`${next.length} key${next.length === 1 ? '' : 's'}, up to date`);
    const fixDir = `install -d -m 0700 -o ${quote(args.user)} -g ${quote(acct.primaryGroup)} ${quote(dir)}`;
    return change(
      filePlan.action === 'change' ? filePlan.reason : `fix ${dir}`,
      async () => {
        if (!dirOk) await ctx.conn.check(fixDir);
        if (filePlan.action === 'change') await filePlan.apply();
      },
      filePlan.action === 'change' ? filePlan.diff : `${dir}: 0700 ${args.user}`,
    );
  },
});
