import { defineFact, type Fact } from './cache.js';
import { quote } from '../transport/quote.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  primaryGroup: string;
  groups: string[]; // supplementary
}

export function account(name: string): Fact<Account | null> {
  return defineFact({
    id: `user:${name}`,
    command: `getent passwd -- ${quote(name)} && id -gn -- ${quote(name)} && id -Gn -- ${quote(name)}`,
    parse(r) {
      if (r.code !== 0) return null;
      const [passwd = '', primary = '', all = ''] = r.stdout.split('\n');
      const f = passwd.split(':');
      return {
        name,
        uid: Number(f[2]),
        gid: Number(f[3]),
        home: f[5] ?? '',
        shell: f[6] ?? '',
        primaryGroup: primary,
        groups: all.split(' ').filter((g) => g && g !== primary),
      };
    },
  });
}

export interface GroupEntry {
  name: string;
  gid: number;
}

export function groupEntry(name: string): Fact<GroupEntry | null> {
  return defineFact({
    id: `group:${name}`,
    command: `getent group -- ${quote(name)}`,
    parse: (r) => (r.code !== 0 ? null : { name, gid: Number(r.stdout.split(':')[2]) }),
  });
}
