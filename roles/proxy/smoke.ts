import { defineResource, hostError, noop, quote } from 'hostctl';
import { OUTPOST, type Site } from './render.js';

// The requests that prove a forward-auth application's wiring, made with curl on the proxy
// host itself (the same in the lab and in production), after every change:
// - without a session: a 302 to the outpost's start URL carrying the original URL in `rd`;
// - with a forged X-authentik-username and no session: still that 302, never the app;
// - /outpost.goauthentik.io/ping on the app's host: authentik's 204, not the app.
export const FORGED = 'hostctl-smoke-forged';

export function smokeCommand(s: Site): string {
  const curl = `curl -sk --max-time 10 --resolve ${quote(`${s.hostname}:${s.port}:127.0.0.1`)} -o /dev/null`;
  return [
    `printf 'start %s\\n' "$(${curl} -w '%{http_code} %{redirect_url}' ${quote(`${s.url}/`)})"`,
    `printf 'forged %s\\n' "$(${curl} -H ${quote(`X-authentik-username: ${FORGED}`)} -w '%{http_code}' ${quote(`${s.url}/`)})"`,
    `printf 'outpost %s\\n' "$(${curl} -w '%{http_code}' ${quote(`${s.url}${OUTPOST}/ping`)})"`,
  ].join('; ');
}

// What is wrong with the answers, one phrase each; empty when the wiring holds.
export function judge(s: Site, stdout: string): string[] {
  const said = new Map(stdout.trim().split('\n').map((l) => [l.split(' ')[0], l.split(' ').slice(1)] as const));
  const problems: string[] = [];
  const [code = '', location = ''] = said.get('start') ?? [];
  const want = `${s.url}/`;
  let start: URL | undefined;
  try {
    start = new URL(location);
  } catch {
    start = undefined;
  }
  if (code !== '302' || !start || start.origin !== s.url || start.pathname !== `${OUTPOST}/start` || start.searchParams.get('rd') !== want) {
    problems.push(`without a session ${want} answered ${code || 'nothing'}${location ? ` to ${location}` : ''}, not a 302 to ${s.url}${OUTPOST}/start?rd=${want}`);
  }
  const [forged = ''] = said.get('forged') ?? [];
  if (forged !== '302') problems.push(`with a forged X-authentik-username and no session it answered ${forged || 'nothing'}, not the sign-in redirect${/^2/.test(forged) ? ' (the app was reached)' : ''}`);
  const [outpost = ''] = said.get('outpost') ?? [];
  if (outpost !== '204') problems.push(`${OUTPOST}/ping answered ${outpost || 'nothing'}, not authentik's 204: the outpost path does not reach authentik`);
  return problems;
}

export const smoke = defineResource<{ site: Site }>({
  kind: 'proxy-smoke',
  title: (a) => `smoke test ${a.site.key} (${a.site.url})`,
  async plan(ctx, { site }) {
    // One try: the reloads (nginx-reload, `caddy reload`) return once the new configuration
    // serves, so an answer is the new wiring's. Retrying until one passes would let the old
    // configuration pass for a broken new one.
    const r = await ctx.conn.exec(smokeCommand(site), { signal: ctx.signal });
    const problems = r.code === 0 ? judge(site, r.stdout) : [`curl failed (exit ${r.code}): ${r.stderr.trim().split('\n').pop()}`];
    if (problems.length) throw hostError(`${site.key} (${site.url}): ${problems.join('; ')}`);
    return noop(`302 to the outpost's start with rd, forged identity refused, ${OUTPOST} reaches authentik`);
  },
});
