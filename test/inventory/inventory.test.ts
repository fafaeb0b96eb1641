import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { loadInventory, type VaultDecoder } from '../../src/inventory/load.js';
import { selectHosts } from '../../src/inventory/patterns.js';
import { plainVars, resolveHostVars } from '../../src/inventory/vars.js';
import { isSecret, Secret } from '../../src/core/secret.js';
import { fixture, hostctl, tempDir } from '../helpers/cli.js';

const precedence = fixture('precedence');
const noVault: VaultDecoder = {
  customTags: [],
  decryptFile: () => undefined,
  locate: () => {},
  reveal: (v) => v,
  secretLeaves: (v) => v,
};

describe('inventory', () => {
  it('resolves every host exactly as the real ansible-inventory does', async () => {
    const list = JSON.parse((await execa('ansible-inventory', ['-i', precedence, '--list'])).stdout) as { _meta: { hostvars: Record<string, unknown> } };
    const ours = await hostctl(['inventory', '-i', precedence, '--list']);
    assert.equal(ours.code, 0, ours.stderr);
    const mine = JSON.parse(ours.stdout) as Record<string, unknown> & { _meta: { hostvars: Record<string, unknown> } };
    assert.deepEqual(mine._meta.hostvars, list._meta.hostvars);
    for (const host of ['solo', 'h1', 'h2', 'h3']) {
      const theirs = JSON.parse((await execa('ansible-inventory', ['-i', precedence, '--host', host])).stdout) as unknown;
      const one = await hostctl(['inventory', '-i', precedence, '--host', host]);
      assert.deepEqual(JSON.parse(one.stdout), theirs, host);
    }
    assert.deepEqual(mine.db, { hosts: ['h2', 'h3'] });
    assert.deepEqual(mine.web, { children: ['web_prod'], hosts: ['h1'] });
  });

  it('reads scalars as PyYAML does (what Ansible uses): e1 is a name, y a letter, 0644 octal', async () => {
    await using d = await tempDir();
    const text = 'all:\n  vars:\n    a: e1\n    b: y\n    c: 1e3\n    d: 1.5e+3\n    e: 0644\n    f: off\n    g: .5\n    h: 1_000\n  hosts:\n    e1:\n';
    await writeFile(join(d.path, 'hosts.yml'), text);
    const py = await execa('python3', ['-c', 'import sys, yaml, json; print(json.dumps(yaml.safe_load(sys.stdin)["all"]["vars"]))'], { input: text });
    const ours = await hostctl(['inventory', '-i', join(d.path, 'hosts.yml'), '--host', 'e1']);
    assert.deepEqual(JSON.parse(ours.stdout), JSON.parse(py.stdout));
  });

  it('--sources names the file each value came from', async () => {
    const r = await hostctl(['inventory', '-i', precedence, '--host', 'h2', '--sources']);
    const vars = JSON.parse(r.stdout) as Record<string, { source: string }>;
    assert.match(vars.level!.source, /host_vars\/h2\/vars\.yml$/);
    assert.match(vars.db_port!.source, /group_vars\/db\.yml$/);
    assert.match(vars.prod!.source, /group_vars\/web_prod\/10-main\.yml$/);
  });

  it('host patterns: groups, unions, intersections, exclusions, globs, regexes', async () => {
    const inv = await loadInventory([precedence], noVault);
    assert.deepEqual(selectHosts(inv, 'all'), ['solo', 'h1', 'h2', 'h3']);
    assert.deepEqual(selectHosts(inv, 'web'), ['h1', 'h2']);
    assert.deepEqual(selectHosts(inv, 'web:db'), ['h1', 'h2', 'h3']);
    assert.deepEqual(selectHosts(inv, 'web:&db'), ['h2']);
    assert.deepEqual(selectHosts(inv, 'all:!web'), ['solo', 'h3']);
    assert.deepEqual(selectHosts(inv, 'h*'), ['h1', 'h2', 'h3']);
    assert.deepEqual(selectHosts(inv, '~h[13]'), ['h1', 'h3']);
    assert.deepEqual(selectHosts(inv, 'ungrouped'), ['solo']);
    assert.deepEqual(selectHosts(inv, 'nope'), []);
  });

  it('resolves {{ var }} references, keeping types and secrets, and refuses other Jinja', async () => {
    await using d = await tempDir();
    await writeFile(join(d.path, 'hosts.yml'), 'all:\n  hosts:\n    a:\n      port: 5432\n      db: "{{ port }}"\n      url: "postgres://app@db:{{ port }}/x"\n      pass: "{{ vault_pass }}"\n      dsn: "user={{ name.first }} pass={{ vault_pass }}"\n      name: {first: ann}\n');
    const inv = await loadInventory([join(d.path, 'hosts.yml')], noVault);
    const vars = plainVars(resolveHostVars(inv, 'a', { extra: new Map([['vault_pass', { value: new Secret('s3cr3t-value', 'test'), source: 'test' }]]) }));
    assert.equal(vars.db, 5432);
    assert.equal(vars.url, 'postgres://app@db:5432/x');
    assert.ok(isSecret(vars.pass));
    assert.ok(isSecret(vars.dsn) && vars.dsn.reveal() === 'user=ann pass=s3cr3t-value');

    // An object holding a Secret, spliced into text: the secret's value, not the mask, and the
    // result is a secret.
    await writeFile(join(d.path, 'hosts.yml'), 'all:\n  hosts:\n    a:\n      creds: {user: app, pass: "{{ vault_pass }}"}\n      env: "CREDS={{ creds }}"\n');
    const nested = plainVars(resolveHostVars(await loadInventory([join(d.path, 'hosts.yml')], noVault), 'a', { extra: new Map([['vault_pass', { value: new Secret('s3cr3t-value', 'test'), source: 'test' }]]) }));
    assert.ok(isSecret(nested.env) && nested.env.reveal() === 'CREDS={"user":"app","pass":"s3cr3t-value"}');

    await writeFile(join(d.path, 'hosts.yml'), 'all:\n  hosts:\n    a:\n      x: "{{ y | default(1) }}"\n');
    const bad = await loadInventory([join(d.path, 'hosts.yml')], noVault);
    assert.throws(
      () => resolveHostVars(bad, 'a'),
      (e: Error & { where?: string }) => /hosts\.yml: x$/.test(e.where ?? '') && /"\{\{ y \| default\(1\) \}\}" is a Jinja expression/.test(e.message),
    );
  });

  it('refuses Jinja statements, comments, filters and an unclosed {{, naming file and key and the TypeScript way', async () => {
    await using d = await tempDir();
    const refused: [string, RegExp][] = [
      ['"{% if y %}on{% endif %}"', /^"\{% if y %\}" is a Jinja statement/],
      ['"a {# note #} b"', /^"\{# note #\}" is a Jinja comment/],
      ['"{{ y | default(1) }}"', /^"\{\{ y \| default\(1\) \}\}" is a Jinja expression/],
      ['"pre {{ y"', /^"\{\{ y" is an unclosed Jinja expression/],
      ['"{{ y }} and {% raw %}"', /^"\{% raw %\}" is a Jinja statement/],
    ];
    for (const [value, message] of refused) {
      await writeFile(join(d.path, 'hosts.yml'), `all:\n  hosts:\n    a:\n      y: 1\n      x: ${value}\n`);
      const inv = await loadInventory([join(d.path, 'hosts.yml')], noVault);
      assert.throws(
        () => resolveHostVars(inv, 'a'),
        (e: Error & { where?: string; hint?: string }) =>
          /hosts\.yml: x$/.test(e.where ?? '') && message.test(e.message) && /derive\(\) \(TypeScript\), or write the plain value/.test(e.hint ?? ''),
        value,
      );
    }
  });

  it('a reference walks own keys and list indexes only, never a prototype', async () => {
    await using d = await tempDir();
    const resolve = async (x: string) => {
      await writeFile(join(d.path, 'hosts.yml'), `all:\n  hosts:\n    a:\n      m: {k: v}\n      l: [p, q]\n      x: "${x}"\n`);
      return plainVars(resolveHostVars(await loadInventory([join(d.path, 'hosts.yml')], noVault), 'a')).x;
    };
    assert.equal(await resolve('{{ m.k }}'), 'v');
    assert.equal(await resolve('{{ l.1 }}'), 'q');
    for (const [ref, part] of [['m.constructor', 'constructor'], ['m.__proto__', '__proto__'], ['m.toString', 'toString'], ['l.length', 'length'], ['l.2', '2'], ['m.k.length', 'length']]) {
      await assert.rejects(resolve(`{{ ${ref} }}`), (e: Error & { where?: string }) => e.message === `"{{ ${ref} }}": ${part} is not defined` && /hosts\.yml: x$/.test(e.where ?? ''), ref);
    }
  });

  it('bad inventories fail with the file, the line or key, and what to do', async () => {
    await using d = await tempDir();
    const file = join(d.path, 'hosts.yml');
    await writeFile(file, 'all:\n  hosts:\n    a: {x: 1\n');
    let r = await hostctl(['inventory', '-i', file, '--list']);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /hosts\.yml:\d+: invalid YAML/);
    await writeFile(file, 'all:\n  host:\n    a:\n');
    r = await hostctl(['inventory', '-i', file, '--list']);
    assert.match(r.stderr, /hosts\.yml: all: unknown key "host" in group all\n  hint: a group holds only hosts, vars and children/);
    await writeFile(join(d.path, 'hosts.ini'), '[web]\na b\n');
    r = await hostctl(['inventory', '-i', join(d.path, 'hosts.ini'), '--list']);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /hosts\.ini:2: expected key=value after the host name, got "b"/);
    await mkdir(join(d.path, 'host_vars'));
    await writeFile(file, 'all:\n  hosts:\n    a:\n      ansible_port: ssh\n');
    r = await hostctl(['run', fixture('sample', 'playbook.ts'), '-i', file]);
    assert.equal(r.code, 5);
  });
});
