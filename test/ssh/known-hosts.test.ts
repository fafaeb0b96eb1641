import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { judgeHostKey } from '../../src/transport/ssh/host-key.js';
import {
  appendKnownHost,
  fingerprint,
  formatKnownHostLine,
  hostFieldMatches,
  knownHostName,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
} from '../../src/transport/ssh/known-hosts.js';
import { fingerprintOf, keygen, tempDir } from './sshd.js';

// Two real ed25519 public keys (blobs) and one RSA, from ssh-keygen.
async function publicKeys() {
  const dir = await tempDir();
  const read = async (type: string, name: string) => {
    const path = await keygen(join(dir, name), { type });
    const [keyType, b64] = (await readFile(`${path}.pub`, 'utf8')).split(' ');
    return { path, keyType: keyType ?? '', b64: b64 ?? '', blob: Buffer.from(b64 ?? '', 'base64') };
  };
  return { dir, a: await read('ed25519', 'a'), b: await read('ed25519', 'b'), rsa: await read('rsa', 'r') };
}

let keys: Awaited<ReturnType<typeof publicKeys>>;
before(async () => {
  keys = await publicKeys();
});
after(async () => {
  await rm(keys.dir, { recursive: true, force: true });
});

test('knownHostName: bare on port 22, bracketed otherwise, lower-cased', () => {
  assert.equal(knownHostName('Web.Example', 22), 'web.example');
  assert.equal(knownHostName('10.0.0.1', 2222), '[10.0.0.1]:2222');
});

test('host field patterns: lists, wildcards, negation, case', () => {
  assert.ok(hostFieldMatches('a,b,web.example', 'web.example'));
  assert.ok(hostFieldMatches('*.example', 'WEB.example'));
  assert.ok(hostFieldMatches('10.0.0.?', '10.0.0.7'));
  assert.ok(!hostFieldMatches('10.0.0.?', '10.0.0.17'));
  assert.ok(hostFieldMatches('[10.0.0.1]:2222', '[10.0.0.1]:2222'));
  assert.ok(!hostFieldMatches('10.0.0.1', '[10.0.0.1]:2222'), 'a port-22 entry does not cover another port');
  assert.ok(!hostFieldMatches('*.example,!db.example', 'db.example'));
  assert.ok(hostFieldMatches('*.example,!db.example', 'web.example'));
});

test('hashed entries written by ssh-keygen -H match, and ours are found by ssh-keygen -F', async () => {
  const { dir, a } = keys;
  const file = join(dir, 'known_hosts');
  await writeFile(file, `[10.1.2.3]:2222 ${a.keyType} ${a.b64}\nweb.example ${a.keyType} ${a.b64}\n`);
  await execa('ssh-keygen', ['-H', '-f', file]);
  const entries = parseKnownHosts(await readFile(file, 'utf8'), file);
  assert.equal(entries.length, 2);
  assert.ok(entries.every((e) => e.hosts.startsWith('|1|')));
  assert.ok(hostFieldMatches(entries[0]?.hosts ?? '', '[10.1.2.3]:2222'));
  assert.ok(!hostFieldMatches(entries[0]?.hosts ?? '', '10.1.2.3'));
  assert.ok(hostFieldMatches(entries[1]?.hosts ?? '', 'web.example'));

  const ours = join(dir, 'ours');
  await appendKnownHost(ours, '[db.example]:2200', a.blob, true);
  await appendKnownHost(ours, 'plain.example', a.blob, false);
  const text = await readFile(ours, 'utf8');
  assert.match(text, /^\|1\|[^ ]+ ssh-ed25519 [^ ]+\nplain\.example ssh-ed25519 [^ ]+\n$/);
  await execa('ssh-keygen', ['-F', '[db.example]:2200', '-f', ours]);
  await execa('ssh-keygen', ['-F', 'plain.example', '-f', ours]);
});

