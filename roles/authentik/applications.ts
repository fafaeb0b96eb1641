import { secret, z } from 'hostctl';

// What authentik is for, declared in the inventory: groups, and one application per service
// with its provider. The authentik role renders it as a blueprint (blueprint.ts); the proxy
// role reads the same declaration for its forward-auth wiring. One schema for both, so an
// inventory mistake is named the same way wherever it is read.

// authentik's slugs are Django SlugFields: letters, digits, hyphens and underscores.
const slug = () => z.string().regex(/^[A-Za-z0-9_-]+$/, 'a slug: letters, digits, - and _');

// An absolute http(s) URL without credentials, query or fragment (authentik's external host
// and redirect URIs; a proxy's upstream).
// A host name of letters, digits, dots and hyphens, or a bracketed IPv6 address. URL parsing
// lets `;`, `{`, `}`, `$` and backquotes through, which in a proxy's configuration would start
// a directive or a rule of their own.
export const plainHost = (hostname: string) => /^(?:[a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/i.test(hostname);

const httpUrl = (what: string) =>
  z.string().refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password && !u.hash && plainHost(u.hostname);
    } catch {
      return false;
    }
  }, `${what}: an absolute http:// or https:// URL (a host name of letters, digits, dots and hyphens) without credentials or #fragment`);

const single = (v: string) => !/[\r\n]/.test(v);
const line = () => z.string().min(1).refine(single, 'must be one line');

export const group = z.strictObject({
  // Other groups declared here this one belongs to (a group only authentik knows would be
  // looked up with !Find, which yields null when nothing matches, silently).
  parents: z.array(line()).default([]),
  is_superuser: z.boolean().default(false),
});

// What every application has, whatever protects it.
const common = {
  name: line(),
  description: line().optional(),
  // A URL, or a path under authentik's /media (e.g. "application-icons/grafana.svg").
  icon: line().optional(),
  // The section the application is listed under in the user's library.
  section: line().optional(),
  launch_url: httpUrl('launch_url').optional(),
  open_in_new_tab: z.boolean().default(false),
  // Who may open it (policy bindings on the application), by group name; omitted: everyone
  // who can log in.
  groups: z.array(line()).optional(),
  // Flows by slug; authentik's shipped defaults unless set.
  authorization_flow: slug().default('default-provider-authorization-implicit-consent'),
  invalidation_flow: slug().default('default-provider-invalidation-flow'),
};

// Forward auth: the reverse proxy asks authentik's embedded outpost on every request.
const forward = {
  ...common,
  external_host: httpUrl('external_host'),
  // Requests whose path matches (one regex per line) pass without a login, e.g. an API.
  skip_path_regex: z.array(z.string().min(1)).default([]),
  // Where the proxy role sends the request once authentik said yes, e.g. http://10.0.0.7:3923.
  upstream: httpUrl('upstream').optional(),
};

export const application = z.discriminatedUnion(
  'protect',
  [
    // One application on its own host name.
    z.strictObject({ protect: z.literal('forward_single'), ...forward }),
    // Every host under a domain with one login: the cookie is set for cookie_domain.
    z.strictObject({ protect: z.literal('forward_domain'), ...forward, cookie_domain: z.string().regex(/^\.?[A-Za-z0-9.-]+$/, 'a domain like home.example.org') }),
    // OpenID Connect: the service logs in against authentik itself.
    z.strictObject({
      protect: z.literal('oidc'),
      ...common,
      redirect_uris: z
        .array(z.union([httpUrl('redirect_uris'), z.strictObject({ url: z.string().min(1), matching_mode: z.enum(['strict', 'regex']).default('strict') })]))
        .min(1),
      client_id: z.string().regex(/^[\x21-\x7e]{1,255}$/, 'printable ASCII without spaces, at most 255 characters'),
      // A vault value: rendered as !Env, never into the blueprint file (it goes to the 0600
      // .env, whose format has no quoting: one line).
      client_secret: secret().refine((v) => !/[\r\n]/.test(v.reveal()), 'must be a single line').optional(),
      client_type: z.enum(['confidential', 'public']).default('confidential'),
      // Scope mappings by scope name; `profile` carries the `groups` claim.
      scopes: z.array(z.enum(['openid', 'email', 'profile', 'offline_access', 'entitlements'])).default(['openid', 'email', 'profile']),
      // The signing certificate by name (authentik's own self-signed one by default).
      signing_key: line().default('authentik Self-signed Certificate'),
      // Empty by default: Proxmox VE, among others, rejects encrypted tokens.
      encryption_key: line().optional(),
      sub_mode: z.enum(['hashed_user_id', 'user_id', 'user_uuid', 'user_username', 'user_email', 'user_upn']).default('hashed_user_id'),
    }).refine((a) => a.client_type === 'public' || a.client_secret !== undefined, { message: 'a confidential client needs client_secret (a vault value)', path: ['client_secret'] }),
  ],
  { error: 'protect: one of forward_single, forward_domain, oidc' },
);

