import type { Role } from './role.js';

export interface PlaybookDefinition {
  name: string;
  // Host pattern as Ansible's: "all", "web", "web:db", "web:!staging", "web:&prod", "app*".
  hosts: string;
  // Play vars: above inventory variables, below -e extra vars (Ansible's order).
  vars?: Record<string, unknown>;
  // Roles run in this order on every selected host.
  roles: Role<any, any>[];
}

export interface Playbook extends PlaybookDefinition {
  readonly kind: 'playbook';
}

export const definePlaybook = (definition: PlaybookDefinition): Playbook => ({ ...definition, kind: 'playbook' });
