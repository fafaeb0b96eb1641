import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { vars } from '../../roles/authentik/index.js';
import { Tagged, declaredIn, parseBlueprint, renderBlueprint, resolveTags, schemaFor, validateBlueprint } from '../../roles/authentik/blueprint.js';

const SECRET = 'grafana-client-secret-from-the-vault-7d1f';
const base = { authentik_version: '2026.2.1', authentik_pg_pass: 'pg-password', authentik_secret_key: 'secret-key' };
const declaration = {
  authentik_groups: { family: {}, proxmox_admins: { parents: ['family'] } },
  authentik_applications: {
    copyparty: { name: 'Copyparty', protect: 'forward_single', external_host: 'https://copyparty.home.example.org', groups: ['family'] },
    wiki: { name: 'Wiki', protect: 'forward_domain', external_host: 'https://wiki.home.example.org', cookie_domain: 'home.example.org', skip_path_regex: ['^/api/'] },
    grafana: {
      name: 'Grafana', protect: 'oidc', redirect_uris: ['https://grafana.home.example.org/login/generic_oauth'], client_id: 'grafana',
      client_secret: SECRET, launch_url: 'https://grafana.home.example.org', groups: ['proxmox_admins'],
    },
  },
};
const parse = (input: Record<string, unknown>) => vars.safeParse({ ...base, ...input });
const declared = (version: string, input: Record<string, unknown> = declaration) => {
  const r = parse({ ...input, authentik_version: version });
  assert.ok(r.success, JSON.stringify(r.error?.issues));
  return r.data;
};
const render = (version: string, input?: Record<string, unknown>, previous?: { text: string; applied: boolean }) => renderBlueprint(declared(version, input), previous);
type Entry = { model: string; state?: string; identifiers: Record<string, unknown>; attrs?: Record<string, unknown> };
const entries = (text: string) => (parseBlueprint(text) as { entries: Entry[] }).entries;
const refused = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  assert.fail('expected a refusal');
};

