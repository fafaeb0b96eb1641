import { inputError } from './errors.js';

// Names that end up as operands of commands on a host (apt-get, systemctl, useradd, sysctl):
// each must be a name its command takes as a name, never an option (`-oDPkg::Pre-Invoke::=...`)
// nor a path. Quoting keeps the shell out; these rules keep the command's own parser out.
// Checked before the resource reads or changes anything; a bad one is an input error naming
// the resource and the value.

// A Debian package (Policy 5.6.1: lower case, digits, + - ., two or more, starting with a
// letter or digit), optionally `:arch` and `=version` as apt-get takes them.
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9][a-z0-9-]*)?(?:=[0-9][A-Za-z0-9.+~:-]*)?$/;

// A systemd unit (systemd.unit(5): letters, digits, : - _ . \, one @ for a template or an
// instance, a type suffix; at most 255 characters).
const UNIT_TYPES = ['service', 'socket', 'device', 'mount', 'automount', 'swap', 'target', 'path', 'timer', 'slice', 'scope'];
// A Quadlet source unit (podman-systemd.unit(5)).
const QUADLET_TYPES = ['container', 'volume', 'network', 'kube', 'image', 'build', 'pod', 'artifact'];
const unitRule = (types: string[]) => new RegExp(`^[A-Za-z0-9:_\\\\-][A-Za-z0-9:_.\\\\-]*(?:@[A-Za-z0-9:_.\\\\-]*)?\\.(?:${types.join('|')})$`);
const UNIT = unitRule(UNIT_TYPES);
const QUADLET = unitRule(QUADLET_TYPES);

// A user or group as shadow's useradd/groupadd take them (is_valid_name): letters, digits,
// _ . -, not starting with -, an optional trailing $ (Samba machine accounts), not all
// digits (it would read as an id), not . or .., at most 32 characters.
const ACCOUNT = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/;

// A sysctl key (net.ipv4.ip_forward, or with / where a part holds a dot: net/ipv4/conf/eth0.1/rp_filter).
const SYSCTL = /^[A-Za-z0-9_][A-Za-z0-9_:@+-]*(?:[./][A-Za-z0-9_][A-Za-z0-9_:@+-]*)*$/;

export type NameKind = 'package' | 'unit' | 'quadlet unit' | 'user' | 'group' | 'sysctl key';

const rules: Record<NameKind, { test(name: string): boolean; what: string }> = {
  package: { test: (n) => PACKAGE.test(n), what: 'a Debian package name (a-z 0-9 + - ., optionally :arch and =version)' },
  unit: { test: (n) => n.length <= 255 && UNIT.test(n), what: `a systemd unit name (letters, digits, : _ . - \\, an optional @instance, and .${UNIT_TYPES.join('/.')})` },
  'quadlet unit': { test: (n) => n.length <= 255 && QUADLET.test(n), what: `a Quadlet unit name (letters, digits, : _ . - \\, and .${QUADLET_TYPES.join('/.')})` },
  user: { test: (n) => accountName(n), what: 'a user name useradd accepts (letters, digits, _ . -, not starting with -, not all digits, at most 32)' },
  group: { test: (n) => accountName(n), what: 'a group name groupadd accepts (letters, digits, _ . -, not starting with -, not all digits, at most 32)' },
  'sysctl key': { test: (n) => SYSCTL.test(n), what: 'a sysctl key (letters, digits, _ - separated by . or /)' },
};

function accountName(n: string): boolean {
  return n.length <= 32 && ACCOUNT.test(n) && !/^\d+$/.test(n) && n !== '.' && n !== '..';
}

export const isValidName = (kind: NameKind, name: string): boolean => rules[kind].test(name);

// What a valid name of this kind looks like, for messages.
export const nameRule = (kind: NameKind): string => rules[kind].what;

// Throws unless every name is valid: `resource` says which task it came from ("apt", "user").
export function checkNames(resource: string, kind: NameKind, names: readonly string[]): void {
  for (const name of names) {
    if (typeof name !== 'string' || !rules[kind].test(name)) {
      throw inputError(`${resource}: ${JSON.stringify(name)} is not ${rules[kind].what}; nothing was run on the host`, {
        hint: `fix the ${kind} name in the role or its variables`,
      });
    }
  }
}
