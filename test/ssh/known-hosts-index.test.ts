import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { appendKnownHost, formatKnownHostLine, hostFieldMatches, readKnownHosts } from '../../src/transport/ssh/known-hosts.js';
import { keygen, tempDir } from './sshd.js';

// readKnownHosts(files, names) parses each file once per content and looks names up in an
// index (a handshake of a 1,000-host run no longer scans the whole file): what it returns,
// once matched, must be exactly what a scan of every entry finds, in the same order.

const blob = async (dir: string, name: string) => Buffer.from((await readFile(`${await keygen(join(dir, name))}.pub`, 'utf8')).split(' ')[1]!, 'base64');

test('the index finds what a full scan finds, for plain, wildcard, negated, hashed and marked lines', async () => {
  const dir = await tempDir();
  try {
    const [a, b, c] = [await blob(dir, 'a'), await blob(dir, 'b'), await blob(dir, 'c')];
    const line = (hosts: string, key: Buffer) => `${hosts} ${formatKnownHostLine('x', key, false).split(' ').slice(1).join(' ')}`;
    const file = join(dir, 'known_hosts');
    await writeFile(file, [
      line('web1,Web2.Example,10.0.0.5', a),
      line('[web1]:2222', b),
      line('*.example,!bad.example', c),
      line('web?', b),
      formatKnownHostLine('hashed.example', a, true),
      `@revoked ${line('web1', c)}`,
      `@cert-authority ${line('*.example', a)}`,
      '# comment',
      line('web1', c),
      '',
    ].join('\n'));
    for (const name of ['web1', 'web2.example', 'WEB2.EXAMPLE'.toLowerCase(), '[web1]:2222', '10.0.0.5', 'bad.example', 'good.example', 'hashed.example', 'web9', 'nothing']) {
      const scanned = (await readKnownHosts([file])).filter((e) => hostFieldMatches(e.hosts, name));
      const indexed = (await readKnownHosts([file], [name])).filter((e) => hostFieldMatches(e.hosts, name));
      assert.deepEqual(indexed, scanned, name);
    }
    // Two names (the host's and its address's) get both sets, in file order.
    const both = (await readKnownHosts([file], ['web1', '10.0.0.5'])).map((e) => e.line);
    assert.deepEqual(both, [...both].sort((x, y) => x - y));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a key appended (accept-new, another process) or a file rewritten is seen by the next read', async () => {
  const dir = await tempDir();
  try {
    const [a, b] = [await blob(dir, 'a'), await blob(dir, 'b')];
    const file = join(dir, 'known_hosts');
    await writeFile(file, `${formatKnownHostLine('one', a, false)}\n`);
    assert.equal((await readKnownHosts([file], ['two'])).length, 0);
    await appendKnownHost(file, 'two', b, false);
    assert.deepEqual((await readKnownHosts([file], ['two'])).map((e) => e.key), [b]);
    await writeFile(file, `${formatKnownHostLine('two', a, false)}\n`);
    assert.deepEqual((await readKnownHosts([file], ['two'])).map((e) => e.key), [a]);
    await rm(file);
    assert.deepEqual(await readKnownHosts([file], ['two']), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
