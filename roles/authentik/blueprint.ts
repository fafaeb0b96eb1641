import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { Document, Pair, Scalar, YAMLMap, YAMLSeq, isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { inputError } from 'hostctl';
import { clientSecretEnv, isForward, type Application } from './applications.js';
import { calendarVersion } from './version.js';

// The declaration (applications.ts) as one authentik blueprint, in authentik's own format and
// checked against authentik's own schema before it is written. The worker applies it; the
// role then asks authentik's API whether this very file applied (blueprint-apply.ts).

// On the host: <authentik_root>/blueprints/hostctl.yaml, mounted (the directory, read-only)
// at /blueprints/hostctl/ in worker and server, beside the image's own /blueprints/{system,...}.
export const BLUEPRINT_DIR = 'blueprints';
export const BLUEPRINT_FILE = 'hostctl.yaml';
// The instance's path as authentik records it: relative to /blueprints.
export const INSTANCE_PATH = `hostctl/${BLUEPRINT_FILE}`;
export const BLUEPRINT_NAME = 'hostctl: applications, providers and groups';

// authentik's schemas in the repo (blueprint-schemas/README.md), oldest first.
const SCHEMAS = ['2025.12', '2026.2', '2026.8'] as const;
export type SchemaVersion = (typeof SCHEMAS)[number];
const EMBEDDED_OUTPOST = 'goauthentik.io/outposts/embedded';

export interface Declaration {
  authentik_version: string;
  authentik_groups: Record<string, { parents: string[]; is_superuser: boolean }>;
  authentik_applications: Record<string, Application>;
}

const atLeast = (version: string, y: number, m: number) => {
  const v = calendarVersion(version);
  return v !== undefined && (v[0] > y || (v[0] === y && v[1] >= m));
};

// The newest schema not newer than the deployed version; undefined before the oldest.
export function schemaFor(version: string): SchemaVersion | undefined {
  return [...SCHEMAS].reverse().find((s) => {
    const [y, m] = s.split('.').map(Number) as [number, number];
    return atLeast(version, y, m);
  });
}

// One of authentik's YAML tags (!KeyOf, !Find, !Env ...) around its argument.
export class Tagged {
  constructor(
    readonly tag: string,
    readonly value: unknown,
  ) {}
}
// The tags this module writes and reads back; any other in the host's file is an error.
const TAGS: readonly string[] = ['!KeyOf', '!Find', '!FindObject', '!Env', '!AtIndex', '!Enumerate', '!Value'];
const keyOf = (id: string) => new Tagged('!KeyOf', id);
const find = (model: string, field: string, value: string) => new Tagged('!Find', [model, [field, value]]);

type Entry = { model: string; state?: 'absent'; id?: string; identifiers: Record<string, unknown>; attrs?: unknown };
// What an entry is about in the declaration, to name it in an error.
interface Owned {
  entry: Entry;
  owner: string;
}

const providerModel = (a: Application) => (isForward(a) ? 'authentik_providers_proxy.proxyprovider' : 'authentik_providers_oauth2.oauth2provider');
// The provider's name: from the slug, so renaming the application keeps its provider.
const providerName = (slug: string) => `hostctl-${slug}`;

// What a blueprint declares, as keys: the record of what hostctl manages on the host.
type Key = string;
const appKey = (slug: string): Key => `app\0${slug}`;
const providerKey = (model: string, name: string): Key => `provider\0${model}\0${name}`;
const groupKey = (name: string): Key => `group\0${name}`;
const bindingKey = (app: string, group: string): Key => `binding\0${app}\0${group}`;

function presentEntries(d: Declaration): Owned[] {
  const out: Owned[] = [];
  const groups = d.authentik_groups;
  // Parents first: a !KeyOf only finds an entry authentik has already processed.
  const order: string[] = [];
  const place = (name: string) => {
    if (order.includes(name)) return;
    for (const p of groups[name]?.parents ?? []) place(p);
    order.push(name);
  };
  Object.keys(groups).forEach(place);
  for (const name of order) {
    const g = groups[name]!;
    out.push({
      owner: `authentik_groups.${name}`,
      entry: { model: 'authentik_core.group', id: `group-${name}`, identifiers: { name }, attrs: { name, is_superuser: g.is_superuser, parents: g.parents.map((p) => keyOf(`group-${p}`)) } },
    });
  }
  const apps = Object.entries(d.authentik_applications);
  const flows = (a: Application) => ({
    authorization_flow: find('authentik_flows.flow', 'slug', a.authorization_flow),
    invalidation_flow: find('authentik_flows.flow', 'slug', a.invalidation_flow),
  });
  for (const [slug, a] of apps) {
    const name = providerName(slug);
    let attrs: Record<string, unknown>;
    if (isForward(a)) {
      attrs = {
        name,
        // mode and external_host stay plain scalars on their own lines: the lab's outpost
        // stand-in finds the forward-auth hosts with a line-based read.
        mode: a.protect,
        external_host: a.external_host,
        ...(a.protect === 'forward_domain' ? { cookie_domain: a.cookie_domain } : {}),
        skip_path_regex: a.skip_path_regex.join('\n'),
        ...flows(a),
      };
    } else {
      attrs = {
        name,
        client_type: a.client_type,
        client_id: a.client_id,
        ...(a.client_secret ? { client_secret: new Tagged('!Env', clientSecretEnv(slug)) } : {}),
        redirect_uris: a.redirect_uris.map((u) => ({
          ...(typeof u === 'string' ? { matching_mode: 'strict', url: u } : u),
          // A field of its own from 2026.5 (login and logout URIs in one list).
          ...(atLeast(d.authentik_version, 2026, 5) ? { redirect_uri_type: 'authorization' } : {}),
        })),
        property_mappings: a.scopes.map((s) => find('authentik_providers_oauth2.scopemapping', 'managed', `goauthentik.io/providers/oauth2/scope-${s}`)),
        signing_key: find('authentik_crypto.certificatekeypair', 'name', a.signing_key),
        ...(a.encryption_key ? { encryption_key: find('authentik_crypto.certificatekeypair', 'name', a.encryption_key) } : {}),
        sub_mode: a.sub_mode,
        ...flows(a),
      };
    }
    out.push({ owner: `authentik_applications.${slug}`, entry: { model: providerModel(a), id: `provider-${slug}`, identifiers: { name }, attrs } });
  }
  for (const [slug, a] of apps) {
    const attrs = {
      name: a.name,
      slug,
      provider: keyOf(`provider-${slug}`),
      open_in_new_tab: a.open_in_new_tab,
      policy_engine_mode: 'any',
      ...(a.launch_url ? { meta_launch_url: a.launch_url } : {}),
      ...(a.description ? { meta_description: a.description } : {}),
      ...(a.icon ? { icon: a.icon } : {}),
      ...(a.section ? { group: a.section } : {}),
    };
    out.push({ owner: `authentik_applications.${slug}`, entry: { model: 'authentik_core.application', id: `app-${slug}`, identifiers: { slug }, attrs } });
  }
  for (const [slug, a] of apps) {
    for (const [order, group] of (a.groups ?? []).entries()) {
      out.push({ owner: `authentik_applications.${slug}.groups`, entry: binding(slug, group, { order, enabled: true, negate: false, timeout: 30 }) });
    }
  }
  const forward = apps.filter(([, a]) => isForward(a)).map(([slug]) => keyOf(`provider-${slug}`));
  if (forward.length) out.push({ owner: 'the embedded outpost', entry: outpost(forward) });
  return out;
}

const binding = (app: string, group: string, attrs?: Record<string, unknown>): Entry => ({
  model: 'authentik_policies.policybinding',
  identifiers: { target: keyOf(`app-${app}`), group: keyOf(`group-${group}`) },
  ...(attrs ? { attrs } : {}),
});

// The embedded outpost serves hostctl's forward-auth providers AND whatever else it has:
// `present` would replace its providers list whole, so the list is built inside authentik at
// apply time: !Enumerate's MAP output merges its items with deepmerge's always_merger, which
// appends lists, so [the outpost's current providers, hostctl's] become one list (a
// provider twice is harmless: Django's set() adds each once). hostctl's removed providers
// leave it by being deleted (state: absent).
function outpost(providers: Tagged[]): Entry {
  const current = new Tagged('!AtIndex', [new Tagged('!FindObject', ['authentik_outposts.outpost', ['managed', EMBEDDED_OUTPOST]]), 'providers', []]);
  return {
    model: 'authentik_outposts.outpost',
    identifiers: { managed: EMBEDDED_OUTPOST },
    attrs: new Tagged('!Enumerate', [[current, providers], 'MAP', ['providers', new Tagged('!Value', 0)]]),
  };
}

// What a blueprint text declares (present) and still removes (absent), as keys. Entries of
// other shapes are not hostctl's and are ignored (never turned into a removal).
export function declaredIn(text: string): { present: Set<Key>; absent: Set<Key> } {
  const doc = parseBlueprint(text) as { entries?: unknown };
  const present = new Set<Key>();
  const absent = new Set<Key>();
  for (const raw of Array.isArray(doc?.entries) ? doc.entries : []) {
    const e = raw as Partial<Entry>;
    const ids = (e.identifiers ?? {}) as Record<string, unknown>;
    const ref = (v: unknown, prefix: string) => (v instanceof Tagged && v.tag === '!KeyOf' && typeof v.value === 'string' && v.value.startsWith(prefix) ? v.value.slice(prefix.length) : undefined);
    let key: Key | undefined;
    if (e.model === 'authentik_core.application' && typeof ids.slug === 'string') key = appKey(ids.slug);
    else if (e.model === 'authentik_core.group' && typeof ids.name === 'string') key = groupKey(ids.name);
    else if (typeof e.model === 'string' && /^authentik_providers_(proxy\.proxy|oauth2\.oauth2)provider$/.test(e.model) && typeof ids.name === 'string' && ids.name.startsWith('hostctl-')) key = providerKey(e.model, ids.name);
    else if (e.model === 'authentik_policies.policybinding') {
      const [app, group] = [ref(ids.target, 'app-'), ref(ids.group, 'group-')];
      if (app !== undefined && group !== undefined) key = bindingKey(app, group);
    }
    if (key) (e.state === 'absent' ? absent : present).add(key);
  }
  return { present, absent };
}

// The blueprint for a declaration. `previous` is the file now on the host (the record of what
// hostctl declared) and whether authentik has verifiably applied it: what it declared and
// this one does not becomes `state: absent`; its absent entries stay until an apply of them
// was verified (after that, an object of that name is someone else's again).
export function renderBlueprint(d: Declaration, previous?: { text: string; applied: boolean }): { text: string; schema: SchemaVersion; owned: Owned[] } {
  const schema = schemaFor(d.authentik_version);
  if (!schema) {
    throw inputError(`authentik_applications/authentik_groups need authentik ${SCHEMAS[0]} or newer (the oldest blueprint schema hostctl has), authentik_version is ${d.authentik_version}`);
  }
  const present = presentEntries(d);
  const now = new Set<Key>();
  for (const [slug, a] of Object.entries(d.authentik_applications)) {
    now.add(appKey(slug)).add(providerKey(providerModel(a), providerName(slug)));
    for (const g of a.groups ?? []) now.add(bindingKey(slug, g));
  }
  for (const name of Object.keys(d.authentik_groups)) now.add(groupKey(name));
  const before = previous ? declaredIn(previous.text) : { present: new Set<Key>(), absent: new Set<Key>() };
  const gone = [...before.present, ...(previous?.applied ? [] : before.absent)].filter((k) => !now.has(k)).sort();
  const absent = (kind: string) => gone.filter((k) => k.startsWith(`${kind}\0`)).map((k) => k.split('\0').slice(1));
  const removed: Owned[] = [
    ...absent('app').map(([slug]) => ({ owner: `removed application ${slug}`, entry: { model: 'authentik_core.application', state: 'absent' as const, identifiers: { slug } } })),
    ...absent('provider').map(([model, name]) => ({ owner: `removed provider ${name}`, entry: { model: model!, state: 'absent' as const, identifiers: { name } } })),
    ...absent('group').map(([name]) => ({ owner: `removed group ${name}`, entry: { model: 'authentik_core.group', state: 'absent' as const, identifiers: { name } } })),
  ];
  // A binding goes with its application or group when either goes; otherwise it is removed
  // on its own, after the entries its !KeyOf names.
  const unbound = absent('binding')
    .filter(([app, group]) => now.has(appKey(app!)) && now.has(groupKey(group!)))
    .map(([app, group]) => ({ owner: `authentik_applications.${app}.groups (removed ${group})`, entry: { ...binding(app!, group!), state: 'absent' as const } }));
  const outpostAt = present.findIndex((o) => o.entry.model === 'authentik_outposts.outpost');
  const owned = [...removed, ...(outpostAt < 0 ? [...present, ...unbound] : [...present.slice(0, outpostAt), ...unbound, ...present.slice(outpostAt)])];
  const blueprint = {
    version: 1,
    metadata: { name: BLUEPRINT_NAME, labels: { 'blueprints.goauthentik.io/description': 'Managed by hostctl (role authentik); edits here are overwritten.', 'hostctl.dev/managed': 'true' } },
    entries: owned.map((o) => o.entry),
  };
  const doc = new Document();
  doc.contents = toNode(blueprint) as Node;
  doc.commentBefore = ' Managed by hostctl (role authentik): the inventory\'s authentik_groups and authentik_applications.';
  return { text: doc.toString({ lineWidth: 0 }), schema, owned };
}

function toNode(v: unknown): unknown {
  if (v instanceof Tagged) {
    const node = toNode(v.value) as Scalar | YAMLSeq;
    node.tag = v.tag;
    // As authentik's docs write them: !Find [model, [field, value]].
    if (node instanceof YAMLSeq) node.flow = true;
    return node;
  }
  if (Array.isArray(v)) {
    const seq = new YAMLSeq();
    seq.items = v.map(toNode);
    return seq;
  }
  if (v && typeof v === 'object') {
    const map = new YAMLMap();
    for (const [k, val] of Object.entries(v)) if (val !== undefined) map.items.push(new Pair(new Scalar(k), toNode(val)));
    return map;
  }
  return new Scalar(v);
}

// A blueprint's text as values, authentik's tags as Tagged. Unknown tags are an error: what
// hostctl reads back is what it wrote.
export function parseBlueprint(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw inputError(`not a YAML document: ${doc.errors[0]!.message.split('\n')[0]}`);
  const walk = (n: unknown): unknown => {
    const node = n as Node | null;
    let value: unknown;
    if (isScalar(node)) value = node.value;
    else if (isSeq(node)) value = node.items.map(walk);
    else if (isMap(node)) value = Object.fromEntries(node.items.map((p) => [String(isScalar(p.key) ? p.key.value : p.key), walk(p.value)]));
    else value = null;
    const tag = node && 'tag' in node ? node.tag : undefined;
    if (!tag || !tag.startsWith('!')) return value;
    if (!TAGS.includes(tag)) throw inputError(`tag ${tag} is not one hostctl writes`);
    return new Tagged(tag, value);
  };
  return walk(doc.contents);
}

// --- validation ------------------------------------------------------------------------

// The value a tag resolves to when authentik applies the blueprint, in the shape the schema
// checks: a primary key of the model it points at (providers have integer keys, everything
// else a UUID; a policy binding's target is the application's pbm_uuid), an environment
// variable's string, and !Enumerate/!AtIndex/!FindObject evaluated as authentik does.
const UUID = '00000000-0000-4000-8000-000000000000';
const pkOf = (model: string) => (/^authentik_providers_\w+\.\w*provider$/.test(model) ? 1 : UUID);

// What the tags resolve against: the ids of the blueprint's entries (id -> model) and, for
// !FindObject, an object authentik would find (none assumed: {}).
export interface TagScope {
  models: Map<string, string>;
  findObject?: (model: string) => Record<string, unknown>;
}

export function resolveTags(v: unknown, scope: TagScope, context: unknown[] = []): unknown {
  const models = scope.models;
  const r = (x: unknown) => resolveTags(x, scope, context);
  if (Array.isArray(v)) return v.map(r);
  if (!(v instanceof Tagged)) return v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, r(x)])) : v;
  const args = v.value as unknown[];
  switch (v.tag) {
    case '!KeyOf': {
      const model = models.get(String(v.value));
      if (!model) throw new Error(`!KeyOf ${String(v.value)}: no entry has that id`);
      return pkOf(model);
    }
    case '!Find':
      return pkOf(String(args[0]));
    case '!FindObject':
      return scope.findObject?.(String(args[0])) ?? {};
    case '!Env':
      return 'a value from the environment';
    case '!AtIndex': {
      const [obj, key, fallback] = [r(args[0]) as Record<string, unknown>, r(args[1]) as string, args.length > 2 ? r(args[2]) : undefined];
      return key in obj ? obj[key] : fallback;
    }
    case '!Value':
      return context.at(-1 - Number(v.value));
    case '!Enumerate': {
      const [items, mode, body] = args as [unknown, string, unknown];
      const list = r(items) as unknown[];
      if (mode === 'SEQ') return list.map((x) => resolveTags(body, scope, [...context, x]));
      // MAP: deepmerge's always_merger: lists appended, mappings merged.
      const out: Record<string, unknown> = {};
      for (const x of list) {
        const [k, val] = resolveTags(body, scope, [...context, x]) as [string, unknown];
        out[k] = Array.isArray(out[k]) && Array.isArray(val) ? [...(out[k] as unknown[]), ...val] : val;
      }
      return out;
    }
  }
  throw new Error(`tag ${v.tag} has no known value`);
}

