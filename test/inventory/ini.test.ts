import assert from 'node:assert/strict';
import { chmod, copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { expandHostPattern } from '../../src/inventory/ini.js';
import { literalEval, shlexSplit } from '../../src/inventory/python.js';
import { fixture, hostctl, tempDir } from '../helpers/cli.js';

type Listing = Record<string, { hosts?: string[]; children?: string[] }> & { _meta: { hostvars: Record<string, Record<string, unknown>> } };

// Every group with its hosts in order and its children as a set (their order is not Ansible's
// contract), as --list prints them.
function groups(listing: Listing): Record<string, { hosts: string[]; children: string[] }> {
  const out: Record<string, { hosts: string[]; children: string[] }> = {};
  for (const [name, entry] of Object.entries(listing)) {
    if (name === '_meta') continue;
    const g = entry as { hosts?: string[]; children?: string[] };
    out[name] = { hosts: g.hosts ?? [], children: [...(g.children ?? [])].sort() };
  }
  return out;
}

const ansible = async (source: string, ...args: string[]) =>
  JSON.parse((await execa('ansible-inventory', ['-i', source, ...args])).stdout) as unknown;

// Every host and group, and every host's variables, as the real ansible-inventory gives them.
async function assertSameAsAnsible(source: string, extra: string[] = []): Promise<Listing> {
  const theirs = (await ansible(source, '--list', ...extra)) as Listing;
  const r = await hostctl(['inventory', '-i', source, '--list', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  const mine = JSON.parse(r.stdout) as Listing;
  assert.deepEqual(groups(mine), groups(theirs), `${source}: groups`);
  assert.deepEqual(mine._meta.hostvars, theirs._meta.hostvars, `${source}: hostvars`);
  for (const host of new Set(Object.values(groups(theirs)).flatMap((g) => g.hosts))) {
    const one = await hostctl(['inventory', '-i', source, '--host', host, ...extra]);
    assert.deepEqual(JSON.parse(one.stdout), await ansible(source, '--host', host, ...extra), `${source}: --host ${host}`);
  }
  return mine;
}

describe('INI inventories', () => {
  for (const name of ['basic.ini', 'ranges.ini', 'values.ini', 'order.ini']) {
    it(`${name} gives the same hosts, groups and variables as ansible-inventory`, async () => {
      await assertSameAsAnsible(fixture('ini', name));
    });
  }

  it('the fixtures hold what they claim (so the comparison above compares something)', async () => {
    const r = await hostctl(['inventory', '-i', fixture('ini', 'values.ini'), '--host', 'typed']);
    const typed = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(typed.int, 42);
    assert.equal(typed.octalish, '0644');
    assert.equal(typed.yes, 'yes');
    assert.equal(typed.true, true);
    assert.equal(typed.spaced, 'a b');
    assert.equal(typed.quoted, '42');
    assert.equal(typed.v_comment_text, 'foo # kept: no literal, the whole text stays');
    assert.equal(typed.v_comment_num, 23);
    assert.equal(typed.hashinword, 'foo');
    assert.equal(typed.ignored, undefined);
    const ranges = JSON.parse((await hostctl(['inventory', '-i', fixture('ini', 'ranges.ini'), '--list'])).stdout) as Listing;
    assert.deepEqual(ranges.db!.hosts!.slice(0, 3), ['db-a', 'db-b', 'db-c']);
    assert.ok(ranges.web!.hosts!.includes('web01') && ranges.web!.hosts!.includes('web10'));
    assert.equal(ranges._meta.hostvars['2001:db8::1']!.ansible_port, 2201);
    const order = JSON.parse((await hostctl(['inventory', '-i', fixture('ini', 'order.ini'), '--list'])).stdout) as Listing;
    assert.deepEqual(order.ungrouped!.hosts, ['free', 'everywhere']);
    assert.deepEqual(order.twin!.hosts, ['twin']);
  });

  it('a directory mixing INI and YAML, with group_vars/host_vars beside them, as Ansible reads it', async () => {
    const dir = fixture('ini', 'dir');
    const mine = await assertSameAsAnsible(dir);
    // hosts (no extension) is INI, more/nested is read too, skipped.ini is not (nor by Ansible).
    assert.deepEqual(mine.app!.hosts, ['app3', 'app1', 'app2']);
    assert.deepEqual(mine.cache!.hosts, ['cache1']);
    assert.equal(mine.ignored_by_ansible, undefined);
    assert.equal(mine._meta.hostvars.app2!.tier, 'back');
    // The same INI file given directly keeps its group_vars/host_vars.
    const direct = await hostctl(['inventory', '-i', join(dir, 'hosts'), '--host', 'app2']);
    assert.deepEqual(JSON.parse(direct.stdout), await ansible(join(dir, 'hosts'), '--host', 'app2'));
  });

  it('a vault-encrypted INI file is read with the vault password, its values secret', async () => {
    await using d = await tempDir();
    const password = join(d.path, 'pass');
    await writeFile(password, 'ini-vault-pass\n');
    const hosts = join(d.path, 'hosts');
    await copyFile(fixture('ini', 'basic.ini'), hosts);
    await execa('ansible-vault', ['encrypt', '--vault-password-file', password, hosts]);
    const theirs = (await ansible(hosts, '--list', '--vault-password-file', password)) as Listing;
    const r = await hostctl(['inventory', '-i', hosts, '--list', '--vault-password-file', password]);
    assert.equal(r.code, 0, r.stderr);
    const mine = JSON.parse(r.stdout) as Listing;
    assert.deepEqual(groups(mine), groups(theirs));
    assert.equal(mine._meta.hostvars.tomcat3!.mysecret, '********');
    assert.equal(theirs._meta.hostvars.tomcat3!.mysecret, '03#pa33w0rd');
    assert.doesNotMatch(r.stdout, /03#pa33w0rd/);
    const none = await hostctl(['inventory', '-i', hosts, '--list']);
    assert.equal(none.code, 5);
  });

  it('a malformed INI line is an input error naming the file and the line', async () => {
    await using d = await tempDir();
    const file = join(d.path, 'hosts.ini');
    const cases: [string, RegExp][] = [
      ['[web]\nok\nweb1 stray\n', /hosts\.ini:3: expected key=value after the host name, got "stray"/],
      ['[web]\nweb1 a="open\n', /hosts\.ini:2: cannot read the host line .*No closing quotation/],
      ['\n[web ]\n', /hosts\.ini:2: invalid section \[web \]/],
      ['[web:hosts]\n[web:other]\n', /hosts\.ini:2: section \[web:other\] has unknown type: other/],
      ['[web]\nweb[01:3]\n', /hosts\.ini:2: host range must specify equal-length begin and end formats/],
      ['[web]\nhost:\n', /hosts\.ini:2: invalid host pattern "host:"/],
      ['[web:vars]\nx=1\n', /hosts\.ini:1: section \[web:vars\] is for a group that is not declared/],
      ['[web:children]\nweb1\n[web]\n', /hosts\.ini:2: section \[web:children\] includes the undeclared group web1/],
      ['[web]\na\n[web:vars]\nno equals sign\n', /hosts\.ini:4: expected key=value in \[web:vars\]/],
      ['[a:children]\nb\n[b:children]\na\n', /hosts\.ini:4: group a cannot be a child of b: that makes a loop/],
      ['[web]\nh x="{1, 2}"\n', /hosts\.ini:2: x: Python reads "\{1, 2\}" as a set/],
    ];
    for (const [text, message] of cases) {
      await writeFile(file, text);
      const r = await hostctl(['inventory', '-i', file, '--list']);
      assert.equal(r.code, 5, text);
      assert.match(r.stderr, message, text);
      // Ansible refuses each of these too (it reports the file as unparsable).
      const a = await execa('ansible-inventory', ['-i', file, '--list'], { reject: false });
      assert.match(a.stderr, /Unable to parse|ERROR/, text);
    }
  });

  it('a file with no extension that is neither: the INI error says why YAML was not used', async () => {
    await using d = await tempDir();
    const file = join(d.path, 'hosts');
    await writeFile(file, 'all:\n  hosts:\n    a: {x: 1\n');
    const r = await hostctl(['inventory', '-i', file, '--list']);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /hosts:1: invalid host pattern "all:"[\s\S]*hint: .*hosts was read as INI because it is not a YAML mapping \(.*hosts:\d+: invalid YAML/);
  });

  it('TOML inventories and inventory scripts are refused by name', async () => {
    await using d = await tempDir();
    await writeFile(join(d.path, 'hosts.toml'), '[web.hosts]\n');
    let r = await hostctl(['inventory', '-i', join(d.path, 'hosts.toml'), '--list']);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /hosts\.toml is TOML, which hostctl does not read\n  hint: .*ansible-inventory/);
    await writeFile(join(d.path, 'inv.py'), '#!/usr/bin/env python3\nprint("{}")\n');
    await chmod(join(d.path, 'inv.py'), 0o755);
    r = await hostctl(['inventory', '-i', join(d.path, 'inv.py'), '--list']);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /inv\.py is a script, which hostctl does not run/);
  });
});

// The Python readers, checked against the real Python on the spellings that decide meaning.
describe("Python's shlex.split and ast.literal_eval", () => {
  it('shlex.split(comments=True) splits as Python does', async () => {
    const lines = [`a b="c d" e='f g' h=i\\ j`, `x#comment`, `x "#kept" # dropped`, `a="q\\"q" b="back\\\\slash" c="\\n"`, `''  ""`, `k='it'"s"`];
    const py = await execa('python3', ['-c', 'import sys, json, shlex; print(json.dumps([shlex.split(l, comments=True) for l in json.load(sys.stdin)]))'], { input: JSON.stringify(lines) });
    assert.deepEqual(lines.map(shlexSplit), JSON.parse(py.stdout));
  });

  it('literal_eval reads literals as Python does, and what is no literal stays text', async () => {
    const texts = ['42', '-7', '+3', '0x1F', '0o17', '0b101', '1_000', '0644', '00', '1.5', '.5', '1e3', '1.5e-3', 'True', 'False', 'None', 'yes', 'true',
      "'a'", '"a"', "'a' 'b'", "r'\\d'", "'\\t\\x41\\u00e9\\101'", "b'xy'", "u'x'", '[1, 2,]', '(1, 2)', '(1)', '()', '[]', '{}', "{'a': [1, {'b': None}]}", '{1: 2}',
      '23 # comment', 'foo # comment', '{1 2}', '1+2', '--5', '-True', 'a b', '1abc', "f'x'", '1 2', '[1 2]', "'unterminated", '', '10**2', 'x=y', '{a: 1}', "'''tri'''"];
    const py = await execa('python3', ['-c', `
import sys, json, ast
out = []
for t in json.load(sys.stdin):
    try:
        v = ast.literal_eval(t)
        out.append(v.decode() if isinstance(v, bytes) else v)
    except (ValueError, SyntaxError):
        out.append({"text": t})
print(json.dumps(out))`], { input: JSON.stringify(texts) });
    const mine = texts.map((t) => {
      const v = literalEval(t);
      return v === undefined ? { text: t } : v;
    });
    assert.deepEqual(mine, JSON.parse(py.stdout));
  });

  it('host patterns expand as Ansible expands them', () => {
    assert.deepEqual(expandHostPattern('web[01:03]'), { hosts: ['web01', 'web02', 'web03'], port: undefined });
    assert.deepEqual(expandHostPattern('db-[a:c]:2222'), { hosts: ['db-a', 'db-b', 'db-c'], port: 2222 });
    assert.deepEqual(expandHostPattern('n[1:10:4]'), { hosts: ['n1', 'n5', 'n9'], port: undefined });
    assert.deepEqual(expandHostPattern('[::1]:22'), { hosts: ['::1'], port: 22 });
    assert.deepEqual(expandHostPattern('fe80::1'), { hosts: ['fe80::1'], port: undefined });
    // Not an address Ansible can read: the whole text is the name, no port.
    assert.deepEqual(expandHostPattern('we$ird:22'), { hosts: ['we$ird:22'], port: undefined });
  });
});