export type Application = z.infer<typeof application>;
export type ForwardApplication = Extract<Application, { protect: 'forward_single' | 'forward_domain' }>;
export const isForward = (a: Application): a is ForwardApplication => a.protect !== 'oidc';

// The role variables of the declaration (merged into the authentik role's, read by the proxy role).
// The .env variable a client secret reaches the worker through (blueprint.ts writes `!Env` of it).
export const clientSecretEnv = (slug: string) => `AUTHENTIK_HOSTCTL_CLIENT_SECRET_${slug.toUpperCase().replace(/-/g, '_')}`;

// The role variables of the declaration (merged into the authentik role's, read by the proxy role).
export const declarationVars = {
  authentik_groups: z
    .record(line(), group)
    .default({})
    .superRefine((groups, ctx) => {
      for (const [name, g] of Object.entries(groups)) {
        for (const [i, parent] of g.parents.entries()) {
          if (!(parent in groups)) ctx.addIssue({ code: 'custom', path: [name, 'parents', i], message: `${parent} is not declared in authentik_groups` });
        }
      }
      const cycle = parentCycle(groups);
      if (cycle) ctx.addIssue({ code: 'custom', path: [cycle[0]!, 'parents'], message: `the groups are their own parents: ${cycle.join(' -> ')}` });
    }),
  authentik_applications: z
    .record(z.string(), application)
    .default({})
    .superRefine((apps, ctx) => {
      for (const key of Object.keys(apps)) {
        if (!slug().safeParse(key).success) ctx.addIssue({ code: 'custom', path: [key], message: 'the key is the slug: letters, digits, - and _' });
      }
      // Two applications answering for one host would make the outpost pick one at random.
      const seen = new Map<string, string>();
      // a-b and a_b would share one .env variable for their client secrets.
      const envs = new Map<string, string>();
      for (const [key, app] of Object.entries(apps)) {
        if (!isForward(app)) {
          const env = clientSecretEnv(key);
          const other = envs.get(env);
          if (other && app.client_secret) ctx.addIssue({ code: 'custom', path: [key], message: `its client secret would share ${env} with ${other}; rename one slug` });
          if (app.client_secret) envs.set(env, key);
          continue;
        }
        const host = new URL(app.external_host).host;
        const other = seen.get(host);
        if (other) ctx.addIssue({ code: 'custom', path: [key, 'external_host'], message: `${host} is already the external host of ${other}` });
        seen.set(host, key);
      }
    }),
};

// The groups a declaration's application may name: checked where both are known (the role's
// vars), since either may come from another inventory file.
// An application's groups must be declared: a !Find of a group that does not exist yields
// null in authentik, and the binding would silently bind nobody. (A refinement of the role's
// whole variables: it reads two of them.)
export function declaredGroupsOnly(v: { authentik_groups: Record<string, unknown>; authentik_applications: Record<string, Application> }, ctx: z.RefinementCtx): void {
  for (const { app, index, group } of undeclaredGroups(v.authentik_groups, v.authentik_applications)) {
    ctx.addIssue({ code: 'custom', path: ['authentik_applications', app, 'groups', index], message: `${group} is not declared in authentik_groups` });
  }
}

export function undeclaredGroups(groups: Record<string, unknown>, apps: Record<string, Application>): Array<{ app: string; index: number; group: string }> {
  return Object.entries(apps).flatMap(([app, a]) => (a.groups ?? []).flatMap((group, index) => (group in groups ? [] : [{ app, index, group }])));
}

// A chain of parents that comes back to where it started, or undefined.
function parentCycle(groups: Record<string, { parents: string[] }>): string[] | undefined {
  const done = new Set<string>();
  const visit = (name: string, path: string[]): string[] | undefined => {
    if (path.includes(name)) return [...path.slice(path.indexOf(name)), name];
    if (done.has(name) || !groups[name]) return undefined;
    for (const p of groups[name]!.parents) {
      const found = visit(p, [...path, name]);
      if (found) return found;
    }
    done.add(name);
    return undefined;
  };
  for (const name of Object.keys(groups)) {
    const found = visit(name, []);
    if (found) return found;
  }
  return undefined;
}