type SchemaDoc = { properties: Record<string, unknown>; required: string[]; $defs: Record<string, unknown> & { blueprint_entry: { oneOf: Array<{ properties: { model: { const: string } } }> } } };
const schemaDoc = (version: SchemaVersion): SchemaDoc =>
  JSON.parse(readFileSync(fileURLToPath(new URL(`./blueprint-schemas/blueprint-schema-${version}.json`, import.meta.url)), 'utf8')) as SchemaDoc;

// The schema of one model's entries: its alternative of blueprint_entry with only the $defs
// it references (the whole file has ~250 models), compiled once per validation.
function entryValidator(doc: SchemaDoc, ajv: Ajv, model: string): ValidateFunction | undefined {
  const alternative = doc.$defs.blueprint_entry.oneOf.find((a) => a.properties.model.const === model);
  if (!alternative) return undefined;
  const defs: Record<string, unknown> = {};
  const collect = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(collect);
    if (!v || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string' && x.startsWith('#/$defs/')) {
        const name = x.slice('#/$defs/'.length);
        if (!(name in defs)) {
          defs[name] = doc.$defs[name];
          collect(defs[name]);
        }
      } else collect(x);
    }
  };
  collect(alternative);
  return ajv.compile({ ...alternative, $defs: defs });
}