test('appending repairs a missing final newline', async () => {
  const { dir, a } = keys;
  const file = join(dir, 'kh');
  await writeFile(file, `old.example ${a.keyType} ${a.b64}`);
  await appendKnownHost(file, 'new.example', a.blob, false);
  assert.equal(await readFile(file, 'utf8'), `old.example ${a.keyType} ${a.b64}\nnew.example ${a.keyType} ${a.b64}\n`);
});

test('parsing: comments, markers, damaged lines, line numbers', async () => {
  const { a, b } = keys;
  const text = [
    '# comment',
    '',
    `web ${a.keyType} ${a.b64} a comment`,
    `@revoked * ${b.keyType} ${b.b64}`,
    `@cert-authority *.example ${b.keyType} ${b.b64}`,
    `@bogus x ${b.keyType} ${b.b64}`,
    `broken ${a.keyType} AAAA`,
    `mismatch ssh-rsa ${a.b64}`,
    `db ${b.keyType} ${b.b64}`,
  ].join('\n');
  const entries = parseKnownHosts(text, 'kh');
  assert.deepEqual(
    entries.map((e) => [e.line, e.marker, e.hosts]),
    [
      [3, undefined, 'web'],
      [4, 'revoked', '*'],
      [5, 'cert-authority', '*.example'],
      [9, undefined, 'db'],
    ],
  );
});

test('judging a key: known, changed, other types, revoked, unknown', async () => {
  const { a, b, rsa } = keys;
  const kh = (lines: string[]) => parseKnownHosts(lines.join('\n'), 'kh');
  const names = ['[10.0.0.1]:2222', '[web]:2222'];
  assert.equal(judgeHostKey(a.blob, kh([`[web]:2222 ${a.keyType} ${a.b64}`]), names).kind, 'known');
  // A stale entry under one name does not override a match under another.
  assert.equal(
    judgeHostKey(a.blob, kh([`[web]:2222 ${b.keyType} ${b.b64}`, `[10.0.0.1]:2222 ${a.keyType} ${a.b64}`]), names).kind,
    'known',
  );
  const changed = judgeHostKey(a.blob, kh(['# x', `[10.0.0.1]:2222 ${b.keyType} ${b.b64}`]), names);
  assert.equal(changed.kind, 'changed');
  assert.equal(changed.kind === 'changed' && changed.entry.line, 2);
  assert.equal(changed.kind === 'changed' && changed.name, '[10.0.0.1]:2222');
  assert.deepEqual(judgeHostKey(a.blob, kh([`[web]:2222 ${rsa.keyType} ${rsa.b64}`]), names), {
    kind: 'other-types',
    types: ['ssh-rsa'],
  });
  assert.equal(
    judgeHostKey(a.blob, kh([`[web]:2222 ${a.keyType} ${a.b64}`, `@revoked * ${a.keyType} ${a.b64}`]), names).kind,
    'revoked',
  );
  assert.equal(judgeHostKey(a.blob, kh([`web ${a.keyType} ${a.b64}`]), names).kind, 'unknown');
});

test('fingerprints match ssh-keygen -l', async () => {
  const { a, rsa } = keys;
  assert.equal(fingerprint(a.blob), await fingerprintOf(`${a.path}.pub`));
  assert.equal(fingerprint(rsa.blob), await fingerprintOf(`${rsa.path}.pub`));
  assert.equal(formatKnownHostLine('[h]:2', a.blob, false), `[h]:2 ${a.keyType} ${a.b64}`);
});

test('known key types are asked for first', () => {
  assert.deepEqual(preferredHostKeyAlgorithms(new Set(['ssh-rsa'])).slice(0, 3), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  assert.equal(preferredHostKeyAlgorithms(new Set())[0], 'ssh-ed25519');
  assert.equal(preferredHostKeyAlgorithms(new Set(['ecdsa-sha2-nistp384']))[0], 'ecdsa-sha2-nistp384');
});
