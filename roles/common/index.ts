import { defineRole, name, nameMap, z } from 'hostctl';

// Base hardening a careful admin gives a fresh Debian LXC, kept modest: nothing here may
// surprise a service that runs on the host.
// - security updates install themselves (unattended-upgrades, Debian-Security origin only);
// - the journal is capped so logs cannot fill the disk;
// - network sysctls that an LXC may set in its own namespace: no ICMP redirects, no source
//   routing, log martians. (Kernel-wide ones like kernel.* belong to the Proxmox host.)
// Not done, on purpose: nftables.service is NOT enabled: Debian's /etc/nftables.conf starts
// with `flush ruleset`, which wipes podman's netavark rules and kills published ports.
export const common = defineRole({
  name: 'common',
  vars: z.object({
    common_packages: z.array(name('package')).default(['ca-certificates', 'curl', 'unattended-upgrades', 'apt-listchanges', 'less']),
    common_journal_max_use: z.string().regex(/^\d+[KMG]$/).default('200M'),
    common_sysctls: nameMap('sysctl key', z.union([z.string(), z.number()])).default({
      'net.ipv4.conf.all.accept_redirects': 0,
      'net.ipv4.conf.default.accept_redirects': 0,
      'net.ipv4.conf.all.send_redirects': 0,
      'net.ipv4.conf.all.accept_source_route': 0,
      'net.ipv6.conf.all.accept_redirects': 0,
      'net.ipv4.conf.all.log_martians': 1,
    }),
  }),
  templates: new URL('./templates/', import.meta.url),
  prefetch: true,
  handlers: {
    'restart journald': (h) => h.service({ name: 'systemd-journald.service', state: 'restarted' }),
  },
  async run(h, v) {
    await h.apt({ packages: v.common_packages });
    await h.template({ src: '20auto-upgrades.hbs', dest: '/etc/apt/apt.conf.d/20auto-upgrades', mode: '0644' });
    await h.directory({ path: '/etc/systemd/journald.conf.d', mode: '0755' });
    await h.template({ src: 'journald.conf.hbs', dest: '/etc/systemd/journald.conf.d/50-hostctl.conf', mode: '0644', notify: 'restart journald' });
    for (const [name, value] of Object.entries(v.common_sysctls)) {
      await h.sysctl({ name, value, file: '/etc/sysctl.d/60-hostctl-common.conf' });
    }
  },
});