// Blueprint fields named as the declaration names them.
const DECLARED: Record<string, string> = { meta_launch_url: 'launch_url', meta_description: 'description', group: 'section', property_mappings: 'scopes', mode: 'protect' };

// Checks a rendered blueprint text against authentik's schema for `version`: each entry, its
// tags resolved to the values authentik would put there. A failure names what in the
// declaration it comes from and the field.
export function validateBlueprint(text: string, version: SchemaVersion, owners: string[] = []): void {
  const doc = parseBlueprint(text) as { version?: unknown; metadata?: { name?: unknown }; entries?: unknown };
  const problems: string[] = [];
  if (doc?.version !== 1) problems.push('version: must be 1');
  if (typeof doc?.metadata?.name !== 'string') problems.push('metadata.name: must be a string');
  const entries = (Array.isArray(doc?.entries) ? doc.entries : []) as Entry[];
  const models = new Map(entries.filter((e) => typeof e.id === 'string').map((e) => [e.id!, e.model]));
  const schema = schemaDoc(version);
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats.default(ajv);
  const validators = new Map<string, ValidateFunction | undefined>();
  entries.forEach((entry, i) => {
    const who = owners[i] ?? `entry ${i + 1} (${entry.model})`;
    let resolved: unknown;
    try {
      resolved = resolveTags(entry, { models });
    } catch (error) {
      problems.push(`${who}: ${(error as Error).message}`);
      return;
    }
    const model = String(entry.model);
    if (!validators.has(model)) validators.set(model, entryValidator(schema, ajv, model));
    const validate = validators.get(model);
    if (!validate) return void problems.push(`${who}: model ${String(entry.model)} is not in authentik ${version}'s schema`);
    if (!validate(resolved)) problems.push(...describe(validate.errors ?? []).map((m) => `${who}: ${m}`));
  });
  if (problems.length) {
    throw inputError(`the blueprint does not match authentik ${version}'s schema:\n  ${problems.join('\n  ')}`, {
      hint: 'fix the named field in the inventory; nothing was written',
    });
  }
}

function describe(errors: ErrorObject[]): string[] {
  const seen = new Set<string>();
  for (const e of errors) {
    const parts = e.instancePath.split('/').filter(Boolean);
    const [section, field, ...rest] = parts;
    const where = section === 'attrs' || section === 'identifiers'
      ? `${field ? (DECLARED[field] ? `${DECLARED[field]} (blueprint field ${field})` : field) : section}${rest.length ? `[${rest.join('][')}]` : ''}`
      : parts.join('.') || '(entry)';
    seen.add(`${where}: ${e.message}${e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : ''}`);
  }
  return [...seen];
}

export const sha512 = (text: string) => createHash('sha512').update(text).digest('hex');
