import { change, defineResource, noop, quote } from 'hostctl';

// Stale netavark DNAT rules for a network, found and removed by the script the role installs
// (which the server unit also runs before each start). Listing is read-only, so check mode
// shows exactly which rules a run would remove.
export const dnatCleanup = defineResource<{ script: string; network: string }>({
  kind: 'netavark-dnat',
  title: (a) => `stale netavark DNAT rules of ${a.network}`,
  async plan(ctx, a) {
    const stale = (await ctx.conn.check(`${quote(a.script)} --list ${quote(a.network)}`)).trim();
    if (stale === '') return noop('none');
    return change(`remove ${stale.split('\n').length} stale rule(s)`, async () => {
      await ctx.conn.check(`${quote(a.script)} ${quote(a.network)}`);
    }, stale);
  },
});
