import { defineRole, z } from 'hostctl';

// sshd hardening as a drop-in: keys only, root by key only. The drop-in is checked by
// `sshd -t` together with the whole configuration BEFORE it replaces the old one, and sshd
// is reloaded (not restarted), so a bad setting can never lock the run out.
export const ssh = defineRole({
  name: 'ssh',
  vars: z.object({
    ssh_permit_root_login: z.enum(['prohibit-password', 'no']).default('prohibit-password'),
    ssh_max_auth_tries: z.number().int().min(1).max(10).default(3),
    ssh_allow_tcp_forwarding: z.boolean().default(false),
  }),
  templates: new URL('./templates/', import.meta.url),
  prefetch: true,
  handlers: {
    'reload sshd': (h) => h.service({ name: 'ssh.service', state: 'reloaded' }),
  },
  async run(h) {
    await h.apt({ packages: ['openssh-server'] });
    await h.template({
      src: 'hardening.conf.hbs',
      dest: '/etc/ssh/sshd_config.d/50-hostctl.conf',
      mode: '0644',
      // The new drop-in first (sshd keeps the first value it reads), then the whole config.
      validate: `c=$(mktemp) && { echo "Include %s"; echo "Include /etc/ssh/sshd_config"; } > "$c" && sshd -t -f "$c"; r=$?; rm -f "$c"; exit $r`,
      notify: 'reload sshd',
    });
  },
});
