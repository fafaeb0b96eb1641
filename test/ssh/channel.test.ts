import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { HostctlError, isHostctlError } from '../../src/core/errors.js';
import { Connection } from '../../src/transport/connection.js';
import { SshChannel, type SshChannelOptions } from '../../src/transport/ssh/channel.js';
import type { Prompter } from '../../src/transport/ssh/prompt.js';
import { freePort, keygen, startSshd, tempDir, type Sshd } from './sshd.js';

let sshd: Sshd;
let work: string;
let knownHosts: string;
let emptyConfig: string;

before(async () => {
  sshd = await startSshd();
  work = await tempDir();
  knownHosts = join(work, 'known_hosts');
  await writeFile(knownHosts, `${sshd.knownHostsLine()}\n`);
  emptyConfig = join(work, 'ssh_config');
  await writeFile(emptyConfig, '');
});

after(async () => {
  await sshd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

// A channel to the test sshd, isolated from the machine: no agent, no ~/.ssh.
function channel(extra: Partial<SshChannelOptions> = {}): SshChannel {
  return new SshChannel({
    alias: 'target',
    host: '127.0.0.1',
    port: sshd.port,
    user: 'root',
    privateKeyFiles: [sshd.clientKey],
    knownHostsFile: knownHosts,
    sshConfigFile: emptyConfig,
    agentSocket: false,
    connectTimeoutMs: 3000,
    ...extra,
  });
}

async function withChannel<T>(ch: SshChannel, fn: (ch: SshChannel) => Promise<T>): Promise<T> {
  try {
    return await fn(ch);
  } finally {
    await ch.close();
  }
}

// Asserts a HostctlError of `kind` whose message (and hint) match.
async function rejectsWith(
  promise: Promise<unknown>,
  kind: HostctlError['kind'],
  message: RegExp,
  hint?: RegExp,
): Promise<HostctlError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isHostctlError(error), `expected a HostctlError, got ${String(error)}`);
    assert.equal(error.kind, kind, error.message);
    assert.match(error.message, message);
    if (hint) assert.match(error.hint ?? '', hint);
    return error;
  }
  assert.fail('expected a rejection');
}

const neverAsked: Prompter = {
  secret: async () => assert.fail('no passphrase should be asked'),
  confirm: async () => assert.fail('no host key question should be asked'),
};

describe('run', () => {
  test('feeds stdin, collects stdout as bytes and stderr as text, returns the exit code', async () => {
    await withChannel(channel(), async (ch) => {
      const r = await ch.run('cat; echo oops >&2; exit 3', { stdin: 'hello\n' });
      assert.equal(r.code, 3);
      assert.deepEqual(r.stdout, Buffer.from('hello\n'));
      assert.equal(r.stderr, 'oops\n');

      const bin = Buffer.from([0, 1, 2, 255, 254, 10]);
      const echoed = await ch.run('cat', { stdin: bin });
      assert.deepEqual(echoed.stdout, bin);

      const big = Buffer.alloc(3 * 1024 * 1024, 'x');
      const count = await ch.run('wc -c', { stdin: big });
      assert.equal(count.stdout.toString().trim(), String(big.length));
    });
  });

  test('runs with the login shell and reports a signal as 128+n', async () => {
    await withChannel(channel(), async (ch) => {
      const shell = await ch.run('echo "$HOME"; [ -n "$BASH_VERSION" ] && echo bash');
      assert.equal(shell.stdout.toString(), '/root\nbash\n');
      const killed = await ch.run('kill -TERM $$');
      assert.equal(killed.code, 128 + 15);
    });
  });

  test('timeoutMs stops the command; abort interrupts it; the connection stays usable', async () => {
    await withChannel(channel(), async (ch) => {
      const t0 = Date.now();
      await rejectsWith(ch.run('sleep 20', { timeoutMs: 300 }), 'host', /timed out after 300 ms: sleep 20/);
      assert.ok(Date.now() - t0 < 3000);

      const controller = new AbortController();
      setTimeout(() => controller.abort(), 200);
      await rejectsWith(ch.run('sleep 20', { signal: controller.signal }), 'interrupted', /interrupted: sleep 20/);

      assert.equal((await ch.run('echo still here')).stdout.toString(), 'still here\n');
    });
  });

  test('20 concurrent runs share ONE TCP connection, at most 8 channels at a time', async () => {
    const before = sshd.connections();
    const gate = join(work, 'gate');
    await mkdir(gate, { recursive: true });
    await withChannel(channel(), async (ch) => {
      // Each command marks itself busy, waits, counts the busy ones, then leaves.
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          ch.run(`touch ${gate}/${i}; sleep 0.3; ls ${gate} | wc -l; rm ${gate}/${i}; echo ${i}`),
        ),
      );
      const seen = results.map((r) => r.stdout.toString().trim().split('\n'));
      assert.deepEqual(
        seen.map((lines) => Number(lines[1])),
        Array.from({ length: 20 }, (_, i) => i),
      );
      const busy = Math.max(...seen.map((lines) => Number(lines[0])));
      assert.ok(busy <= 8, `${busy} commands ran at once`);
      assert.ok(busy >= 2, 'commands should overlap');
      assert.ok(results.every((r) => r.code === 0));
    });
    assert.equal(sshd.connections() - before, 1);
  });
});

