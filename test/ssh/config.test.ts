import assert from 'node:assert/strict';
import { test } from 'node:test';
import SSHConfig from 'ssh-config';
import { isHostctlError } from '../../src/core/errors.js';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSshConfig, parseJumpSpec, resolveTarget, type LocalEnv } from '../../src/transport/ssh/config.js';
import { tempDir } from '../helpers/cli.js';

const existing = new Set(['/home/me/.ssh/id_ed25519', '/home/me/.ssh/deploy', '/keys/inv']);
const env: LocalEnv = { home: '/home/me', localUser: 'me', exists: (p) => existing.has(p) };

const config = SSHConfig.parse(`
Host bastion
  HostName bastion.example.net
  User jumper
  Port 2200
  IdentityFile ~/.ssh/deploy

Host web-* !web-legacy
  HostName %h.internal.example
  User deploy
  Port 2222
  IdentityFile ~/.ssh/deploy
  IdentityFile ~/.ssh/missing
  ProxyJump bastion,admin@10.9.9.9:2022

Host 10.1.*
  User ops
  StrictHostKeyChecking accept-new
  UserKnownHostsFile ~/.ssh/lab_known_hosts
  HashKnownHosts yes
  ConnectTimeout 3

Host proxied
  ProxyCommand nc %h %p

Host *
  User fallback
  Port 2201
`);

test('a Host pattern supplies HostName (%h), User, Port, keys and a ProxyJump chain', () => {
  const t = resolveTarget({ alias: 'web-1' }, config, env);
  assert.equal(t.label, 'web-1');
  assert.equal(t.host, 'web-1.internal.example');
  assert.equal(t.user, 'deploy');
  assert.equal(t.port, 2222);
  // Config keys that exist, then the default keys that exist.
  assert.deepEqual(t.identityFiles, ['/home/me/.ssh/deploy', '/home/me/.ssh/id_ed25519']);
  assert.deepEqual(
    t.jumps.map((j) => [j.label, j.host, j.port, j.user]),
    [
      ['bastion', 'bastion.example.net', 2200, 'jumper'],
      ['10.9.9.9', '10.9.9.9', 2022, 'admin'],
    ],
  );
  assert.deepEqual(t.knownHostsFiles.slice(0, 1), ['/home/me/.ssh/known_hosts']);
  assert.ok(t.knownHostsFiles.includes('/etc/ssh/ssh_known_hosts'));
  assert.equal(t.acceptNewHostKeys, false);
  assert.equal(t.connectTimeoutMs, 10_000);
});

test('inventory values win over the config', () => {
  const t = resolveTarget({ alias: 'web-1', user: 'root', port: 22, privateKeyFiles: ['/keys/inv'] }, config, env);
  assert.equal(t.user, 'root');
  assert.equal(t.port, 22);
  assert.equal(t.host, 'web-1.internal.example');
  assert.deepEqual(t.identityFiles, ['/keys/inv', '/home/me/.ssh/deploy', '/home/me/.ssh/id_ed25519']);
});

test('ansible_host is what the config is matched against, as with `ssh <ansible_host>`', () => {
  const t = resolveTarget({ alias: 'web-1', host: '10.1.0.5' }, config, env);
  assert.equal(t.host, '10.1.0.5');
  assert.equal(t.user, 'ops');
  assert.equal(t.port, 2201);
  assert.deepEqual(t.jumps, []);
  assert.equal(t.acceptNewHostKeys, true);
  assert.equal(t.hashKnownHosts, true);
  assert.equal(t.connectTimeoutMs, 3000);
  assert.equal(t.knownHostsFiles[0], '/home/me/.ssh/lab_known_hosts');
  // The explicit option wins over StrictHostKeyChecking.
  assert.equal(resolveTarget({ alias: 'x', host: '10.1.0.5', acceptNewHostKeys: false }, config, env).acceptNewHostKeys, false);
});

test('a negated pattern excludes a host; Host * fills the gaps; no config means defaults', () => {
  const legacy = resolveTarget({ alias: 'web-legacy' }, config, env);
  assert.equal(legacy.host, 'web-legacy');
  assert.equal(legacy.user, 'fallback');
  assert.equal(legacy.port, 2201);
  const bare = resolveTarget({ alias: 'plain' }, undefined, env);
  assert.deepEqual([bare.host, bare.user, bare.port], ['plain', 'me', 22]);
});

test('an explicit known_hosts file stands alone', () => {
  const t = resolveTarget({ alias: 'web-1', knownHostsFile: '~/kh' }, config, env);
  assert.deepEqual(t.knownHostsFiles, ['/home/me/kh']);
});

test('a missing inventory key file and ProxyCommand are input errors', () => {
  assert.throws(
    () => resolveTarget({ alias: 'a', privateKeyFiles: ['/nope'] }, undefined, env),
    (e: unknown) => isHostctlError(e, 'input') && /\/nope does not exist/.test(e.message),
  );
  assert.throws(
    () => resolveTarget({ alias: 'proxied' }, config, env),
    (e: unknown) => isHostctlError(e, 'input') && /ProxyCommand/.test(e.message),
  );
});

