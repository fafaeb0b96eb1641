import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { baseImage, imageSpecs } from '../../src/lab/image-plan.js';

// The lab's image plan is pure: it runs everywhere, without root or a lab.
describe('lab image plan', () => {
  it('names the default images and their bases', () => {
    const specs = imageSpecs();
    assert.deepEqual(specs.map((s) => [s.name, s.suite]), [
      ['localhost/lab-postgres:17', 'trixie'],
      ['localhost/lab-postgres:15', 'bookworm'],
      ['localhost/lab-redis:8', 'trixie'],
      ['localhost/lab-authentik:2025.8.1', 'trixie'],
      ['localhost/lab-authentik:2026.2.1', 'trixie'],
    ]);
    assert.equal(baseImage('bookworm'), 'localhost/lab-base-bookworm:v3');
  });

  it('bakes the broken flag into broken tags only', () => {
    const specs = imageSpecs({ authentikTags: ['2025.8.1'], brokenTags: ['2099.1.0'], postgresMajors: [17] });
    const ak = specs.filter((s) => s.context === 'authentik');
    assert.deepEqual(ak.map((s) => [s.name, s.buildArgs.STANDIN_BROKEN]), [
      ['localhost/lab-authentik:2025.8.1', '0'],
      ['localhost/lab-authentik:2099.1.0', '1'],
    ]);
  });

  it('refuses unknown Postgres majors, bad tags and a tag that is both good and broken', () => {
    assert.throws(() => imageSpecs({ postgresMajors: [16] }), /Postgres 16/);
    assert.throws(() => imageSpecs({ authentikTags: ['a b'] }), /bad image tag/);
    assert.throws(() => imageSpecs({ authentikTags: ['1.0'], brokenTags: ['1.0'] }), /given twice/);
  });
});