describe('host keys', () => {
  test('a plain known_hosts entry is accepted, also among other hosts and as a pattern', async () => {
    const file = join(work, 'kh-plain');
    await writeFile(
      file,
      [
        '# a comment',
        'other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKcJdSTwVGrdf4EhWjsMIuCjR8tG4YiV5nyr0xE2Ccn4',
        `other,[127.0.0.*]:${sshd.port} ${sshd.hostKeyPublic}`,
      ].join('\n'),
    );
    await withChannel(channel({ knownHostsFile: file, interactive: true, prompter: neverAsked }), async (ch) => {
      assert.equal((await ch.run('echo ok')).stdout.toString(), 'ok\n');
    });
  });

  test('a hashed entry (ssh-keygen -H) is accepted', async () => {
    const file = join(work, 'kh-hashed');
    await writeFile(file, `${sshd.knownHostsLine()}\n`);
    await execa('ssh-keygen', ['-H', '-f', file]);
    assert.match(await readFile(file, 'utf8'), /^\|1\|/);
    await withChannel(channel({ knownHostsFile: file }), async (ch) => {
      assert.equal((await ch.run('echo ok')).stdout.toString(), 'ok\n');
    });
  });

  test('the inventory name is no known_hosts name: an entry under it alone leaves the host unknown', async () => {
    // OpenSSH looks the host up by its HostName (here 127.0.0.1) only.
    const file = join(work, 'kh-alias');
    await writeFile(file, `${sshd.knownHostsLine(`[target]:${sshd.port}`)}\n`);
    await rejectsWith(channel({ knownHostsFile: file }).open(), 'unreachable', /host key for target \(\[127\.0\.0\.1\]:\d+\) is not known/);
  });

  test('a CHANGED key is refused with its fingerprint, the file and line, and the fix', async () => {
    const file = join(work, 'kh-changed');
    const other = await keygen(join(work, 'other-host-key'));
    const otherPub = (await readFile(`${other}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(file, `unrelated.example ${otherPub}\n[127.0.0.1]:${sshd.port} ${otherPub}\n`);
    const before = sshd.connections();
    const error = await rejectsWith(
      channel({ knownHostsFile: file, acceptNewHostKeys: true, interactive: true, prompter: neverAsked }).open(),
      'unreachable',
      /host key for target \(\[127\.0\.0\.1\]:\d+\) has CHANGED/,
      /ssh-keygen -R '\[127\.0\.0\.1\]:\d+' -f /,
    );
    assert.ok(error.message.includes(sshd.hostKeyFingerprint), error.message);
    assert.ok(error.message.includes(`${file}:2`), error.message);
    assert.equal(sshd.connections() - before, 1, 'a refused key is not retried');
  });

  test('an UNKNOWN key is refused when no one can be asked', async () => {
    const file = join(work, 'kh-empty');
    await writeFile(file, '');
    const error = await rejectsWith(
      channel({ knownHostsFile: file }).open(),
      'unreachable',
      /host key for target .* is not known/,
      /--accept-new-host-keys/,
    );
    assert.ok(error.message.includes(sshd.hostKeyFingerprint), error.message);
    assert.equal(await readFile(file, 'utf8'), '');
  });

  test('acceptNewHostKeys records the key the way OpenSSH does, and it is known next time', async () => {
    const file = join(work, 'fresh', '.ssh', 'known_hosts');
    await withChannel(channel({ knownHostsFile: file, acceptNewHostKeys: true }), async (ch) => {
      assert.equal((await ch.run('echo ok')).stdout.toString(), 'ok\n');
    });
    assert.equal(await readFile(file, 'utf8'), `[127.0.0.1]:${sshd.port} ${sshd.hostKeyPublic}\n`);
    // OpenSSH itself finds it.
    await execa('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', file]);
    await withChannel(channel({ knownHostsFile: file, acceptNewHostKeys: false }), async (ch) => {
      assert.equal((await ch.run('echo again')).stdout.toString(), 'again\n');
    });
  });

  test('interactive: an unknown key is asked about; yes records it, no refuses', async () => {
    const file = join(work, 'kh-interactive');
    const questions: string[] = [];
    const answering = (answer: boolean): Prompter => ({
      secret: neverAsked.secret,
      confirm: async (q) => {
        questions.push(q);
        return answer;
      },
    });
    await rejectsWith(
      channel({ knownHostsFile: file, interactive: true, prompter: answering(false) }).open(),
      'unreachable',
      /was not accepted/,
    );
    await withChannel(channel({ knownHostsFile: file, interactive: true, prompter: answering(true) }), (ch) => ch.open());
    assert.equal(questions.length, 2);
    assert.ok(questions[0]?.includes(sshd.hostKeyFingerprint));
    assert.match(questions[0] ?? '', /\(yes\/no\)\? $/);
    assert.match(await readFile(file, 'utf8'), new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 `));
  });

  test('a @revoked key is refused even when also listed as known', async () => {
    const file = join(work, 'kh-revoked');
    await writeFile(file, `${sshd.knownHostsLine()}\n@revoked * ${sshd.hostKeyPublic}\n`);
    await rejectsWith(channel({ knownHostsFile: file }).open(), 'unreachable', /REVOKED.*kh-revoked:2/);
  });
});

