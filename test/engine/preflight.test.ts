import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineRole } from '../../src/engine/role.js';
import { applyRoles } from '../helpers/apply.js';

// What a role's preflight chose travels to its body through the run, never through module
// state: two runs in one process (a library user's) each see their own choice.
describe('preflight hands its result to the body', () => {
  const roleChoosing = (seen: string[], delayMs: number) =>
    defineRole({
      name: 'chooser',
      async preflight(h) {
        const r = await h.conn.exec('printf %s "$$"');
        // The slower run's preflight finishes last: module state would hand its choice to both.
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        return { pid: r.stdout, delayMs };
      },
      async run(_h, _v, checked) {
        seen.push(`${checked?.delayMs}:${checked?.pid ? 'pid' : 'none'}`);
      },
    });

  it('each run gets its own preflight result, also when two run at once', async () => {
    const a: string[] = [];
    const b: string[] = [];
    const [ra, rb] = await Promise.all([applyRoles([roleChoosing(a, 10)]), applyRoles([roleChoosing(b, 200)])]);
    assert.equal(ra.code, 0);
    assert.equal(rb.code, 0);
    assert.deepEqual(a, ['10:pid']);
    assert.deepEqual(b, ['200:pid']);
  });

  it('a refused preflight runs no body', async () => {
    const seen: string[] = [];
    const role = defineRole({
      name: 'refuser',
      async preflight(): Promise<string> {
        throw new Error('no');
      },
      async run(_h, _v, checked) {
        seen.push(String(checked));
      },
    });
    const r = await applyRoles([role]);
    assert.equal(r.code, 2);
    assert.deepEqual(seen, []);
  });
});
