import { definePlaybook } from 'hostctl';
import { authentik } from '../roles/authentik/index.js';
import { common } from '../roles/common/index.js';
import { podman } from '../roles/podman/index.js';
import { ssh } from '../roles/ssh/index.js';
import { users } from '../roles/users/index.js';

// The reference job: a Debian LXC running authentik as Podman Quadlet units.
export default definePlaybook({
  name: 'authentik',
  hosts: 'authentik',
  roles: [common, ssh, users, podman, authentik],
});