describe('connecting', () => {
  test('a closed port is unreachable, quickly, after a few retries', async () => {
    const port = await freePort();
    const t0 = Date.now();
    await rejectsWith(
      channel({ port }).open(),
      'unreachable',
      new RegExp(`^host target \\(127\\.0\\.0\\.1:${port}\\) is unreachable: .*ECONNREFUSED`),
    );
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  });

  test('a server that never speaks SSH times out', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      await rejectsWith(
        channel({ port, connectTimeoutMs: 300, connectRetries: 0 }).open(),
        'unreachable',
        /is unreachable: no SSH handshake within 300 ms/,
      );
    } finally {
      silent.close();
    }
  });

  test('a key the server does not accept fails at once (no retry)', async () => {
    const stranger = await keygen(join(work, 'stranger'));
    const before = sshd.connections();
    await rejectsWith(
      channel({ privateKeyFiles: [stranger] }).open(),
      'unreachable',
      /permission denied \(publickey\) for user root: tried .*stranger/,
      /ansible_user/,
    );
    assert.equal(sshd.connections() - before, 1);
  });

  test('a missing private key file is an input error', async () => {
    await rejectsWith(channel({ privateKeyFiles: [join(work, 'nope')] }).open(), 'input', /nope does not exist/);
  });

  test('the connection dropping mid-command rejects every pending run, and later runs fail fast', async () => {
    const doomed = await startSshd();
    try {
      const ch = new SshChannel({
        alias: 'doomed',
        host: '127.0.0.1',
        port: doomed.port,
        user: 'root',
        privateKeyFiles: [doomed.clientKey],
        knownHostsFile: join(work, 'kh-doomed'),
        acceptNewHostKeys: true,
        sshConfigFile: emptyConfig,
        agentSocket: false,
      });
      await ch.open();
      const long = ch.run('sleep 30\necho never');
      const other = ch.run('sleep 31');
      const outcome = Promise.allSettled([long, other]);
      await doomed.waitForLog(/Starting session: command.*\n(.|\n)*Starting session: command/);
      const t0 = Date.now();
      doomed.killHard();
      const [a, b] = await outcome;
      assert.ok(Date.now() - t0 < 2000);
      assert.equal(a.status, 'rejected');
      assert.equal(b.status, 'rejected');
      await rejectsWith(long, 'unreachable', /^connection to doomed lost during: sleep 30 \(/);
      await rejectsWith(other, 'unreachable', /^connection to doomed lost during: sleep 31/);
      await rejectsWith(ch.run('true'), 'unreachable', /^connection to doomed lost earlier .*not running: true/);
      await ch.close();
    } finally {
      await doomed.stop();
    }
  });
});

