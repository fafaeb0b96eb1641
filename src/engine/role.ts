import type { z } from 'zod';
import type { Tasks } from './tasks.js';

type AnyObjectSchema = z.ZodObject<z.ZodRawShape>;

// P: what the role's preflight found (e.g. "the newest dump is X"), handed to its body.
export interface RoleDefinition<S extends AnyObjectSchema, D extends Record<string, unknown>, P = undefined> {
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
  // What it returns is the body's third argument, so what the checks chose (a file, a plan)
  // travels with this host's run, never through module state shared by every run.
  preflight?: (h: Tasks, vars: z.infer<S> & D) => Promise<P>;
  // `checked` is what preflight returned; undefined in a prefetch recording pass, which runs
  // before the preflight does.
  run(h: Tasks, vars: z.infer<S> & D, checked: P | undefined): Promise<unknown>;
}

export interface Role<S extends AnyObjectSchema = AnyObjectSchema, D extends Record<string, unknown> = Record<string, unknown>, P = any>
  extends RoleDefinition<S, D, P> {
  readonly kind: 'role';
}

export function defineRole<S extends AnyObjectSchema, D extends Record<string, unknown> = {}, P = undefined>(
  definition: RoleDefinition<S, D, P>,
): Role<S, D, P> {
  return { ...definition, kind: 'role' };
}
