import { createHash } from 'node:crypto';
import { dirname, extname, join } from 'node:path';
import { z } from 'zod';
import { HostctlError, inputError } from '../core/errors.js';
import { redact, revealAll } from '../core/secret.js';
import { typedSecretsFor } from '../core/schema.js';
import { firstLine } from '../core/text.js';
import type { Playbook } from './playbook.js';
import type { Role } from './role.js';
import type { Inventory, Sourced, VarLayer } from '../inventory/model.js';
import { selectHosts } from '../inventory/patterns.js';
import { plainVars, referencedNames, resolveHostVars, type ExtraLayers, type ExtraVars } from '../inventory/vars.js';
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
  // Where hostctl keeps its state on the host (the run journal): hostctl_state_dir, by default
  // /var/lib/hostctl.
  stateDir?: string;
}

export interface PrepareOptions {
  limit?: string | undefined;
  shard?: Shard | undefined;
  extraVars?: ExtraVars;
  playbookFile?: string;
  // The command line's connection settings (-u, --private-key, -b ...) as ansible_* variables,
  // below every inventory variable, as in Ansible.
  connectionDefaults?: Map<string, Sourced>;
}

// The hosts a run acts on: the playbook's pattern, narrowed by --limit. Touches no host.
export function selectPlayHosts(playbook: Playbook, inventory: Inventory, options: Pick<PrepareOptions, 'limit' | 'playbookFile' | 'shard'> = {}): string[] {
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
  // After the emptiness check: a shard that draws none of a small fleet is a run with nothing
  // to do (exit 0), not bad input; every other shard of the same matrix has work.
  if (options.shard) hosts = hosts.filter((h) => shardOf(h, options.shard!.count) === options.shard!.index);
  return hosts;
}

// Everything that can be known before touching a host is checked here, for every selected
// host: connection variables, each role's variables against its schema, every template.
// All problems are reported together; nothing runs if there is one.
export async function prepare(playbook: Playbook, inventory: Inventory, options: PrepareOptions = {}): Promise<HostPlan[]> {
  const hosts = selectPlayHosts(playbook, inventory, options);
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

// --shard I/N: the I-th of N disjoint parts of the selected hosts. A host's part depends on its
// inventory name alone (a hash, not its position), so it stays put when hosts are added or
// removed elsewhere and every machine of a CI matrix computes the same split independently.
export interface Shard {
  index: number;
  count: number;
}

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count) {
    throw inputError(`--shard ${JSON.stringify(text)} is not I/N with 1 <= I <= N`, { hint: '--shard 2/4 runs the second of four parts of the selected hosts' });
  }
  return { index, count };
}

// 1-based; the first 48 bits of SHA-256 spread names evenly and are exact in a double.
export const shardOf = (host: string, count: number): number => (parseInt(createHash('sha256').update(host).digest('hex').slice(0, 12), 16) % count) + 1;

const oneLine = (e: HostctlError) => `${e.where ? `${e.where}: ` : ''}${e.message}${e.hint ? ` (${e.hint})` : ''}`;

