import { hostError } from '../core/errors.js';
import { change, defineResource, noop } from './resource.js';
import { defineFact } from '../facts/cache.js';
import { parseStats, STAT_LOOP, type PathStat } from '../transport/connection.js';
import { quote } from '../transport/quote.js';
import { asUser, inDirectory } from '../transport/safe-path.js';
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
  home: string;
  dir: PathStat;
  file: PathStat;
  content: string;
}

// The user's primary group and home, then ~/.ssh and authorized_keys (stat and content) read
// AS THE USER (a link there reaches only what the user could read), in one command which a
// role's prefetch can answer; null when the user does not exist.
const keysOf = (user: string) =>
  defineFact<KeysState | null>({
    id: `authorized-keys:${user}`,
    command: `h=$(getent passwd ${quote(user)} | cut -d: -f6) && [ -n "$h" ] || exit 2
printf '%s\\n%s\\n' "$(id -gn ${quote(user)})" "$h"
${asUser(
  user,
  `printf '%s\\n' "$(base64 -w0 < "$1/.ssh/authorized_keys" 2>/dev/null)"
set -- "$1/.ssh" "$1/.ssh/authorized_keys"
${STAT_LOOP}`,
  ['"$h"'],
)}`,
    parse(r) {
      if (r.code !== 0) return null;
      const [group = '', home = '', b64 = '', ...rest] = r.stdout.split('\n');
      const [dir, file] = parseStats(rest.join('\n'));
      return { group, home, dir: dir!, file: file!, content: Buffer.from(b64, 'base64').toString('utf8') };
    },
  });

// ~/.ssh made right: a root-owned one (left by another tool) is handed to the user by chown of
// the pinned working directory itself, only once it is known to be that very entry; then, as
// the user, it is created or set to 0700. A link or a non-directory is refused.
function fixDirScript(user: string, group: string, home: string, dir: PathStat): string {
  const ssh = quote(`${home}/.ssh`);
  const handOver =
    dir.exists && dir.type === 'directory' && dir.owner === 'root'
      ? // Only its writers can move a directory to another parent: a root-owned one nobody else
        // may write is where root put it. chown of "." is the pinned inode, not a name.
        `(cd -P -- ${ssh} && [ "$(pwd -P)" = "$(cd -P -- ${quote(home)} && pwd -P)/.ssh" ] && set -- $(stat -c '%u %a' .) && [ "$1" = 0 ] && [ $((0$2 & 022)) -eq 0 ] && chown -- ${quote(`${user}:${group}`)} .) || { echo ${quote(`cannot hand ${home}/.ssh (owned by root) over to ${user}`)} >&2; exit 3; }\n`
      : '';
  const asTheUser = inDirectory(
    home,
    `if [ -L .ssh ] || { [ -e .ssh ] && [ ! -d .ssh ]; }; then hc_refuse "$hc_at/.ssh is a symbolic link or not a directory"; fi
[ -d .ssh ] || mkdir -m 0700 .ssh
chmod 0700 .ssh`,
  );
  return `${handOver}${asUser(user, asTheUser)}`;
}

export const authorizedKey = defineResource<AuthorizedKeyArgs>({
  kind: 'authorized-key',
  title: (a) => `authorized keys of ${a.user}`,
  probes: (a) => [{ fact: keysOf(a.user) }],
  async plan(ctx, args) {
    const state = await ctx.facts.get(keysOf(args.user));
    if (!state) throw hostError(`user ${args.user} does not exist`, { hint: 'create it with the user resource first' });
    const { dir: dirStat, file: fileStat } = state;
    const dir = dirStat.path;
    if (dirStat.exists && dirStat.type !== 'directory') {
      throw hostError(`${dir} is a ${dirStat.type === 'link' ? 'symbolic link' : dirStat.type}, not a directory: refusing to write authorized keys through it`, {
        hint: `remove ${dir} on the host (as ${args.user} it may point anywhere)`,
      });
    }
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
    const dirOk = dirStat.exists && dirStat.mode === 0o700 && dirStat.owner === args.user;
    // Public keys: a private file, but nothing in it is secret, so its diff stays readable.
    const filePlan = await planFile(
      ctx,
      { path, content, mode: 0o600, owner: args.user, group: state.group, runAs: args.user, sensitive: false },
      fileStat,
    );
    if (dirOk && filePlan.action !== 'change') return noop(`${next.length} key${next.length === 1 ? '' : 's'}, up to date`);
    return change(
      filePlan.action === 'change' ? filePlan.reason : `fix ${dir}`,
      async () => {
        if (!dirOk) await ctx.conn.check(fixDirScript(args.user, state.group, state.home, dirStat));
        if (filePlan.action === 'change') await filePlan.apply();
      },
      filePlan.action === 'change' ? filePlan.diff : `${dir}: 0700 ${args.user}`,
    );
  },
});
