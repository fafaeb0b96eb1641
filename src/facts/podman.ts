import { defineFact } from './cache.js';

export interface PodmanVersion {
  // "5.4.2"; undefined when podman is neither installed nor installable from apt.
  version: string | undefined;
  installed: boolean;
}

// The installed podman's version, or else the version apt would install: either way known
// before anything is written. Overridable as hostctl_fact_overrides: {podman-version: ...}.
export const podmanVersion = defineFact<PodmanVersion>({
  id: 'podman-version',
  // dpkg answers in milliseconds; starting podman itself takes a tenth of a second.
  command: `v=$(dpkg-query -W -f='\${db:Status-Abbrev} \${Version}' podman 2>/dev/null) && [ "\${v#ii }" != "$v" ] && echo "installed \${v#ii }" || echo "candidate $(LC_ALL=C apt-cache policy podman 2>/dev/null | awk '/Candidate:/ {print $2}')"`,
  parse(r) {
    const [kind, raw = ''] = r.stdout.trim().split(' ');
    // Debian versions carry an epoch and a revision: "1:5.4.2+ds1-2" is 5.4.2.
    const version = /^(?:\d+:)?(\d+\.\d+(?:\.\d+)?)/.exec(raw)?.[1];
    return { version, installed: kind === 'installed' };
  },
});

// Compares dotted versions numerically: "4.10" is above "4.4".
export function versionAtLeast(version: string, minimum: string): boolean {
  const a = version.split('.').map(Number);
  const b = minimum.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}
