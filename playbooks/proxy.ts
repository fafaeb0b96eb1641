import { definePlaybook } from 'hostctl';
import { common } from '../roles/common/index.js';
import { proxy } from '../roles/proxy/index.js';

// The reverse proxies in front of authentik's forward-auth applications (group `proxy`).
export default definePlaybook({
  name: 'proxy',
  hosts: 'proxy',
  roles: [common, proxy],
});
