import { defineRole, z } from 'hostctl';

// An admin user who logs in with keys and may sudo. The account has no password, so sudo
// is NOPASSWD by default (admin_sudo_nopasswd: false needs a password set by other means).
export const users = defineRole({
  name: 'users',
  vars: z.object({
    admin_user: z.string().regex(/^[a-z_][a-z0-9_-]*$/).default('admin'),
    admin_shell: z.string().default('/bin/bash'),
    admin_authorized_keys: z.array(z.string().regex(/^(ssh-|ecdsa-|sk-)/, 'expected an OpenSSH public key line')).min(1, 'give at least one key: the admin user logs in with keys only'),
    admin_sudo_nopasswd: z.boolean().default(true),
  }),
  templates: new URL('./templates/', import.meta.url),
  prefetch: true,
  async run(h, v) {
    await h.apt({ packages: ['sudo'] });
    await h.user({ name: v.admin_user, shell: v.admin_shell, groups: ['sudo'] });
    await h.authorizedKey({ user: v.admin_user, keys: v.admin_authorized_keys, exclusive: true });
    await h.template({ src: 'sudoers.hbs', dest: `/etc/sudoers.d/90-hostctl-${v.admin_user}`, mode: '0440', owner: 'root', group: 'root', validate: 'visudo -cqf %s' });
  },
});
