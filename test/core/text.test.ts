import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { firstLine, humanBytes } from '../../src/core/text.js';
import { apply } from '../helpers/apply.js';

describe('short forms for messages', () => {
  it('firstLine skips leading blank lines and marks a cut', () => {
    assert.equal(firstLine('\n  set -e\n  echo hi\n'), 'set -e');
    assert.equal(firstLine('x'.repeat(100), 20), `${'x'.repeat(17)}...`);
    assert.equal(firstLine('short'), 'short');
  });

  it('a command task is named by its first non-blank line (a script starting with a newline was "command ")', async () => {
    const r = await apply((h) => h.command({ cmd: '\n  true\n  true\n' }));
    assert.equal(r.ends[0]!.task, 'command true');
  });

  it('humanBytes', () => {
    assert.deepEqual([512, 41_062, 1_258_291].map(humanBytes), ['512 B', '40.1 KiB', '1.2 MiB']);
  });
});

describe('text from a host on the terminal', () => {
  it('printable shows control characters as \\xNN, keeping line breaks and tabs', async () => {
    const { printable } = await import('../../src/core/text.js');
    assert.equal(printable('a\tb\nc\x1b]0;owned\x07d\x9b2J\x7f'), 'a\tb\nc\\x1b]0;owned\\x07d\\x9b2J\\x7f');
  });

  it('an escape sequence a host prints reaches no event raw', async () => {
    const r = await apply((h) => h.command({ cmd: "printf 'boom\\033]52;c;cGF3bmVk\\007\\033[2K' >&2; exit 1" }));
    assert.equal(r.ends[0]!.status, 'failed');
    assert.ok(!/[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(r.ends[0]!.reason), r.ends[0]!.reason);
    assert.match(r.ends[0]!.reason, /boom\\x1b\]52;c;cGF3bmVk\\x07\\x1b\[2K/);
  });
});
