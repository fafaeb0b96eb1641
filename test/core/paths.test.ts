import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inside } from '../../src/core/paths.js';
import { isHostctlError } from '../../src/core/errors.js';

describe('inside(): a name a host sent, as a path on the controller', () => {
  it('a plain name is the file directly inside the folder', () => {
    assert.equal(inside('/b/backups/h', 'authentik-20260315T031500Z.sql.gz', 'host h'), '/b/backups/h/authentik-20260315T031500Z.sql.gz');
    assert.equal(inside('backups/h/', 'x..y', 'host h'), `${process.cwd()}/backups/h/x..y`);
  });
  for (const [name, why] of [
    ['../../pwned.sh', 'it holds a /'],
    ['..', 'not a file name'],
    ['.', 'not a file name'],
    ['', 'not a file name'],
    ['/etc/cron.d/pwned', 'an absolute path'],
    ['a/b', 'it holds a /'],
    ['a\0b', 'it holds a NUL byte'],
  ] as const) {
    it(`refuses ${JSON.stringify(name)} (${why}) as a host error naming the host and the name`, () => {
      assert.throws(() => inside('/b/backups/h', name, 'host h'), (e: unknown) => {
        assert.ok(isHostctlError(e, 'host'));
        assert.equal(e.message, `host h sent a bad file name ${JSON.stringify(name)} (${why}); nothing was written for it`);
        return true;
      });
    });
  }
});