async function prepareHost(name: string, playbook: Playbook, inventory: Inventory, options: PrepareOptions, problems: string[]): Promise<HostPlan> {
  const extras: ExtraLayers = {
    ...(playbook.vars ? { play: playbook.vars, playSource: `${options.playbookFile ?? playbook.name} vars` } : {}),
    ...(options.extraVars ? { extra: options.extraVars.vars } : {}),
  };
  const vars = resolveHostVars(inventory, name, extras);
  const connection = connectionFromVars(name, vars, options.connectionDefaults);
  const roles: PreparedRole[] = [];
  for (const role of playbook.roles) {
    const schema = role.vars ?? z.object({});
    const { defaults, unset } = referenceDefaults(role, vars, inventory, name, problems);
    const hostVars = defaults.size > 0 ? resolveHostVars(inventory, name, { ...extras, defaults }) : vars;
    const raw = plainVars(hostVars);
    for (const key of options.extraVars?.text ?? []) if (typeof raw[key] === 'string') raw[key] = typedText(schema.shape[key] as z.ZodType | undefined, raw[key]);
    const parsed = schema.safeParse(typedSecretsFor(schema, raw));
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const key = String(issue.path[0] ?? '');
        if (unset.has(key)) continue;
        const source = hostVars.get(key)?.source ?? `role ${role.name} defaults`;
        const got = key && hostVars.has(key) ? `, got ${describeValue(valueAt(raw, issue.path as PropertyKey[]))}` : ', and it is not set';
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
  const { hostctl_fact_overrides: overrides, hostctl_state_dir: stateDir } = plainVars(vars);
  if (stateDir !== undefined && !(typeof stateDir === 'string' && STATE_DIR.test(stateDir))) {
    problems.push(`${vars.get('hostctl_state_dir')!.source}: hostctl_state_dir (host ${name}): an absolute path of letters, digits and . _ - / is needed (no .. and no trailing /), got ${describeValue(stateDir)}`);
  }
  return {
    name,
    connection,
    vars,
    roles,
    factOverrides: new Map(overrides && typeof overrides === 'object' ? Object.entries(overrides) : []),
    ...(typeof stateDir === 'string' ? { stateDir } : {}),
  };
}

// hostctl_state_dir: root's directory for hostctl on the host; no name that a shell or a
// parent link could turn into another place.
const STATE_DIR = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9._-]+)+$/;

// A role variable whose default refers to other variables (`.meta({ default: '{{ vault_x }}' })`,
// as an Ansible role's defaults/main.yml maps the vault_* names of the inventory) joins the
// host's variables below everything else, resolved like an inventory value. When what it refers
// to is not set either, the problem names both and the file each is expected in.
function referenceDefaults(role: Role, vars: Map<string, Sourced>, inventory: Inventory, host: string, problems: string[]) {
  const defaults: VarLayer = new Map();
  const unset = new Set<string>();
  const source = `role ${role.name} defaults`;
  for (const [key, field] of Object.entries(role.vars?.shape ?? {})) {
    const value = (field as z.ZodType).meta()?.default;
    if (value === undefined || vars.has(key)) continue;
    const absent = typeof value === 'string' ? referencedNames(value).filter((n) => !vars.has(n)) : [];
    if (absent.length === 0) {
      defaults.set(key, { value, source });
      continue;
    }
    unset.add(key);
    problems.push(
      `${source}: ${key} (host ${host}, role ${role.name}) is not set, nor ${absent.join(', ')}, which its default "${String(value)}" refers to ` +
        `(set ${absent.map((n) => `${n} in ${expectedFile(inventory, host, n)}`).join(', ')}, or ${key} in ${expectedFile(inventory, host, key)})`,
    );
  }
  return { defaults, unset };
}

// Where the seed layout keeps a host's variable: vault_* names in host_vars/<host>/vault.yml
// (encrypted), the rest in host_vars/<host>/vars.yml, beside the first inventory.
function expectedFile(inventory: Inventory, host: string, key: string): string {
  const first = inventory.sources[0] ?? 'inventory';
  const file = join(extname(first) ? dirname(first) : first, 'host_vars', host, key.startsWith('vault_') ? 'vault.yml' : 'vars.yml');
  return key.startsWith('vault_') ? `${file} (encrypted with ansible-vault or hostctl vault)` : file;
}

// -e key=value gives text. As Ansible converts a module's arguments, text becomes the number or
// boolean the role's schema takes, decided by trying the field; when nothing fits, the text stays
// and the schema's error names the variable.
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const BOOLEANS: Record<string, boolean> = { y: true, yes: true, on: true, 1: true, true: true, t: true, n: false, no: false, off: false, 0: false, false: false, f: false };

function typedText(field: z.ZodType | undefined, text: string): unknown {
  if (!field || field.safeParse(text).success) return text;
  const candidates = [NUMBER.test(text) ? Number(text) : undefined, BOOLEANS[text.toLowerCase()]];
  return candidates.find((c) => c !== undefined && field.safeParse(c).success) ?? text;
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
