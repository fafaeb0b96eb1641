import { definePlaybook } from 'hostctl';
import { authentikBackup } from '../roles/authentik/fetch.js';

// The nightly off-host backup, run from the controller (cron): a fresh verified backup set
// on each authentik host, copied to backups/<host>/ (backup_controller_dir) and checked by
// size and sha256, the oldest copies beyond backup_controller_keep removed. One summary
// line per host in the recap; exit 2 if any step failed on any host.
export default definePlaybook({
  name: 'authentik backup',
  hosts: 'authentik',
  roles: [authentikBackup],
});
