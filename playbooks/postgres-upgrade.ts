import { definePlaybook } from 'hostctl';
import { postgresUpgrade } from '../roles/authentik/postgres-upgrade.js';

// Moves authentik's database to the Postgres major of postgres_image (which the authentik
// playbook refuses to start on an older data directory): dump, new data directory,
// restore, row counts compared, old directory kept. Then run playbooks/authentik.ts as usual.
export default definePlaybook({
  name: 'postgres major upgrade',
  hosts: 'authentik',
  roles: [postgresUpgrade],
});
