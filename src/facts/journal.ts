import { z } from 'zod';
import { defineFact, type Fact } from './cache.js';
import { quote } from '../transport/quote.js';

// Where hostctl keeps what it must remember on a host between runs (the host variable
// hostctl_state_dir moves it, e.g. for tests on the controller itself).

// The run journal: what a run began on this host and has not finished (a handler that was
// notified, a restart that is due, an upgrade in flight). Root's only, one file per entry.
export const journalDir = (stateDir: string) => `${stateDir}/journal`;

const entry = z.object({
  role: z.string().min(1),
  kind: z.enum(['handler', 'pending']),
  name: z.string().min(1),
  data: z.unknown().optional(),
  // When the run that recorded it recorded it (ISO time, the controller's clock).
  at: z.string(),
});
export type JournalEntry = z.infer<typeof entry>;

// Every entry, read with the host's first round trip. The journal is trusted only as root
// left it: a directory (not a link) owned by root, none of it writable by anyone else; a line
// that is not an entry is skipped (a half-written record is never one: records are renamed
// into place).
export const journalFact = (stateDir: string): Fact<JournalEntry[]> => {
  const [state, dir] = [quote(stateDir), quote(journalDir(stateDir))];
  return defineFact({
    id: `journal:${stateDir}`,
    command: `ok() { [ -d "$1" ] && [ ! -L "$1" ] && [ "$(stat -c %u -- "$1")" = 0 ] && [ $((0$(stat -c %a -- "$1") & 022)) -eq 0 ]; }
ok ${state} && ok ${dir} || exit 0
for f in ${dir}/*.json; do [ -f "$f" ] && [ ! -L "$f" ] && head -c 65536 -- "$f" && echo; done; true`,
    parse: (r) =>
      r.stdout.split('\n').flatMap((line) => {
        try {
          const parsed = entry.safeParse(JSON.parse(line));
          return parsed.success ? [parsed.data] : [];
        } catch {
          return [];
        }
      }),
  });
};
