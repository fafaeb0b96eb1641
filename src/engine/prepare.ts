import { z } from 'zod';
import { HostctlError, inputError } from '../core/errors.js';
import { redact, revealAll } from '../core/secret.js';
import { typedSecretsFor } from '../core/schema.js';
import { firstLine } from '../core/text.js';
import type { Playbook } from './playbook.js';
import type { Role } from './role.js';
import type { Inventory, Sourced } from '../inventory/model.js';
import { selectHosts } from '../inventory/patterns.js';
import { plainVars, resolveHostVars } from '../inventory/vars.js';
import { connectionFromVars, type HostConnection } from '../inventory/connection-vars.js';
import { renderFolder } from '../resources/template.js';

export interface PreparedRole {
  role: Role<z.ZodObject<z.ZodRawShape>, Record<string, unknown>>;
  vars: Record<string, unknown>;
  templates: Map<string, string>;
}

export interface HostPlan {
  name: string;
  connection: HostConnection;
  vars: Map<string, Sourced>;
  roles: PreparedRole[];
  // Fact values pinned by the variable hostctl_fact_overrides (tests, or a user who knows).
  factOverrides: Map<string, unknown>;
}

export interface PrepareOptions {
  limit?: string | undefined;
  extraVars?: Record<string, unknown>;
  playbookFile?: string;
}

// Everything that can be known before touching a host is checked here, for every selected
// host: connection variables, each role's variables against its schema, every template.
// All problems are reported together; nothing runs if there is one.
export async function prepare(playbook: Playbook, inventory: Inventory, options: PrepareOptions = {}): Promise<HostPlan[]> {
  let hosts = selectHosts(inventory, playbook.hosts, `${options.playbookFile ?? playbook.name}: hosts`);
  if (options.limit) {
    const limited = new Set(selectHosts(inventory, options.limit, '--limit'));
    hosts = hosts.filter((h) => limited.has(h));
  }
  if (hosts.length === 0) {
    throw inputError(`no hosts match "${playbook.hosts}"${options.limit ? ` limited to "${options.limit}"` : ''}`, {
      hint: `inventory ${inventory.sources.join(', ')} has: ${[...inventory.hosts.keys()].join(', ') || 'no hosts'}`,
    });
  }
  const problems: string[] = [];
  const plans: HostPlan[] = [];
  for (const name of hosts) {
    try {
      plans.push(await prepareHost(name, playbook, inventory, options, problems));
    } catch (error) {
      // Not an input problem but a bug (e.g. a role's derive() threw): exit 1, not 5.
      if (!(error instanceof HostctlError)) throw error;
      problems.push(oneLine(error));
    }
  }
  if (problems.length > 0) {
    throw inputError(
      problems.length === 1 ? problems[0]! : `${problems.length} problems in the variables:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      { hint: 'nothing was changed on any host' },
    );
  }
  return plans;
}

const oneLine = (e: HostctlError) => `${e.where ? `${e.where}: ` : ''}${e.message}${e.hint ? ` (${e.hint})` : ''}`;

async function prepareHost(name: string, playbook: Playbook, inventory: Inventory, options: PrepareOptions, problems: string[]): Promise<HostPlan> {
  const vars = resolveHostVars(inventory, name, {
    ...(playbook.vars ? { play: playbook.vars, playSource: `${options.playbookFile ?? playbook.name} vars` } : {}),
    ...(options.extraVars ? { extra: options.extraVars } : {}),
  });
  const connection = connectionFromVars(name, vars);
  const raw = plainVars(vars);
  const roles: PreparedRole[] = [];
  for (const role of playbook.roles) {
    const schema = role.vars ?? z.object({});
    const parsed = schema.safeParse(typedSecretsFor(schema, raw));
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const key = String(issue.path[0] ?? '');
        const source = vars.get(key)?.source ?? `role ${role.name} defaults`;
        const got = key && vars.has(key) ? `, got ${describeValue(valueAt(raw, issue.path as PropertyKey[]))}` : ', and it is not set';
        problems.push(`${source}: ${keyPath(issue.path) || '(vars)'} (host ${name}, role ${role.name}): ${issue.message}${got}`);
      }
      continue;
    }
    const derived = role.derive ? role.derive(parsed.data) : {};
    const roleVars = { ...parsed.data, ...derived };
    let templates = new Map<string, string>();
    if (role.templates) {
      try {
        templates = await renderFolder(role.templates, revealAll({ ...raw, ...roleVars }) as Record<string, unknown>);
      } catch (error) {
        problems.push(`${error instanceof HostctlError ? oneLine(error) : String(error)} (host ${name}, role ${role.name})`);
      }
    }
    roles.push({ role: role as PreparedRole['role'], vars: roleVars, templates });
  }
  const overrides = raw.hostctl_fact_overrides;
  return {
    name,
    connection,
    vars,
    roles,
    factOverrides: new Map(overrides && typeof overrides === 'object' ? Object.entries(overrides) : []),
  };
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let value = root;
  for (const part of path) value = value && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[part] : undefined;
  return value;
}

// a.b[0]."odd key": a key that is not a plain name is quoted, so a line break in it cannot
// break the message.
function keyPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${/^[\w-]+$/.test(String(p)) ? String(p) : JSON.stringify(String(p))}`))
    .join('');
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = typeof value === 'string' ? `"${value}"` : JSON.stringify(value);
  return redact(firstLine(text, 60));
}
