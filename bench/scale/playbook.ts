import { definePlaybook, defineRole, z } from 'hostctl';

// The controller-scale bench's job (bench/scale): a directory, a file and a guarded command
// under each host's own root, the same as bench/scale/ansible.yml. Converged, it reads the
// host once and changes nothing: what is measured is the controller's cost per host.
const scale = defineRole({
  name: 'scale',
  vars: z.object({ scale_root: z.string() }),
  prefetch: true,
  async run(h, v) {
    await h.directory({ path: v.scale_root, mode: '0755' });
    await h.file({ path: `${v.scale_root}/motd`, content: 'managed by the hostctl scale bench\n', mode: '0644' });
    await h.command({ cmd: `uname -r > ${v.scale_root}/kernel`, creates: `${v.scale_root}/kernel` });
  },
});

export default definePlaybook({ name: 'scale', hosts: 'all', roles: [scale] });
