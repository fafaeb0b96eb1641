import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PassThrough } from 'node:stream';
import { askHidden, askYesNo, type TerminalIo } from '../../src/core/terminal.js';
import { HostctlError } from '../../src/core/errors.js';

// A terminal made of streams: raw mode is recorded, keystrokes are written by the test.
function fakeTerminal() {
  const input = Object.assign(new PassThrough(), { isTTY: true, raw: [] as boolean[], setRawMode(mode: boolean) { this.raw.push(mode); } });
  const output = new PassThrough();
  const shown: Buffer[] = [];
  output.on('data', (c: Buffer) => shown.push(c));
  const io: TerminalIo = { input, output };
  return { io, input, shown: () => Buffer.concat(shown).toString('utf8') };
}

const hint = 'say what to do instead';

describe('terminal questions (one reader for the SSH transport and the vault)', () => {
  it('a hidden line keeps a UTF-8 character that arrives split across two chunks', async () => {
    const t = fakeTerminal();
    const answer = askHidden('Password: ', { io: t.io, hint });
    const bytes = Buffer.from('pä€s\n', 'utf8');
    // "ä" is two bytes and "€" three: cut inside each of them.
    t.input.write(bytes.subarray(0, 2));
    t.input.write(bytes.subarray(2, 5));
    t.input.write(bytes.subarray(5));
    assert.equal(await answer, 'pä€s');
    assert.equal(t.shown(), 'Password: \n', 'nothing typed is echoed');
    assert.deepEqual(t.input.raw, [true, false], 'raw mode on for the question, off after');
  });

  it('backspace, Ctrl-U and Ctrl-C behave as at a password prompt', async () => {
    const t = fakeTerminal();
    const answer = askHidden('P: ', { io: t.io, hint });
    t.input.write('abc\u007fd\u0015xy\r');
    assert.equal(await answer, 'xy');
    const t2 = fakeTerminal();
    const interrupted = askHidden('P: ', { io: t2.io, hint });
    t2.input.write('ab\u0003');
    await assert.rejects(interrupted, (e: HostctlError) => e.kind === 'interrupted');
  });

  it('no terminal: an input error with the caller\'s hint, nothing read', async () => {
    const io: TerminalIo = { input: new PassThrough(), output: new PassThrough() };
    await assert.rejects(askHidden('P: ', { io, hint }), (e: HostctlError) => e.kind === 'input' && e.hint === hint);
  });

  it('yes/no asks again until the answer is yes or no', async () => {
    const t = fakeTerminal();
    const answer = askYesNo('Continue? ', { io: t.io, hint });
    t.input.write('maybe\n');
    await new Promise((r) => setTimeout(r, 20));
    t.input.write('yes\n');
    assert.equal(await answer, true);
  });
});
