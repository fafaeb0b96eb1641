import type { HostContext } from '../resources/host-context.js';
import type { HostPlan } from './prepare.js';
import { TagSelection } from './tags.js';
import { recordProbes, type RecordingRuntime } from './tasks.js';
import { journalFact } from '../facts/journal.js';
import { DEFAULT_STATE_DIR } from '../transport/run-lock.js';

// --list-tasks. A role body is code, not a list: what can be listed is what a dry pass
// reaches (the prefetch recording pass, which touches no host) with every task answering
// "ok". The pass stops where the body needs an answer only the host can give (a fact, a
// command's output): the tasks after that are not known, and `complete` says so.
export interface ListedRole {
  role: string;
  preflight: boolean;
  tasks: string[];
  complete: boolean;
}

export async function listTasks(plan: HostPlan, tags: TagSelection): Promise<ListedRole[]> {
  const out: ListedRole[] = [];
  for (const { role, vars, templates } of plan.roles) {
    // Recording never reaches the connection, the facts or the host state: it gets none.
    const ctx = { host: plan.name, check: true, diff: false, templates, signal: new AbortController().signal } as unknown as HostContext;
    const stateDir = plan.stateDir ?? DEFAULT_STATE_DIR;
    const rt: RecordingRuntime = {
      ctx,
      role: role.name,
      roleTags: role.tags ?? [],
      tags,
      hostVars: Object.fromEntries([...plan.vars].map(([k, v]) => [k, v.value])),
      journal: { fact: journalFact(stateDir), stateDir },
    };
    const tasks: string[] = [];
    let complete = false;
    const probes = await recordProbes(
      rt,
      async (h) => {
        await role.run(h, vars, undefined);
        complete = true;
      },
      (task) => tasks.push(task),
    );
    // A fact read answers with a refusal the body may catch: it then goes on, guessing.
    out.push({ role: role.name, preflight: role.preflight !== undefined, tasks, complete: complete && !probes.some((p) => 'fact' in p) });
  }
  return out;
}
