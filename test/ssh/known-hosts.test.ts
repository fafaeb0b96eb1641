import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { isHostctlError } from '../../src/core/errors.js';
import { addressKeyMismatch, hostKeyName, judgeHostKey, verifyHostKey, type HostKeyPolicy } from '../../src/transport/ssh/host-key.js';
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

const kh = (lines: string[]) => parseKnownHosts(lines.join('\n'), 'kh');

test('judging a key by its one name: known, changed, other types, revoked, unknown', async () => {
  const { a, b, rsa } = keys;
  const name = '[web]:2222';
  assert.equal(judgeHostKey(a.blob, kh([`[web]:2222 ${a.keyType} ${a.b64}`]), name).kind, 'known');
  const changed = judgeHostKey(a.blob, kh(['# x', `[web]:2222 ${b.keyType} ${b.b64}`]), name);
  assert.equal(changed.kind, 'changed');
  assert.equal(changed.kind === 'changed' && changed.entry.line, 2);
  assert.deepEqual(judgeHostKey(a.blob, kh([`[web]:2222 ${rsa.keyType} ${rsa.b64}`]), name), {
    kind: 'other-types',
    types: ['ssh-rsa'],
  });
  assert.equal(
    judgeHostKey(a.blob, kh([`[web]:2222 ${a.keyType} ${a.b64}`, `@revoked * ${a.keyType} ${a.b64}`]), name).kind,
    'revoked',
  );
  assert.equal(judgeHostKey(a.blob, kh([`web ${a.keyType} ${a.b64}`]), name).kind, 'unknown');
});

test('the IP address is no identity: its right key does not outvote another key recorded for the HostName', () => {
  const { a, b } = keys;
  const entries = kh([`10.0.0.1 ${a.keyType} ${a.b64}`, `web.example ${b.keyType} ${b.b64}`]);
  const judgement = judgeHostKey(a.blob, entries, hostKeyName({ host: 'web.example', port: 22, hostKeyAlias: undefined }));
  assert.equal(judgement.kind, 'changed');
  assert.equal(judgement.kind === 'changed' && judgement.entry.line, 2);
  // The address alone vouches for nothing either.
  assert.equal(judgeHostKey(a.blob, kh([`10.0.0.1 ${a.keyType} ${a.b64}`]), 'web.example').kind, 'unknown');
});

test('the inventory alias is no identity: an entry under it alone leaves the host unknown', () => {
  const { a } = keys;
  // Inventory host `web` with ansible_host 10.0.0.1: known_hosts is asked about 10.0.0.1 only.
  const name = hostKeyName({ host: '10.0.0.1', port: 2222, hostKeyAlias: undefined });
  assert.equal(name, '[10.0.0.1]:2222');
  assert.equal(judgeHostKey(a.blob, kh([`[web]:2222 ${a.keyType} ${a.b64}`, `web ${a.keyType} ${a.b64}`]), name).kind, 'unknown');
});

test('HostKeyAlias replaces the HostName, as written and with no port', () => {
  const { a, b } = keys;
  const name = hostKeyName({ host: '10.0.0.1', port: 2222, hostKeyAlias: 'Web-Prod' });
  assert.equal(name, 'web-prod');
  assert.equal(judgeHostKey(a.blob, kh([`web-prod ${a.keyType} ${a.b64}`]), name).kind, 'known');
  // An entry for the HostName no longer counts, for or against.
  assert.equal(judgeHostKey(a.blob, kh([`[10.0.0.1]:2222 ${a.keyType} ${a.b64}`]), name).kind, 'unknown');
  assert.equal(judgeHostKey(a.blob, kh([`[10.0.0.1]:2222 ${b.keyType} ${b.b64}`, `web-prod ${a.keyType} ${a.b64}`]), name).kind, 'known');
});

