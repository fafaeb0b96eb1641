import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkNames, isValidName, type NameKind } from '../../src/core/names.js';

const valid: Record<NameKind, string[]> = {
  package: ['hello', 'g++', 'libc6:amd64', 'python3.13', 'hello=2.10-5', 'libfoo1:i386=1:2.3~rc1+dfsg-4'],
  unit: ['ssh.service', 'podman-auto-update.timer', 'getty@tty1.service', 'getty@.service', '-.mount', 'dev-disk-by\\x2duuid-1.device', 'user-1000.slice'],
  'quadlet unit': ['authentik-server.container', 'authentik-internal.network', 'data.volume'],
  user: ['admin', 'www-data', '_apt', 'Debian-exim', 'machine$', 'a.b', 'a'.repeat(32)],
  group: ['sudo', 'systemd-journal', 'ops'],
  'sysctl key': ['net.ipv4.ip_forward', 'net/ipv4/conf/eth0.1/rp_filter', 'kernel.printk'],
};
const invalid: Record<NameKind, string[]> = {
  package: ['-oDPkg::Pre-Invoke::=touch /tmp/pwned', '--reinstall', 'a', 'Hello', 'hello world', 'hello;id', '../x', 'hello=', 'hello:', '', 'x\nhello'],
  unit: ['--now', 'ssh', 'ssh.service\nExecStart=x', '../x.service', 'a/b.service', 'x.container', '.service', '', 'a b.service'],
  'quadlet unit': ['../../etc/x.container', 'x.service', '-x', '', 'a/b.container'],
  user: ['-x', '--badname', '1234', '.', '..', 'a b', 'a:b', 'a/b', '', 'a'.repeat(33), 'a$b', 'x\n'],
  group: ['-g', 'root,sudo', '100', ''],
  'sysctl key': ['../../etc/shadow', 'net..ipv4', '-w', '.net', 'net.ipv4.ip_forward=1', 'a b', ''],
};

describe('names that become command operands', () => {
  for (const kind of Object.keys(valid) as NameKind[]) {
    it(`${kind}: accepts ${valid[kind].join(' ')}`, () => {
      for (const n of valid[kind]) assert.ok(isValidName(kind, n), n);
    });
    it(`${kind}: refuses options, paths, separators, empty`, () => {
      for (const n of invalid[kind]) assert.ok(!isValidName(kind, n), JSON.stringify(n));
    });
  }
  it('an invalid name is an input error naming the resource and the value', () => {
    assert.throws(() => checkNames('apt', 'package', ['hello', '-oDPkg::Pre-Invoke::=touch /tmp/pwned']), (e: Error & { kind?: string }) => {
      assert.equal(e.kind, 'input');
      assert.match(e.message, /^apt: "-oDPkg::Pre-Invoke::=touch \/tmp\/pwned" is not a Debian package name .*; nothing was run on the host$/);
      return true;
    });
  });
});