test('ProxyJump entries', () => {
  assert.deepEqual(parseJumpSpec('jump'), { host: 'jump' });
  assert.deepEqual(parseJumpSpec('me@jump:2200'), { user: 'me', host: 'jump', port: 2200 });
  assert.deepEqual(parseJumpSpec('ssh://me@jump:2200'), { user: 'me', host: 'jump', port: 2200 });
  assert.deepEqual(parseJumpSpec('[fe80::1]:22'), { host: 'fe80::1', port: 22 });
  assert.deepEqual(parseJumpSpec('fe80::1'), { host: 'fe80::1' });
  assert.throws(() => parseJumpSpec('me@jump:99999'));
});

test('Include: globbed files under ~/.ssh take the line\'s place, inside a Host block too', async () => {
  await using d = await tempDir();
  const home: LocalEnv = { home: d.path, localUser: 'me', exists: existsSync };
  const ssh = join(d.path, '.ssh');
  await mkdir(join(ssh, 'config.d'), { recursive: true });
  // Included first, so its values win over the Host * below (first value wins, as in ssh).
  await writeFile(join(ssh, 'config'), 'Include config.d/*.conf ~/.ssh/none-such\nHost db\n  Include db-user\nHost *\n  User fallback\n  Port 2201\n');
  await writeFile(join(ssh, 'config.d', '10-web.conf'), 'Host web\n  HostName web.example.net\n  User deploy\n');
  await writeFile(join(ssh, 'config.d', '20-more.conf'), 'Host web api\n  Port 2222\n');
  await writeFile(join(ssh, 'config.d', 'ignored.txt'), 'Host web\n  User wrong\n');
  await writeFile(join(ssh, 'config.d', '.hidden.conf'), 'Host web\n  User hidden\n');
  await writeFile(join(ssh, 'db-user'), 'User dba\n');
  const config = loadSshConfig(undefined, home);

  const web = resolveTarget({ alias: 'web' }, config, home);
  assert.deepEqual([web.host, web.user, web.port], ['web.example.net', 'deploy', 2222]);
  const db = resolveTarget({ alias: 'db' }, config, home);
  assert.deepEqual([db.host, db.user, db.port], ['db', 'dba', 2201]);
});

test('Include: classes, negation, a quoted name with a space, an unclosed [ taken literally', async () => {
  await using d = await tempDir();
  const home: LocalEnv = { home: d.path, localUser: 'me', exists: existsSync };
  const dir = join(d.path, '.ssh', 'c');
  await mkdir(dir, { recursive: true });
  for (const name of ['a1', 'b2', 'c3', 'x[y', 'sp ace']) await writeFile(join(dir, `${name}.conf`), `Host ${name.replace(/\W/g, '')}\n  User from-${name.replace(/\W/g, '')}\n`);
  await writeFile(join(d.path, '.ssh', 'config'), 'Include c/[!a]?.conf\nInclude "c/sp ace.conf" c/x[y.conf\n');
  const config = loadSshConfig(undefined, home);
  const user = (host: string) => resolveTarget({ alias: host }, config, home).user;
  assert.deepEqual(['a1', 'b2', 'c3', 'space', 'xy'].map(user), ['me', 'from-b2', 'from-c3', 'from-space', 'from-xy']);
});

test('Include: a file that includes itself is refused, naming the file', async () => {
  await using d = await tempDir();
  const home: LocalEnv = { home: d.path, localUser: 'me', exists: existsSync };
  await mkdir(join(d.path, '.ssh'));
  await writeFile(join(d.path, '.ssh', 'config'), 'Include config\n');
  assert.throws(
    () => loadSshConfig(undefined, home),
    (e: unknown) => isHostctlError(e, 'input') && /ssh config .*\.ssh\/config: more than 16 nested Includes/.test((e as Error).message),
  );
});

test('HostKeyAlias and CheckHostIP, for the target and each ProxyJump hop', () => {
  const c = SSHConfig.parse(`
Host app
  HostName 10.5.0.7
  HostKeyAlias app-prod
  CheckHostIP no
  ProxyJump gate
Host gate
  HostName gate.example.net
  HostKeyAlias gate-prod
`);
  const t = resolveTarget({ alias: 'app' }, c, env);
  assert.deepEqual([t.host, t.hostKeyAlias, t.checkHostIp], ['10.5.0.7', 'app-prod', false]);
  assert.deepEqual(t.jumps.map((j) => [j.host, j.hostKeyAlias, j.checkHostIp]), [['gate.example.net', 'gate-prod', true]]);
  // Neither set: the HostName is the identity, and CheckHostIP warns.
  const bare = resolveTarget({ alias: 'plain' }, undefined, env);
  assert.deepEqual([bare.hostKeyAlias, bare.checkHostIp], [undefined, true]);
});
