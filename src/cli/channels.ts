import type { HostConnection } from '../inventory/connection-vars.js';
import { LocalChannel } from '../transport/local.js';
import { SshChannel } from '../transport/ssh/index.js';
import type { Channel } from '../transport/transport.js';

export interface ChannelSettings {
  knownHostsFile?: string | undefined;
  acceptNewHostKeys?: boolean;
  interactive?: boolean;
}

// ansible_connection decides the transport; the CLI's host key flags apply to every host,
// an inventory's hostctl_known_hosts_file to its hosts.
export function channelFactory(settings: ChannelSettings) {
  return (host: string, c: HostConnection, note: (text: string) => void): Channel => {
    if (c.connection === 'local') return new LocalChannel();
    for (const text of c.notes) note(text);
    return new SshChannel({
      alias: host,
      host: c.address !== host ? c.address : undefined,
      port: c.port,
      user: c.user,
      privateKeyFiles: c.privateKeyFiles,
      proxyJump: c.proxyJump,
      knownHostsFile: settings.knownHostsFile ?? c.knownHostsFile,
      // The flag only ever loosens: without it, the inventory's setting (or the ssh config's).
      acceptNewHostKeys: settings.acceptNewHostKeys === true ? true : c.acceptNewHostKeys,
      connectRetries: c.connectRetries,
      interactive: settings.interactive ?? false,
      connectTimeoutMs: c.connectTimeoutMs,
      keepaliveIntervalMs: c.keepaliveMs,
      warn: note,
    });
  };
}