// A policy that must not record or ask anything; warnings are collected.
function strictPolicy(warnings: string[] = []): HostKeyPolicy {
  return {
    knownHostsFiles: ['kh'],
    writeFile: '/nonexistent/kh',
    acceptNew: true,
    interactive: false,
    hashNew: false,
    prompter: { secret: () => assert.fail('asked for a secret'), confirm: () => assert.fail('asked to confirm') },
    warn: (message) => warnings.push(message),
  };
}
const web = { label: 'web', host: 'web.example', port: 22, name: 'web.example' };

test('@cert-authority alone is refused, naming its line and what to do; a plain key still wins', async () => {
  const { a, b } = keys;
  const entries = kh([`other ${b.keyType} ${b.b64}`, `@cert-authority *.example ${b.keyType} ${b.b64}`]);
  assert.equal(judgeHostKey(a.blob, entries, 'web.example').kind, 'cert-authority');
  // Even with accept-new: the host is not new, its certificate just cannot be checked.
  await assert.rejects(verifyHostKey(a.blob, entries, web, strictPolicy()), (error: unknown) => {
    assert.ok(isHostctlError(error, 'unreachable'));
    assert.match(error.message, /host key for web \(web\.example\) cannot be verified: only the @cert-authority line kh:2 vouches for web\.example, and hostctl cannot check host certificates/);
    assert.ok(error.message.includes(fingerprint(a.blob)), error.message);
    assert.match(error.hint ?? '', /add the host's own key for web\.example to \/nonexistent\/kh: `ssh-keyscan -p 22 web\.example \| ssh-keygen -lf -` shows its fingerprints/);
    return true;
  });
  assert.equal(judgeHostKey(a.blob, [...entries, ...kh([`web.example ${a.keyType} ${a.b64}`])], 'web.example').kind, 'known');
  assert.equal(judgeHostKey(a.blob, [...entries, ...kh([`web.example ${b.keyType} ${b.b64}`])], 'web.example').kind, 'changed');
});

test('CheckHostIP: another key under the address warns, naming the line and both fingerprints, and decides nothing', async () => {
  const { a, b } = keys;
  const entries = kh([`web.example ${a.keyType} ${a.b64}`, `# x`, `10.0.0.1,10.0.0.2 ${b.keyType} ${b.b64}`]);
  assert.equal(addressKeyMismatch(a.blob, entries, '10.0.0.1')?.line, 3);
  const warnings: string[] = [];
  await verifyHostKey(a.blob, entries, { ...web, address: '10.0.0.1' }, strictPolicy(warnings));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^WARNING: the ED25519 host key of web \(web\.example\) \(SHA256:\S+\) differs from the key kh:3 holds for its IP address 10\.0\.0\.1 \(SHA256:\S+\)/);
  assert.ok(warnings[0]!.includes(fingerprint(a.blob)) && warnings[0]!.includes(fingerprint(b.blob)), warnings[0]);
  assert.match(warnings[0]!, /ssh-keygen -R 10\.0\.0\.1 -f kh/);
  // The same key under the address, another type, or no address to check: silence.
  for (const [extra, address] of [
    [`10.0.0.1 ${a.keyType} ${a.b64}`, '10.0.0.1'],
    ['', '10.0.0.9'],
    ['', undefined],
  ] as const) {
    const quiet: string[] = [];
    await verifyHostKey(a.blob, [...entries, ...kh([extra])], { ...web, address }, strictPolicy(quiet));
    assert.deepEqual(quiet, [], `${extra} ${address}`);
  }
  assert.equal(addressKeyMismatch(a.blob, kh([`10.0.0.1 ${keys.rsa.keyType} ${keys.rsa.b64}`]), '10.0.0.1'), undefined);
  // A changed key for the name is still refused, with the warning beside it.
  const refused: string[] = [];
  await assert.rejects(
    verifyHostKey(b.blob, kh([`web.example ${a.keyType} ${a.b64}`, `10.0.0.1 ${a.keyType} ${a.b64}`]), { ...web, address: '10.0.0.1' }, strictPolicy(refused)),
    /has CHANGED/,
  );
  assert.equal(refused.length, 1);
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
