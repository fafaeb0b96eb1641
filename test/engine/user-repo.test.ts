import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { repo, tempDir } from '../helpers/cli.js';

// A user's own infrastructure repository that depends on hostctl: `npx hostctl run` finds
// the package's bin, and the playbook's `import ... from 'hostctl'` resolves to it.
describe('a user repository depending on hostctl', () => {
  it('runs a TypeScript playbook that imports hostctl by name', { timeout: 180_000 }, async () => {
    await using d = await tempDir('hostctl-user-repo-');
    await writeFile(join(d.path, 'package.json'), JSON.stringify({ name: 'infra', private: true, type: 'module', dependencies: { hostctl: `file:${repo}` } }));
    await execa('npm', ['install', '--offline', '--no-audit', '--no-fund'], { cwd: d.path });
    await mkdir(join(d.path, 'playbooks'));
    await writeFile(
      join(d.path, 'playbooks', 'site.ts'),
      `import { definePlaybook, defineRole, z } from 'hostctl';
const motd = defineRole({ name: 'motd', vars: z.object({ root: z.string() }), async run(h, v) { await h.file({ path: \`\${v.root}/motd\`, content: 'hi\\n' }); } });
export default definePlaybook({ name: 'site', hosts: 'all', roles: [motd] });
`,
    );
    await writeFile(join(d.path, 'hosts.yml'), 'all:\n  hosts:\n    me:\n      ansible_connection: local\n');
    const r = await execa('npx', ['hostctl', 'run', 'playbooks/site.ts', '-i', 'hosts.yml', '-e', `root=${d.path}`, '--plain'], { cwd: d.path, reject: false });
    assert.equal(r.exitCode, 0, String(r.stdout) + r.stderr);
    assert.match(String(r.stdout), /me \| motd \| file .*motd \| changed/);
    assert.equal(await readFile(join(d.path, 'motd'), 'utf8'), 'hi\n');
  });
});
