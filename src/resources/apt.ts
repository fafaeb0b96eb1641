import { change, defineResource, noop } from './resource.js';
import { APT_STAMP, aptCandidates, aptState } from '../facts/apt.js';
import { quoteAll } from '../transport/quote.js';
import { checkNames } from '../core/names.js';
import type { HostContext } from './host-context.js';
import { lockHolderNotice } from './wait.js';

export interface AptArgs {
  packages: string[];
  state?: 'present' | 'absent' | 'latest';
  // Refresh the package lists only when they are older than this (seconds; Ansible's
  // cache_valid_time). Default one hour.
  cacheValidTime?: number;
  installRecommends?: boolean;
  purge?: boolean;
}

// Non-interactive, waiting for the dpkg lock instead of failing when another apt runs.
const APT = 'DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300';
const UPDATE = `${APT} update && mkdir -p ${APT_STAMP.replace(/\/[^/]+$/, '')} && touch ${APT_STAMP}`;

// apt-get waits for its lock (up to 300 s) without a word: say first who holds it. An install
// or removal takes dpkg's frontend lock, an update the package lists' lock.
const DPKG_LOCK = '/var/lib/dpkg/lock-frontend';
const LISTS_LOCK = '/var/lib/apt/lists/lock';
const aptRun = (ctx: HostContext, command: string, lock = DPKG_LOCK) =>
  ctx.conn.check(`${lockHolderNotice(lock, lock === DPKG_LOCK ? 'the dpkg lock' : 'the apt lists lock')}\n${command}`, {
    signal: ctx.signal,
    onNotice: (text) => ctx.waiting(lock === DPKG_LOCK ? 'dpkg-lock' : 'apt-lists-lock', text),
  });

async function refreshIfStale(ctx: HostContext, age: number, valid: number): Promise<boolean> {
  if (age <= valid) return false;
  await aptRun(ctx, UPDATE, LISTS_LOCK);
  return true;
}

export const apt = defineResource<AptArgs>({
  kind: 'apt',
  probes: (a) => (checkNames('apt', 'package', a.packages), [{ packages: a.packages }]),
  title: (a) => `apt ${a.state ?? 'present'}: ${a.packages.join(', ')}`,
  async plan(ctx, args) {
    checkNames('apt', 'package', args.packages);
    const state = args.state ?? 'present';
    const valid = args.cacheValidTime ?? 3600;
    const fact = aptState(args.packages);
    const { installed, cacheAge } = await ctx.facts.get(fact);

    if (state === 'absent') {
      const remove = args.packages.filter((p) => installed.has(p));
      if (remove.length === 0) return noop('not installed');
      return change(`remove ${remove.join(' ')}`, async () => {
        await aptRun(ctx, `${APT} ${args.purge ? 'purge' : 'remove'} -- ${quoteAll(remove)}`);
      });
    }

    let wanted = args.packages.filter((p) => !installed.has(p));
    let refreshed = false;
    if (state === 'latest') {
      // "latest" needs fresh lists to know what latest is; refreshing is not a change.
      if (!ctx.check) refreshed = await refreshIfStale(ctx, cacheAge, valid);
      ctx.facts.forget('apt-candidates');
      const candidates = await ctx.facts.get(aptCandidates(args.packages));
      const outdated = args.packages.filter((p) => installed.has(p) && candidates.get(p) !== undefined && candidates.get(p) !== installed.get(p));
      wanted = [...wanted, ...outdated];
    }
    if (wanted.length === 0) return noop(state === 'latest' ? 'all at the candidate version' : 'installed');
    const recommends = args.installRecommends === false ? ' --no-install-recommends' : '';
    return change(`install ${wanted.join(' ')}`, async () => {
      if (!refreshed) await refreshIfStale(ctx, cacheAge, valid);
      await aptRun(ctx, `${APT} -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install${recommends} -- ${quoteAll(wanted)}`);
    }, ctx.diff ? wanted.map((p) => `+ ${p}`).join('\n') : undefined);
  },
});
