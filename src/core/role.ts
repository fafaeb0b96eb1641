import type { z } from 'zod';
import type { Tasks } from './tasks.js';

type AnyObjectSchema = z.ZodObject<z.ZodRawShape>;

export interface RoleDefinition<S extends AnyObjectSchema, D extends Record<string, unknown>> {
  name: string;
  // The variables this role reads, with their defaults. Validated for every host before any
  // host is touched; unknown inventory keys are ignored (other roles read them).
  vars?: S;
  // Values computed from the validated variables (e.g. "does this version use Redis?"), shared
  // by the body and the templates, so templates stay pure functions of the inventory.
  derive?: (vars: z.infer<S>) => D;
  // Folder of *.hbs templates; every one is rendered in strict mode during validation.
  templates?: string | URL;
  tags?: string[];
  // Run once after the role body, in this order, only when notified.
  handlers?: Record<string, (h: Tasks, vars: z.infer<S> & D) => Promise<unknown>>;
  // Read everything the role's tasks will look at before its first task: the body is first
  // run in a recording pass (tasks answer "ok", no connection), and what every such role (and
  // its preflight) will read is fetched in the host's first round trip; a role after a
  // change, or after a role without prefetch, reads its part again. Only for bodies whose
  // effects all go through `h`.
  prefetch?: boolean;
  // Read-only checks run on each host after connecting and before ANY role of the playbook
  // changes anything (e.g. "podman is too old for Quadlet"): a refusal leaves the host as it was.
  preflight?: (h: Tasks, vars: z.infer<S> & D) => Promise<unknown>;
  run(h: Tasks, vars: z.infer<S> & D): Promise<unknown>;
}

export interface Role<S extends AnyObjectSchema = AnyObjectSchema, D extends Record<string, unknown> = Record<string, unknown>>
  extends RoleDefinition<S, D> {
  readonly kind: 'role';
}

export function defineRole<S extends AnyObjectSchema, D extends Record<string, unknown> = {}>(
  definition: RoleDefinition<S, D>,
): Role<S, D> {
  return { ...definition, kind: 'role' };
}
