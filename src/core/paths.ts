import { isAbsolute, resolve } from 'node:path';
import { hostError } from './errors.js';

// The one way a file name a host sent (a manifest line, a listing, command output) becomes a
// path on the controller: a plain name directly inside `dir`, or a host error saying the host
// sent a bad name. A compromised host must not steer a write outside the folder it was given
// (e.g. `../../playbooks/backup.ts`, which the next run would execute).
export function inside(dir: string, name: string, from: string): string {
  const bad = (why: string) =>
    hostError(`${from} sent a bad file name ${JSON.stringify(name)} (${why}); nothing was written for it`, {
      hint: 'the host may be compromised: look at what wrote that name before trusting its files',
    });
  if (name === '' || name === '.' || name === '..') throw bad('not a file name');
  if (name.includes('\0')) throw bad('it holds a NUL byte');
  if (isAbsolute(name)) throw bad('an absolute path');
  if (name.includes('/')) throw bad('it holds a /');
  // No separator, not . or ..: the name can only be a direct child of dir.
  return resolve(dir, name);
}
