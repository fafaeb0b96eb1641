import { definePlaybook } from 'hostctl';
import { authentikRestore } from '../roles/authentik/restore.js';

// Puts a dump back: -e restore_file=NAME (default: the newest in authentik_backup_dir) or
// -e restore_controller_file=PATH; refuses, saying what it would replace, unless run with
// -e confirm_restore=yes. Limit it to one host (-l) unless you mean all of them.
export default definePlaybook({
  name: 'authentik restore',
  hosts: 'authentik',
  roles: [authentikRestore],
});