test('a host that stops answering is detected by SSH keepalives', async () => {
  const frozen = await startSshd();
  try {
    const ch = new SshChannel({
      alias: 'frozen',
      host: '127.0.0.1',
      port: frozen.port,
      user: 'root',
      privateKeyFiles: [frozen.clientKey],
      knownHostsFile: join(work, 'kh-frozen'),
      acceptNewHostKeys: true,
      sshConfigFile: emptyConfig,
      agentSocket: false,
      keepaliveIntervalMs: 200,
    });
    await ch.open();
    const pending = ch.run('sleep 30');
    await frozen.waitForLog(/Starting session: command/);
    frozen.freeze();
    const t0 = Date.now();
    await rejectsWith(pending, 'unreachable', /^connection to frozen lost during: sleep 30 \(Keepalive timeout\)/);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    await ch.close();
  } finally {
    await frozen.stop();
  }
});

describe('authentication', () => {
  let locked: string;
  before(async () => {
    locked = await keygen(join(work, 'locked_ed25519'), { passphrase: 'correct horse' });
    await sshd.authorize(`${locked}.pub`);
  });

  test('an encrypted key without a terminal is a clear input error', async () => {
    await rejectsWith(
      channel({ privateKeyFiles: [locked], interactive: false }).open(),
      'input',
      new RegExp(`private key ${locked} is encrypted and stdin is not a terminal`),
      /ssh-add .*locked_ed25519.*terminal/,
    );
  });

  test('interactive: the passphrase is asked for (again when wrong)', async () => {
    const asked: string[] = [];
    const answers = ['wrong', 'correct horse'];
    const prompter: Prompter = {
      secret: async (q) => {
        asked.push(q);
        return answers.shift() ?? '';
      },
      confirm: neverAsked.confirm,
    };
    await withChannel(channel({ privateKeyFiles: [locked], interactive: true, prompter }), async (ch) => {
      assert.equal((await ch.run('echo in')).stdout.toString(), 'in\n');
    });
    assert.deepEqual(asked, [`Enter passphrase for key '${locked}': `, `Bad passphrase, try again for ${locked}: `]);
  });

  test('ssh-agent comes first: a key loaded there needs no passphrase', async () => {
    const agentSocket = join(work, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100; i += 1) {
        try {
          await readFile(agentSocket);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') break;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      const askpass = join(work, 'askpass.sh');
      await writeFile(askpass, "#!/bin/sh\necho 'correct horse'\n", { mode: 0o700 });
      await execa('ssh-add', [locked], {
        env: { SSH_AUTH_SOCK: agentSocket, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' },
        stdin: 'ignore',
      });
      await withChannel(
        channel({ privateKeyFiles: [locked], agentSocket, interactive: false, prompter: neverAsked }),
        async (ch) => {
          assert.equal((await ch.run('echo agent')).stdout.toString(), 'agent\n');
        },
      );
    } finally {
      agent.kill();
    }
  });
});

describe('ssh config', () => {
  test('a Host pattern supplies HostName, Port, User and IdentityFile', async () => {
    const config = join(work, 'config-alias');
    await writeFile(
      config,
      [
        'Host web*',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        '  User root',
        `  IdentityFile ${sshd.clientKey}`,
        'Host *',
        '  User nobody',
        '  Port 1',
        '',
      ].join('\n'),
    );
    const ch = new SshChannel({ alias: 'web1', sshConfigFile: config, knownHostsFile: knownHosts, agentSocket: false });
    assert.equal(ch.description, `ssh root@127.0.0.1:${sshd.port}`);
    await withChannel(ch, async () => {
      assert.equal((await ch.run('id -un')).stdout.toString(), 'root\n');
    });
  });

  test('ProxyJump: through a jump host (the same sshd) to the target', async () => {
    const config = join(work, 'config-jump');
    await writeFile(
      config,
      [
        'Host jump',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        '  User root',
        `  IdentityFile ${sshd.clientKey}`,
        'Host inner',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        '  User root',
        `  IdentityFile ${sshd.clientKey}`,
        '  ProxyJump jump',
        '',
      ].join('\n'),
    );
    const before = sshd.connections();
    const ch = new SshChannel({ alias: 'inner', sshConfigFile: config, knownHostsFile: knownHosts, agentSocket: false });
    assert.match(ch.description, /via jump$/);
    await withChannel(ch, async () => {
      const rs = await Promise.all([ch.run('echo 1'), ch.run('echo 2')]);
      assert.deepEqual(
        rs.map((r) => r.stdout.toString()),
        ['1\n', '2\n'],
      );
    });
    // One TCP connection to the jump host, one tunnelled through it to the target.
    assert.equal(sshd.connections() - before, 2);
    assert.match(sshd.log(), /Connection from 127\.0\.0\.1 port \d+ on 127\.0\.0\.1 port/);
  });

  test('ProxyJump as user@host:port, two hops deep', async () => {
    const config = join(work, 'config-jump2');
    await writeFile(
      config,
      [
        'Host deep',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  ProxyJump root@127.0.0.1:${sshd.port},root@127.0.0.1:${sshd.port}`,
        '',
      ].join('\n'),
    );
    const ch = new SshChannel({
      alias: 'deep',
      user: 'root',
      privateKeyFiles: [sshd.clientKey],
      sshConfigFile: config,
      knownHostsFile: knownHosts,
      agentSocket: false,
    });
    assert.equal(ch.target?.jumps.length, 2);
    await withChannel(ch, async () => {
      assert.equal((await ch.run('echo deep')).stdout.toString(), 'deep\n');
    });
  });
});

describe('Connection over SshChannel', () => {
  test('put (mode 0600), stat, get', async () => {
    const conn = new Connection(channel());
    await conn.open();
    try {
      const path = join(work, 'uploaded.txt');
      const content = Buffer.from('secret-ish content\nline two\n');
      await conn.put(path, content, { mode: 0o600 });
      const [st] = await conn.stat([path, join(work, 'absent')]).then((s) => [s[0], s[1]] as const);
      assert.ok(st);
      assert.equal(st.exists, true);
      assert.equal(st.type, 'file');
      assert.equal(st.mode, 0o600);
      assert.equal(st.size, content.length);
      assert.equal(st.sha256, createHash('sha256').update(content).digest('hex'));
      const [, absent] = await conn.stat([path, join(work, 'absent')]);
      assert.deepEqual(absent, { path: join(work, 'absent'), exists: false });
      assert.deepEqual(await conn.get(path), content);
      assert.equal(conn.roundTrips, 4);
    } finally {
      await conn.close();
    }
  });
});
