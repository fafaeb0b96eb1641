import { hostError } from '../core/errors.js';
import { change, defineResource, noop } from '../core/resource.js';
import { defineFact } from '../facts/cache.js';
import { parseStats, STAT_LOOP, type PathStat } from '../transport/connection.js';
import { quote } from '../transport/quote.js';
import { planFile } from './file.js';

export interface AuthorizedKeyArgs {
  user: string;
  keys: string[];
  state?: 'present' | 'absent';
  // The file holds exactly these keys; others are removed.
  exclusive?: boolean;
}

// Keys are the same key when type and base64 match; the comment may differ.
const identity = (line: string) => line.trim().split(/\s+/).slice(0, 2).join(' ');

interface KeysState {
  group: string;
  dir: PathStat;
  file: PathStat;
  content: string;
}

// The user's primary group, ~/.ssh and authorized_keys (stat and content) in one command,
// which a role's prefetch can answer; null when the user does not exist.
const keysOf = (user: string) =>
  defineFact<KeysState | null>({
    id: `authorized-keys:${user}`,
    command: `h=$(getent passwd ${quote(user)} | cut -d: -f6) && [ -n "$h" ] || exit 2
printf '%s\\n%s\\n' "$(id -gn ${quote(user)})" "$(base64 -w0 < "$h/.ssh/authorized_keys" 2>/dev/null)"
set -- "$h/.ssh" "$h/.ssh/authorized_keys"
${STAT_LOOP}`,
    parse(r) {
      if (r.code !== 0) return null;
      const [group = '', b64 = '', ...rest] = r.stdout.split('\n');
      const [dir, file] = parseStats(rest.join('\n'));
      return { group, dir: dir!, file: file!, content: Buffer.from(b64, 'base64').toString('utf8') };
    },
  });

export const authorizedKey = defineResource<AuthorizedKeyArgs>({
  kind: 'authorized-key',
  title: (a) => `authorized keys of ${a.user}`,
  probes: (a) => [{ fact: keysOf(a.user) }],
  async plan(ctx, args) {
    const state = await ctx.facts.get(keysOf(args.user));
    if (!state) throw hostError(`user ${args.user} does not exist`, { hint: 'create it with the user resource first' });
    const { dir: dirStat, file: fileStat } = state;
    const dir = dirStat.path;
    const path = fileStat.path;
    const lines = (fileStat.exists ? state.content : '').split('\n').filter((l) => l.trim() !== '');
    const wanted = new Set(args.keys.map(identity));
    let next: string[];
    if (args.state === 'absent') next = lines.filter((l) => !wanted.has(identity(l)));
    else {
      const kept = args.exclusive ? lines.filter((l) => l.trim().startsWith('#') || wanted.has(identity(l))) : lines;
      const have = new Set(kept.map(identity));
      next = [...kept, ...args.keys.filter((k) => !have.has(identity(k))).map((k) => k.trim())];
    }
    const content = next.length ? `${next.join('\n')}\n` : '';
    const dirOk = dirStat.exists && dirStat.type === 'directory' && dirStat.mode === 0o700 && dirStat.owner === args.user;
    const filePlan = await planFile(ctx, { path, content, mode: 0o600, owner: args.user, group: state.group }, fileStat);
    if (dirOk && filePlan.action !== 'change') return noop(`${next.length} key${next.length === 1 ? '' : 's'}, up to date`);
    const fixDir = `install -d -m 0700 -o ${quote(args.user)} -g ${quote(state.group)} ${quote(dir)}`;
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
