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
