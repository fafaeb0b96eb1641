import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { MASK, Secret, containsSecret, redact, revealAll } from '../../src/core/secret.js';
import { HostctlError } from '../../src/core/errors.js';
import { quote } from '../../src/transport/quote.js';
import { apply, statuses } from '../helpers/apply.js';
import { tempDir } from '../helpers/cli.js';

// Every test registers its own values: the registry of known secrets lives for the process.
const unique = (prefix: string) => `${prefix}${randomBytes(6).toString('hex')}`;

describe('the secret guard in command lines', () => {
  it('quote() refuses a secret with a quote in it, before quoting hides it', async () => {
    const value = unique("it's-");
    new Secret(value, 'test: quoted');
    assert.throws(() => quote(value), (error: HostctlError) => {
      assert.equal(error.kind, 'host');
      assert.equal(error.message, 'a secret (test: quoted) would appear in a command line');
      assert.equal(error.hint, 'secrets reach the host by upload or stdin only');
      return true;
    });
    // Through the real engine: the command is never run, nothing reaches the host.
    await using d = await tempDir();
    const out = join(d.path, 'out');
    const r = await apply((h) => h.command({ cmd: `printf %s ${quote(value)} > ${quote(out)}` }));
    assert.match(r.error ?? '', /a secret \(test: quoted\) would appear in a command line/);
    assert.ok(!(r.error ?? '').includes(value));
    await assert.rejects(stat(out));
  });

  it('a vaulted common word matches only as a whole token, not in unit names or paths', async () => {
    new Secret('authentik', 'test: pg user');
    await using d = await tempDir();
    const r = await apply((h) => h.command({ cmd: `echo authentik-server.service /srv/authentik/data ${quote(join(d.path, 'authentik.env'))}` }));
    assert.deepEqual(statuses(r), ['changed'], r.error ?? r.ends[0]?.reason);
    for (const leak of ['--password=authentik', 'postgres://u:authentik@h/db', "'authentik'", 'echo authentik', 'PASS="authentik"']) {
      assert.ok(containsSecret(leak), leak);
    }
    assert.throws(() => quote('authentik'), /a secret \(test: pg user\) would appear in a command line/);
  });

  it('a vaulted multi-line script with a `done` line does not break file tasks', async () => {
    // Its lines are too short to be told from shell keywords; the whole script is still a secret.
    const loop = `for f in /etc/${unique('x')}/*; do`;
    const script = `#!/bin/sh\n${loop}\n  echo "$f"\ndone\n`;
    new Secret(script, 'test: script');
    await using d = await tempDir();
    const path = join(d.path, 'plain.txt');
    const r = await apply((h) => h.file({ path, content: 'not secret\n', mode: '0644' }));
    assert.deepEqual(statuses(r), ['changed'], r.error ?? r.ends[0]?.reason);
    assert.equal(await readFile(path, 'utf8'), 'not secret\n');
    assert.throws(() => quote(script), /a secret \(test: script\)/);
    assert.equal(redact(`ran:\n${script}`), `ran:\n${MASK}`);
    // A line long enough to be told apart is a secret on its own.
    assert.equal(redact(`+ ${loop}`), `+ ${MASK}`);
  });

  it('short values are secrets too, where they stand as a value or a token', () => {
    new Secret('Qz', 'test: two characters');
    assert.equal(redact('pin=Qz.'), `pin=${MASK}.`);
    assert.equal(redact('code: Qz\n'), `code: ${MASK}\n`);
    assert.equal(redact('QzQz xQz Qzy Qz_1'), 'QzQz xQz Qzy Qz_1');
    assert.ok(containsSecret('--pin=Qz'));
    assert.ok(!containsSecret('cp Qz.conf /srv/Qz/x Qz-1'));
  });

  it('long values are found anywhere, even inside a longer word or path', () => {
    const token = unique('hook-token-');
    new Secret(token, 'test: webhook');
    assert.ok(containsSecret(`curl https://hooks.example/api/${token}/x`));
    assert.equal(redact(`GET /api/${token}.json`), `GET /api/${MASK}.json`);
  });
});

describe('Secret values', () => {
  it('used as text it throws, naming its origin; inspect and JSON show the mask', () => {
    const s = new Secret(unique('tpl-'), 'vault.yml: vault_api_key');
    const expected = /^Error: the secret vault\.yml: vault_api_key was used as text; call \.reveal\(\) where the value is meant for a file or stdin/;
    assert.throws(() => `KEY=${s}`, expected);
    assert.throws(() => String(s), expected);
    assert.throws(() => 'KEY=' + s, expected);
    assert.equal(inspect({ s }), `{ s: ${MASK} }`);
    assert.equal(JSON.stringify({ s }), `{"s":"${MASK}"}`);
  });

  it('a vaulted number or boolean keeps its type, is masked, and a number is redacted', async () => {
    const pin = new Secret(98765432, 'vault.yml: vault_pin');
    const flag = new Secret(true, 'vault.yml: vault_flag');
    assert.equal(pin.reveal(), '98765432');
    assert.equal(pin.revealTyped(), 98765432);
    assert.equal(flag.revealTyped(), true);
    assert.equal(JSON.stringify({ pin, flag }), `{"pin":"${MASK}","flag":"${MASK}"}`);
    assert.equal(redact('the pin is 98765432.'), `the pin is ${MASK}.`);
    // A bare boolean is not searched for in free text: every script says `true`.
    assert.ok(!containsSecret('true'));
    // Templates render the typed values (a false flag stays false for {{#if}}).
    assert.deepEqual(revealAll({ pin, flag: new Secret(false, 'f') }), { pin: 98765432, flag: false });

    // A diff and the JSON events of a run that writes it never show it.
    await using d = await tempDir();
    const path = join(d.path, 'app.conf');
    const r = await apply((h) => h.file({ path, content: `PIN=${pin.reveal()}\n`, mode: '0600' }));
    assert.deepEqual(statuses(r), ['changed']);
    assert.match(r.ends[0]!.diff!, /^\+PIN=\*{8}$/m);
    assert.ok(!JSON.stringify(r.events).includes('98765432'));
  });
});
