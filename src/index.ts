// hostctl's public API: what playbooks, roles and programs import from 'hostctl'.
export { definePlaybook, type Playbook, type PlaybookDefinition } from './engine/playbook.js';
export { defineRole, type Role, type RoleDefinition } from './engine/role.js';
export { defineResource, noop, change, skip, type Plan, type Resource, type Applied } from './resources/resource.js';
export type { Tasks, TaskOptions } from './engine/tasks.js';
export type { TaskResult } from './core/result.js';
export type { HostContext } from './resources/host-context.js';
export type { RunEvent, TaskStatus, HostRecap, EventSink } from './core/events.js';
export { HostctlError, hostError, inputError, type ErrorKind } from './core/errors.js';
export { Secret, isSecret } from './core/secret.js';
export { inside } from './core/paths.js';
export { writeFileAtomic } from './core/atomic-file.js';
export { firstLine, humanBytes } from './core/text.js';
export { name, nameMap, secret } from './core/schema.js';
export { defineFact, type Fact } from './facts/cache.js';
export { commandFact } from './facts/probe.js';
export { unitJournalCommand, unitState, unitStates, type UnitState } from './facts/systemd.js';
export { account } from './facts/users.js';
export { podmanVersion, versionAtLeast, type PodmanVersion } from './facts/podman.js';
export { planFile } from './resources/file.js';
export { planUnitFile, prefetchUnits } from './resources/systemd.js';
export type { QuadletResult } from './resources/quadlet.js';
export { quote, quoteAll } from './transport/quote.js';
export type { Connection, ExecResult, PathStat } from './transport/connection.js';
export { runPlaybook, type EngineOptions, type RunSummary } from './engine/engine.js';
export { prepare, type HostPlan } from './engine/prepare.js';
export { loadInventory } from './inventory/load.js';
// The zod the role schemas are written with, so a user's repo needs no second copy.
export { z } from 'zod';