describe('the blueprint of the authentik declaration', () => {
  it('picks the newest schema not newer than the deployed version, and refuses a version older than all', () => {
    assert.deepEqual(['2025.10.2', '2025.12.1', '2026.1.0', '2026.5.2', '2026.8.0', '2027.1.1'].map(schemaFor), [undefined, '2025.12', '2025.12', '2026.2', '2026.8', '2026.8']);
    assert.match(refused(() => render('2025.10.2')), /need authentik 2025\.12 or newer.*2025\.10\.2/);
  });

  for (const version of ['2025.12.1', '2026.2.1', '2026.5.0', '2026.8.0']) {
    it(`renders each protect mode for authentik ${version}, valid under that version's schema`, () => {
      const r = render(version);
      validateBlueprint(r.text, r.schema, r.owned.map((o) => o.owner));
      const all = entries(r.text);
      const byName = (name: string) => all.find((e) => e.identifiers.name === name)!.attrs!;
      assert.deepEqual(all.map((e) => e.model), [
        'authentik_core.group', 'authentik_core.group',
        'authentik_providers_proxy.proxyprovider', 'authentik_providers_proxy.proxyprovider', 'authentik_providers_oauth2.oauth2provider',
        'authentik_core.application', 'authentik_core.application', 'authentik_core.application',
        'authentik_policies.policybinding', 'authentik_policies.policybinding', 'authentik_outposts.outpost',
      ]);
      assert.equal(byName('hostctl-copyparty').mode, 'forward_single');
      assert.equal(byName('hostctl-wiki').mode, 'forward_domain');
      assert.equal(byName('hostctl-wiki').cookie_domain, 'home.example.org');
      const oidc = byName('hostctl-grafana');
      // redirect_uri_type is a field from 2026.5 on.
      const uri = { matching_mode: 'strict', url: 'https://grafana.home.example.org/login/generic_oauth' };
      assert.deepEqual(oidc.redirect_uris, [version >= '2026.5' ? { ...uri, redirect_uri_type: 'authorization' } : uri]);
      assert.deepEqual(oidc.client_secret, new Tagged('!Env', 'AUTHENTIK_HOSTCTL_CLIENT_SECRET_GRAFANA'));
      assert.equal(oidc.encryption_key, undefined);
      assert.deepEqual(oidc.property_mappings, ['openid', 'email', 'profile'].map((s) => new Tagged('!Find', ['authentik_providers_oauth2.scopemapping', ['managed', `goauthentik.io/providers/oauth2/scope-${s}`]])));
      assert.deepEqual(byName('proxmox_admins').parents, [new Tagged('!KeyOf', 'group-family')]);
      // The contract with the proxy role's outpost stand-in: plain scalars on their own lines.
      assert.match(r.text, /^ {6}mode: forward_single\n {6}external_host: https:\/\/copyparty\.home\.example\.org$/m);
    });
  }

  it('a rendering bug or a value authentik would refuse fails the schema, naming the application and the field; valid is valid', () => {
    const r = render('2026.8.0');
    const owners = r.owned.map((o) => o.owner);
    const broken = (from: string, to: string) => refused(() => validateBlueprint(r.text.replace(from, to), r.schema, owners));
    assert.match(broken('mode: forward_single', 'mode: forward_everything'), /authentik_applications\.copyparty: protect \(blueprint field mode\): must be equal to one of the allowed values/);
    // A group's key (a UUID) where the provider's (an integer) belongs: the tags are checked
    // as the values they become, not stripped.
    assert.match(broken('provider: !KeyOf provider-grafana', 'provider: !KeyOf group-family'), /authentik_applications\.grafana: provider: must be integer/);
    assert.match(broken('provider: !KeyOf provider-grafana', 'provider: !KeyOf provider-nothing'), /authentik_applications\.grafana: !KeyOf provider-nothing: no entry has that id/);
    assert.match(broken('matching_mode: strict', 'matching_mode: glob'), /authentik_applications\.grafana: redirect_uris\[0\]\[matching_mode\]: must be equal to one of the allowed values \(strict, regex\)/);
    assert.match(broken('client_secret: !Env', 'client_secret: !Bogus'), /tag !Bogus is not one hostctl writes/);
    // authentik 2025.12 caps slugs at 50 characters; later versions do not.
    const long = 'a'.repeat(51);
    const app = { [long]: { name: 'Long', protect: 'forward_single', external_host: 'https://long.example.org' } };
    assert.match(refused(() => {
      const x = render('2025.12.1', { authentik_applications: app });
      validateBlueprint(x.text, x.schema, x.owned.map((o) => o.owner));
    }), new RegExp(`authentik 2025\\.12's schema:\\n  authentik_applications\\.${long}: slug: must NOT have more than 50 characters`));
    const later = render('2026.2.1', { authentik_applications: app });
    validateBlueprint(later.text, later.schema);
  });

  it('refuses a declaration with an error in each field, naming the key', () => {
    const messages = (input: Record<string, unknown>) => {
      const r = parse(input);
      assert.equal(r.success, false);
      return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const app = (fields: Record<string, unknown>) => ({ authentik_applications: { svc: { name: 'Svc', protect: 'forward_single', external_host: 'https://svc.example.org', ...fields } } });
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [app({ protect: 'saml' }), /^authentik_applications\.svc\.protect: protect: one of/],
      [app({ external_host: 'ftp://svc' }), /^authentik_applications\.svc\.external_host: external_host: an absolute http/],
      [app({ name: '' }), /^authentik_applications\.svc\.name: /],
      [app({ groups: ['nobody'] }), /^authentik_applications\.svc\.groups\.0: nobody is not declared in authentik_groups/],
      [app({ authorization_flow: 'not a slug' }), /^authentik_applications\.svc\.authorization_flow: a slug/],
      [app({ launch_url: 'javascript:alert(1)' }), /^authentik_applications\.svc\.launch_url: /],
      [app({ protect: 'forward_domain', cookie_domain: 'a b' }), /^authentik_applications\.svc\.cookie_domain: a domain/],
      [app({ unknown_field: 1 }), /^authentik_applications\.svc: Unrecognized key/],
      [{ authentik_applications: { 'bad slug': { name: 'X', protect: 'forward_single', external_host: 'https://x.example.org' } } }, /^authentik_applications\.bad slug: the key is the slug/],
      [{ authentik_applications: { g: { name: 'G', protect: 'oidc', redirect_uris: ['https://g.example.org/cb'], client_id: 'g' } } }, /^authentik_applications\.g\.client_secret: a confidential client needs client_secret/],
      [{ authentik_applications: { g: { name: 'G', protect: 'oidc', redirect_uris: [], client_id: 'g', client_type: 'public' } } }, /^authentik_applications\.g\.redirect_uris: /],
      [{ authentik_applications: { g: { name: 'G', protect: 'oidc', redirect_uris: ['https://g.example.org/cb'], client_id: 'g', client_secret: 'a\nb' } } }, /^authentik_applications\.g\.client_secret: must be a single line/],
      [{ authentik_applications: { g: { name: 'G', protect: 'oidc', redirect_uris: ['https://g.example.org/cb'], client_id: 'g', client_type: 'public', scopes: ['groups'] } } }, /^authentik_applications\.g\.scopes\.0: /],
      [{ authentik_groups: { a: { parents: ['b'] } } }, /^authentik_groups\.a\.parents\.0: b is not declared/],
      [{ authentik_groups: { a: { parents: ['b'] }, b: { parents: ['a'] } } }, /^authentik_groups\.a\.parents: the groups are their own parents: a -> b -> a/],
      [{ authentik_api_token: 'has "quotes"' }, /^authentik_api_token: printable ASCII without spaces, quotes or backslashes/],
    ];
    for (const [input, want] of cases) assert.ok(messages(input).some((m) => want.test(m)), `${want}: ${messages(input).join('; ')}`);
    const oidc = (slug: string) => ({ name: slug, protect: 'oidc', redirect_uris: ['https://g.example.org/cb'], client_id: slug, client_secret: 's' });
    assert.ok(messages({ authentik_applications: { 'a-b': oidc('a-b'), a_b: oidc('a_b') } }).some((m) => /^authentik_applications\.a_b: its client secret would share AUTHENTIK_HOSTCTL_CLIENT_SECRET_A_B with a-b/.test(m)));
  });

  it('keeps the client secret out of the blueprint: the worker reads it from the 0600 .env', () => {
    const v = declared('2026.8.0');
    const r = renderBlueprint(v);
    assert.ok(!r.text.includes(SECRET));
    assert.match(r.text, /client_secret: !Env AUTHENTIK_HOSTCTL_CLIENT_SECRET_GRAFANA$/m);
  });

  it('what a previous blueprint declared and this one does not becomes state: absent; what hostctl never declared is not touched', () => {
    const before = render('2026.8.0');
    // Something that is not hostctl's in the old file (another provider name, a flow) is no record.
    const foreign = before.text.replace('entries:\n', 'entries:\n  - model: authentik_providers_proxy.proxyprovider\n    identifiers:\n      name: handmade\n  - model: authentik_flows.flow\n    identifiers:\n      slug: mine\n');
    const input = {
      authentik_groups: { family: {} },
      authentik_applications: { copyparty: { ...declaration.authentik_applications.copyparty, groups: [] }, wiki: declaration.authentik_applications.wiki },
    };
    const after = render('2026.8.0', input, { text: foreign, applied: false });
    validateBlueprint(after.text, after.schema);
    const absent = entries(after.text).filter((e) => e.state === 'absent');
    assert.deepEqual(absent.map((e) => [e.model, e.identifiers]), [
      ['authentik_core.application', { slug: 'grafana' }],
      ['authentik_providers_oauth2.oauth2provider', { name: 'hostctl-grafana' }],
      ['authentik_core.group', { name: 'proxmox_admins' }],
      // copyparty and family both stay: their binding goes on its own.
      ['authentik_policies.policybinding', { target: new Tagged('!KeyOf', 'app-copyparty'), group: new Tagged('!KeyOf', 'group-family') }],
    ]);
    // The removals stay until an apply of them was verified, then the names are free again.
    const again = render('2026.8.0', input, { text: after.text, applied: false });
    assert.equal(again.text, after.text);
    const done = render('2026.8.0', input, { text: after.text, applied: true });
    assert.deepEqual(entries(done.text).filter((e) => e.state === 'absent'), []);
    // Declared again: present, not absent.
    const back = render('2026.8.0', declaration, { text: after.text, applied: false });
    assert.deepEqual(entries(back.text).filter((e) => e.state === 'absent'), []);
    assert.deepEqual([...declaredIn(back.text).present].length, 3 + 3 + 2 + 2);
    // An application that changes from forward auth to OIDC: the old provider goes first.
    const switched = render('2026.8.0', { authentik_applications: { wiki: { name: 'Wiki', protect: 'oidc', redirect_uris: ['https://wiki.home.example.org/cb'], client_id: 'wiki', client_type: 'public' } } }, { text: back.text, applied: true });
    const firstWiki = entries(switched.text).find((e) => e.identifiers.name === 'hostctl-wiki')!;
    assert.deepEqual([firstWiki.model, firstWiki.state], ['authentik_providers_proxy.proxyprovider', 'absent']);
  });

  it("keeps the embedded outpost's providers that hostctl does not manage, and adds its own", () => {
    const r = render('2026.8.0');
    const all = entries(r.text) as Array<Entry & { id?: string }>;
    const models = new Map(all.filter((e) => e.id).map((e) => [e.id!, e.model]));
    const outpost = all.find((e) => e.model === 'authentik_outposts.outpost')!;
    // As authentik resolves it (authentik/blueprints/v1/common.py): !FindObject serializes the
    // outpost as it is now, with a provider someone added in the UI (7, 9), and !Enumerate's
    // MAP merges the two lists with deepmerge's always_merger, which appends.
    const resolved = resolveTags(outpost.attrs, { models, findObject: () => ({ name: 'authentik Embedded Outpost', providers: [7, 9] }) });
    assert.deepEqual(resolved, { providers: [7, 9, 1, 1] });
    // A fresh outpost without providers: only hostctl's two.
    assert.deepEqual(resolveTags(outpost.attrs, { models, findObject: () => ({ providers: [] }) }), { providers: [1, 1] });
  });
});
