import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { definePlaybook } from '../../src/engine/playbook.js';
import { defineRole, type Role } from '../../src/engine/role.js';
import { runPlaybook } from '../../src/engine/engine.js';
import type { EventOf, RunEvent } from '../../src/core/events.js';
import type { HostPlan } from '../../src/engine/prepare.js';
import type { Tasks } from '../../src/engine/tasks.js';
import type { Channel } from '../../src/transport/transport.js';
import { LocalChannel } from '../../src/transport/local.js';
import type { Become } from '../../src/transport/transport.js';

export interface Applied {
  code: number;
  events: RunEvent[];
  ends: EventOf<'task-end'>[];
  error: string | undefined;
}

// `stateDir`: hostctl's directory on the host (the run journal); on the local channel a
// directory of this test process, never the controller's /var/lib/hostctl.
type Options = { check?: boolean; diff?: boolean; tags?: string[]; channel?: () => Channel; become?: Become; templates?: Map<string, string>; host?: string; stateDir?: string };

let localState: string | undefined;
const localStateDir = () => {
  if (!localState) {
    localState = mkdtempSync(join(tmpdir(), 'hostctl-state-'));
    process.on('exit', () => rmSync(localState!, { recursive: true, force: true }));
  }
  return join(localState, 'state');
};

// Runs one role body against a real host (local by default) through the real engine and
// returns what it reported: the way to test a resource end to end without a playbook file.
export const apply = (body: (h: Tasks) => Promise<unknown>, options: Options = {}): Promise<Applied> =>
  applyRoles([defineRole({ name: 'test', run: (h) => body(h) })], options);

// The same for several roles (without variables), run in order on one host.
export async function applyRoles(roles: Role<any, any>[], options: Options = {}): Promise<Applied> {
  const playbook = definePlaybook({ name: 'test', hosts: 'all', roles });
  const host = options.host ?? 'local';
  const plan: HostPlan = {
    name: host,
    connection: { connection: 'local', address: host, port: undefined, user: undefined, privateKeyFiles: [], proxyJump: undefined, knownHostsFile: undefined, acceptNewHostKeys: undefined, become: options.become, connectTimeoutMs: undefined, keepaliveMs: undefined, connectRetries: undefined, notes: [] },
    vars: new Map(),
    roles: roles.map((role) => ({ role: role as unknown as HostPlan['roles'][number]['role'], vars: {}, templates: options.templates ?? new Map() })),
    factOverrides: new Map(),
    ...(options.stateDir ? { stateDir: options.stateDir } : options.channel ? {} : { stateDir: localStateDir() }),
  };
  const events: RunEvent[] = [];
  const summary = await runPlaybook(playbook, [plan], {
    check: options.check ?? false,
    diff: options.diff ?? true,
    ...(options.tags ? { tags: options.tags } : {}),
    emit: (e) => events.push(e),
    channelFor: () => (options.channel ? options.channel() : new LocalChannel()),
  });
  const hostEnd = events.find((e): e is EventOf<'host-end'> => e.type === 'host-end');
  return {
    code: summary.exitCode,
    events,
    ends: events.filter((e): e is EventOf<'task-end'> => e.type === 'task-end'),
    error: hostEnd?.error,
  };
}

export const statuses = (a: Applied) => a.ends.map((e) => e.status);
