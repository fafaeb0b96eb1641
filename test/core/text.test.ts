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
