import { change, defineFact, defineResource, noop, quote } from 'hostctl';

// Stale netavark DNAT rules for a network, found and removed by the script the role installs
// (which the server unit also runs before each start). Listing is read-only, so check mode
// shows exactly which rules a run would remove.
interface Args {
  script: string;
  network: string;
}

const staleRules = (a: Args) =>
  defineFact({ id: `netavark-stale:${a.network}`, command: `${quote(a.script)} --list ${quote(a.network)}`, parse: (r) => r.stdout.trim() });

export const dnatCleanup = defineResource<Args>({
  kind: 'netavark-dnat',
  title: (a) => `stale netavark DNAT rules of ${a.network}`,
  probes: (a) => [{ fact: staleRules(a) }],
  async plan(ctx, a) {
    const stale = await ctx.facts.get(staleRules(a));
    if (stale === '') return noop('none');
    return change(`remove ${stale.split('\n').length} stale rule(s)`, async () => {
      await ctx.conn.check(`${quote(a.script)} ${quote(a.network)}`);
    }, stale);
  },
});
