import { defineFact, type Fact } from './cache.js';
import { quoteAll } from '../transport/quote.js';

export interface UnitState {
  id: string;
  load: string; // loaded | not-found | masked | bad-setting ...
  active: string; // active | inactive | failed | activating ...
  sub: string;
  unitFile: string; // enabled | disabled | static | generated | transient | masked | ''
  fragment: string;
}

const PROPS = 'Id,LoadState,ActiveState,SubState,UnitFileState,FragmentPath';

function parseShow(text: string): UnitState[] {
  return text
    .split('\n\n')
    .filter((b) => b.trim() !== '')
    .map((block) => {
      const kv = new Map(block.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
      return {
        id: kv.get('Id') ?? '',
        load: kv.get('LoadState') ?? '',
        active: kv.get('ActiveState') ?? '',
        sub: kv.get('SubState') ?? '',
        unitFile: kv.get('UnitFileState') ?? '',
        fragment: kv.get('FragmentPath') ?? '',
      };
    });
}

const unitFactId = (name: string) => `systemd:${name}`;

export function unitState(name: string): Fact<UnitState> {
  return defineFact({
    id: unitFactId(name),
    command: `systemctl show -p ${PROPS} -- ${quoteAll([name])}`,
    parse: (r) => parseShow(r.stdout)[0] ?? { id: name, load: 'not-found', active: 'inactive', sub: '', unitFile: '', fragment: '' },
  });
}

// Many units' states in one `systemctl show` (one round trip), in the order asked.
export function unitStates(names: readonly string[]): Fact<UnitState[]> {
  return defineFact({
    id: `systemd-batch:${names.join(',')}`,
    command: `systemctl show -p ${PROPS} -- ${quoteAll(names)}`,
    parse: (r) => parseShow(r.stdout),
  });
}

export interface JournalOptions {
  lines?: number;
  // Only lines this syslog identifier wrote (e.g. a script's own `logger -t` lines).
  identifier?: string;
  // The lines this podman container wrote in the unit's run; the unit's own (systemd's and
  // podman's) when it wrote none (e.g. it never started).
  container?: string;
  // Wait up to 10 s for a line containing this text: journald writes asynchronously and a
  // busy host has been seen to take seconds. Only paid on a failure.
  until?: string;
}

// The shell command that prints the last lines a unit logged in its latest run (its current
// InvocationID), blank lines dropped, after flushing journald. What every "why did it fail"
// message quotes.
export function unitJournalCommand(unit: string, o: JournalOptions = {}): string {
  const filter = `\${id:+_SYSTEMD_INVOCATION_ID=$id} -n ${o.lines ?? 15} --no-pager -o cat 2>/dev/null | grep -v '^[[:space:]]*$'`;
  const own = `journalctl -u ${quoteAll([unit])}${o.identifier ? ` -t ${quoteAll([o.identifier])}` : ''} ${filter}`;
  const read = o.container
    ? `out=$(journalctl CONTAINER_NAME=${quoteAll([o.container])} ${filter}); [ -n "$out" ] || out=$(${own})`
    : `out=$(${own})`;
  // On a loaded lab target the read filtered by invocation has been seen to stay empty for the
  // whole wait (cause not found); the unit's last lines, of whichever run, beat no lines.
  const wait = o.until
    ? `for i in $(seq 50); do ${read}; case "$out" in *${quoteAll([o.until])}*) break;; esac; sleep 0.2; done\n[ -n "$out" ] || { id=; ${read}; }`
    : read;
  return `id=$(systemctl show -p InvocationID --value -- ${quoteAll([unit])} 2>/dev/null); journalctl --sync 2>/dev/null
${wait}
printf '%s\\n' "$out"`;
}
