import { defineFact, type Fact } from './cache.js';
import { quoteAll } from '../transport/quote.js';

export const APT_STAMP = '/var/lib/apt/periodic/update-success-stamp';

export interface AptState {
  // Installed packages and their versions; a package absent here is not installed.
  installed: Map<string, string>;
  // Seconds since the package lists were last refreshed (Infinity: never).
  cacheAge: number;
}

// dpkg status of the given packages and the age of the apt lists, in one round trip.
export function aptState(packages: readonly string[]): Fact<AptState> {
  return defineFact({
    id: `apt:${[...packages].sort().join(',')}`,
    command: `dpkg-query -W -f='\${Package}\\t\${db:Status-Abbrev}\\t\${Version}\\n' -- ${quoteAll(packages)} 2>/dev/null; echo '--'; echo $(( $(date +%s) - $(stat -c %Y ${APT_STAMP} 2>/dev/null || echo 0) ))`,
    parse(r) {
      const [status = '', age = ''] = r.stdout.split('--\n');
      const installed = new Map<string, string>();
      for (const line of status.split('\n')) {
        const [name, abbrev, version] = line.split('\t');
        // The package name may carry an :arch suffix; "ii" is installed and configured.
        if (name && abbrev?.startsWith('ii') && version) installed.set(name.split(':')[0]!, version);
      }
      const seconds = Number(age.trim());
      return { installed, cacheAge: seconds > 1e9 ? Infinity : seconds };
    },
  });
}

// Candidate versions after a cache refresh, for state=latest.
export function aptCandidates(packages: readonly string[]): Fact<Map<string, string>> {
  return defineFact({
    id: `apt-candidates:${[...packages].sort().join(',')}`,
    command: `LC_ALL=C apt-cache policy -- ${quoteAll(packages)}`,
    parse(r) {
      const out = new Map<string, string>();
      let current: string | undefined;
      for (const line of r.stdout.split('\n')) {
        const head = /^(\S+):$/.exec(line);
        if (head) current = head[1];
        const cand = /^\s+Candidate: (\S+)/.exec(line);
        if (cand && current && cand[1] !== '(none)') out.set(current, cand[1]!);
      }
      return out;
    },
  });
}
