import { hostError } from '../core/errors.js';
import { change, defineResource, noop, type Plan } from './resource.js';
import type { HostContext } from './host-context.js';
import { unitJournalCommand, unitState, unitStates, type UnitState } from '../facts/systemd.js';
import { quote } from '../transport/quote.js';
import { checkNames } from '../core/names.js';
import { planFile, type FileArgs } from './file.js';

export interface UnitArgs extends Omit<FileArgs, 'path'> {
  // Unit file name, e.g. "hello.service"; written to `dir` (default /etc/systemd/system).
  name: string;
  dir?: string;
}

export interface ServiceArgs {
  name: string;
  state?: 'started' | 'stopped' | 'restarted' | 'reloaded';
  enabled?: boolean;
  // false: unmask the unit if it is masked (a masked unit cannot start).
  masked?: boolean;
  // Queue the start and return at once (systemctl --no-block): a start that pulls an image
  // may take minutes; a wait task afterwards says when it is ready.
  noBlock?: boolean;
}

// Unit files are files whose change makes systemd's view stale: mark a daemon-reload as due.
// It runs once, before the next service task or at the end of the role, however many units
// changed.
export function planUnitFile(ctx: HostContext, args: FileArgs): Promise<Plan> {
  return planFile(ctx, args).then((plan) =>
    plan.action !== 'change'
      ? plan
      : {
          ...plan,
          reloadsUnits: true,
          apply: async () => {
            const applied = await plan.apply();
            ctx.state.daemonReloadPending = true;
            return applied;
          },
        },
  );
}

export const unit = defineResource<UnitArgs>({
  kind: 'unit',
  probes: (a) => (checkNames('unit', 'unit', [a.name]), [{ stat: `${a.dir ?? '/etc/systemd/system'}/${a.name}` }]),
  title: (a) => `unit ${a.name}`,
  plan: (ctx, { name, dir, ...rest }) => {
    checkNames('unit', 'unit', [name]);
    return planUnitFile(ctx, { ...rest, path: `${dir ?? '/etc/systemd/system'}/${name}` });
  },
});

export const daemonReload = defineResource<Record<string, never>>({
  kind: 'daemon-reload',
  title: () => 'systemd daemon-reload',
  async plan(ctx) {
    if (!ctx.state.daemonReloadPending) return noop('no unit changed');
    return change('reload unit files', async () => {
      await ctx.conn.check('systemctl daemon-reload');
      ctx.state.daemonReloadPending = false;
      ctx.facts.forget('systemd');
      ctx.facts.forget('systemd-batch');
    });
  },
});

// Read the states of many units in one round trip before a series of service tasks.
// What is already known (from a role's prefetch, and nothing changed since) costs nothing.
export async function prefetchUnits(ctx: HostContext, names: readonly string[]): Promise<UnitState[]> {
  if (names.every((n) => ctx.facts.has(unitState(n).id))) return Promise.all(names.map((n) => ctx.facts.get(unitState(n))));
  ctx.facts.forget('systemd-batch');
  const states = await ctx.facts.get(unitStates(names));
  states.forEach((s, i) => ctx.facts.remember(unitState(names[i]!), s));
  return states;
}

const GENERATED = new Set(['generated', 'transient']);

export const service = defineResource<ServiceArgs>({
  kind: 'service',
  probes: (a) => (checkNames('service', 'unit', [a.name]), [{ unit: a.name }]),
  title: (a) => `service ${a.name}${a.state ? ` ${a.state}` : ''}${a.enabled !== undefined ? (a.enabled ? ' enabled' : ' disabled') : ''}`,
  // A unit file changed earlier in the role: systemd must see it before its state is read.
  before: (ctx) => (ctx.state.daemonReloadPending && !ctx.check ? [daemonReload] : []),
  async plan(ctx, args) {
    checkNames('service', 'unit', [args.name]);
    // `--`: a unit may begin with "-" (-.mount); systemctl must not read it as an option.
    const unitName = quote(args.name);
    const ctl = args.noBlock ? 'systemctl --no-block' : 'systemctl';
    const s = await ctx.facts.get(unitState(args.name));
    if (s.load === 'not-found') throw hostError(`unit ${args.name} not found`, { hint: 'install its unit file (or package) before managing the service' });

    const steps: string[] = [];
    const cmds: string[] = [];
    const masked = s.load === 'masked' || s.unitFile === 'masked' || s.unitFile === 'masked-runtime';
    if (masked && (args.masked === false || args.state === 'started' || args.state === 'restarted' || args.enabled)) {
      steps.push('unmask');
      cmds.push(`systemctl unmask -- ${unitName}`);
    } else if (args.masked === true && !masked) {
      steps.push('mask');
      cmds.push(`systemctl mask -- ${unitName}`);
    }
    if (args.enabled !== undefined) {
      if (GENERATED.has(s.unitFile)) {
        if (args.enabled) {
          throw hostError(`${args.name} is a generated unit (e.g. from Quadlet); systemctl cannot enable it`, {
            hint: 'add "[Install]\\nWantedBy=multi-user.target" to its source file; the generator then enables it at boot',
          });
        }
      } else if (s.unitFile === 'static' || s.unitFile === 'alias' || s.unitFile === 'indirect') {
        if (args.enabled) throw hostError(`${args.name} is ${s.unitFile} and has no [Install] section to enable`, { hint: 'enable the unit that wants it, or add an [Install] section' });
      } else if (args.enabled && s.unitFile !== 'enabled') {
        steps.push('enable');
        cmds.push(`systemctl enable -- ${unitName}`);
      } else if (!args.enabled && s.unitFile === 'enabled') {
        steps.push('disable');
        cmds.push(`systemctl disable -- ${unitName}`);
      }
    }
    const running = s.active === 'active' || s.active === 'activating' || s.active === 'reloading';
    switch (args.state) {
      case 'started':
        if (!running) (steps.push('start'), cmds.push(`${ctl} start -- ${unitName}`));
        break;
      case 'stopped':
        if (running) (steps.push('stop'), cmds.push(`${ctl} stop -- ${unitName}`));
        break;
      case 'restarted':
        steps.push(running ? 'restart' : 'start');
        cmds.push(`${ctl} ${running ? 'restart' : 'start'} -- ${unitName}`);
        break;
      case 'reloaded':
        steps.push(running ? 'reload' : 'start');
        cmds.push(`${ctl} ${running ? 'reload-or-restart' : 'start'} -- ${unitName}`);
        break;
    }
    if (cmds.length === 0) return noop(`${s.active}${s.unitFile ? `, ${s.unitFile}` : ''}`);
    return change(steps.join(', '), async () => {
      const r = await ctx.conn.exec(cmds.join(' && '), { signal: ctx.signal });
      if (r.code !== 0) {
        // The journal says why a unit failed; systemctl's own message rarely does.
        const journal = await ctx.conn.exec(unitJournalCommand(args.name));
        throw hostError(`${steps.join(', ')} ${args.name} failed: ${r.stderr.trim()}${journal.stdout.trim() ? `\n--- journal ---\n${journal.stdout.trim()}` : ''}`);
      }
    });
  },
});
