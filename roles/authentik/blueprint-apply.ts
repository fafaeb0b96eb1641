import { commandFact, quote, unitJournalCommand, type Tasks } from 'hostctl';
import { BLUEPRINT_DIR, BLUEPRINT_FILE, INSTANCE_PATH, renderBlueprint, sha512, validateBlueprint, type Declaration, type SchemaVersion } from './blueprint.js';
import { appUrl, failure } from './stack.js';

// The blueprint on the host: read before anything is written (preflight), written with the
// other files, applied and verified once authentik is ready.

// Recorded ahead of a change that needs authentik to apply the blueprint again (the file,
// or the .env a `!Env` reads): a run killed before the apply leaves it to the next.
export const APPLY_BLUEPRINT = 'apply blueprint';

export interface BlueprintVars extends Declaration {
  authentik_root: string;
  authentik_http_port: number;
  authentik_api_token?: unknown;
}

interface Instance {
  pk: string;
  status: string;
  last_applied_hash: string;
}

// What the preflight found and decided.
export interface BlueprintPlan {
  text: string;
  schema: SchemaVersion;
  // This file is on the host but authentik has not verifiably applied it.
  stale: boolean;
}

export const blueprintPath = (root: string) => `${root}/${BLUEPRINT_DIR}/${BLUEPRINT_FILE}`;

// authentik's API on the host, the token read from the 0600 .env into curl's config on
// stdin: never in a process's arguments. Prints the body, then the HTTP code on a last line.
// `path` is shell words appended to the quoted base URL.
const api = (v: BlueprintVars, method: 'GET' | 'POST', path: string) =>
  `sed -n 's/^AUTHENTIK_BOOTSTRAP_TOKEN=\\(.*\\)$/header = "Authorization: Bearer \\1"/p' ${quote(`${v.authentik_root}/.env`)}` +
  ` | curl -sS --max-time 30 -K - -X ${method} -w '\\n%{http_code}' ${quote(`${appUrl(v)}/api/v3/managed/blueprints/`)}${path}`;
const LIST = quote(`?path=${encodeURIComponent(INSTANCE_PATH)}`);

function answer(stdout: string): { code: number; body: unknown } {
  const lines = stdout.trimEnd().split('\n');
  const code = Number(lines.pop());
  try {
    return { code, body: JSON.parse(lines.join('\n')) };
  } catch {
    return { code, body: undefined };
  }
}

function instanceOf(body: unknown): Instance | undefined {
  const first = (body as { results?: unknown[] } | undefined)?.results?.[0] as Partial<Instance> | undefined;
  return first && typeof first.pk === 'string' && typeof first.status === 'string' ? { pk: first.pk, status: first.status, last_applied_hash: String(first.last_applied_hash ?? '') } : undefined;
}

// In the preflight, in the host's first round trip: the file now there and, with a token,
// what authentik says of it. Renders the blueprint; checks it against the schema only when
// it differs from the host's (a converged run pays no schema).
export async function planBlueprint(h: Tasks, v: BlueprintVars): Promise<BlueprintPlan | undefined> {
  const token = v.authentik_api_token !== undefined;
  const [file, status] = await Promise.all([
    h.fact(commandFact(`cat -- ${quote(blueprintPath(v.authentik_root))} 2>/dev/null`)),
    token ? h.fact(commandFact(api(v, 'GET', LIST))) : undefined,
  ]);
  const before = file.code === 0 ? file.stdout : undefined;
  const declared = Object.keys(v.authentik_applications).length + Object.keys(v.authentik_groups).length > 0;
  if (!declared && before === undefined) return undefined;
  const instance = status && status.code === 0 ? instanceOf(answer(status.stdout).body) : undefined;
  const applied = before !== undefined && instance?.status === 'successful' && instance.last_applied_hash === sha512(before);
  let rendered;
  try {
    rendered = renderBlueprint(v, before === undefined ? undefined : { text: before, applied });
  } catch (error) {
    throw Object.assign(error as Error, { message: `${blueprintPath(v.authentik_root)} on ${h.host}: ${(error as Error).message}` });
  }
  if (rendered.text !== before) validateBlueprint(rendered.text, rendered.schema, rendered.owned.map((o) => o.owner));
  return { text: rendered.text, schema: rendered.schema, stale: token && rendered.text === before && !applied };
}

// Writes the file (the recording pass, which has no plan yet, records its read).
export async function writeBlueprint(h: Tasks, v: BlueprintVars, plan: BlueprintPlan | undefined, recording: boolean): Promise<void> {
  await h.directory({ path: `${v.authentik_root}/${BLUEPRINT_DIR}`, mode: '0755', owner: 'root', group: 'root' });
  if (!plan && !recording) return;
  await h.file({
    name: `blueprint ${INSTANCE_PATH} (checked against authentik ${plan?.schema ?? '?'}'s schema)`,
    path: blueprintPath(v.authentik_root),
    content: plan?.text ?? '',
    mode: '0644',
    owner: 'root',
    group: 'root',
    pending: [APPLY_BLUEPRINT],
  });
}

// Once authentik is ready: when the file or the .env changed (now or in a killed run), or
// authentik has not applied this file, has it applied and says whether it worked.
export async function applyBlueprint(h: Tasks, v: BlueprintVars, plan: BlueprintPlan | undefined): Promise<void> {
  const due = (await h.pending(APPLY_BLUEPRINT)) !== undefined;
  if (!plan) {
    if (due) h.clearPending(APPLY_BLUEPRINT);
    return;
  }
  if (!due && !plan.stale) return;
  if (v.authentik_api_token === undefined) {
    h.clearPending(APPLY_BLUEPRINT);
    h.note(`blueprint ${INSTANCE_PATH}: the apply was not verified (no authentik_api_token); authentik's worker applies a changed file by itself, a changed client secret only with the next change of the file`);
    return;
  }
  const hash = sha512(plan.text);
  // Waits for the worker to know the file (it discovers it at start and on change), asks
  // for an apply, then for the instance to carry this file's hash.
  const script = [
    `list() { ${api(v, 'GET', LIST)}; }`,
    'for i in $(seq 60); do out=$(list) || exit 3; pk=$(printf %s "$out" | grep -o \'"pk": *"[0-9a-f-]*"\' | head -n1 | grep -o \'[0-9a-f-]\\{36\\}\'); [ -n "$pk" ] && break; sleep 2; done',
    '[ -n "$pk" ] || { printf "%s\\n" "$out"; exit 4; }',
    `out=$(${api(v, 'POST', '"$pk"/apply/')}) || exit 3`,
    'case $(printf %s "$out" | tail -n1) in 2??) ;; *) printf "%s\\n" "$out"; exit 5;; esac',
    `for i in $(seq 60); do out=$(list) || exit 3; printf %s "$out" | grep -q ${quote(hash)} && break; sleep 2; done`,
    'printf "%s\\n" "$out"',
  ].join('\n');
  const r = await h.command({ name: `apply blueprint ${INSTANCE_PATH} and verify it`, cmd: script, failedWhen: () => false, clears: APPLY_BLUEPRINT });
  if (h.check) return;
  const result = r.data as { code: number; stdout: string; stderr: string };
  const { code, body } = answer(result.stdout);
  const instance = instanceOf(body);
  let problem: string | undefined;
  if (result.code === 3) problem = `authentik's API did not answer: ${result.stderr.trim()}`;
  else if (code === 401 || code === 403) problem = `authentik refused authentik_api_token (HTTP ${code})`;
  else if (result.code === 4) problem = `authentik has no blueprint instance for ${INSTANCE_PATH} after 2 minutes (HTTP ${code})`;
  else if (result.code === 5) problem = `authentik did not accept the apply (HTTP ${code})`;
  else if (!instance || instance.last_applied_hash !== hash) problem = `authentik has not applied this file within 2 minutes (its instance: status ${instance?.status ?? 'none'})`;
  else if (instance.status !== 'successful') problem = `authentik applied the file with status ${instance.status}`;
  if (!problem) {
    h.note(`blueprint ${INSTANCE_PATH}: applied by authentik (status successful, sha512 verified; schema ${plan.schema})`);
    return;
  }
  const logs = await h.command({ name: 'the worker\'s lines on the blueprint', cmd: `${unitJournalCommand('authentik-worker.service', { lines: 200, container: 'authentik-worker' })} | grep -i -e blueprint -e ${quote(BLUEPRINT_FILE)} | tail -n 20`, readOnly: true, failedWhen: () => false });
  const lines = ((logs.data as { stdout?: string } | undefined)?.stdout ?? '').trim();
  await h.run(failure, {
    what: `blueprint ${INSTANCE_PATH} applied`,
    message: `${problem}${lines ? `; the worker's log:\n${lines}` : ''}`,
    hint: code === 401 || code === 403
      ? 'AUTHENTIK_BOOTSTRAP_TOKEN creates the token only at the first start: on an existing install create an API token for akadmin in the admin UI and put it in authentik_api_token'
      : 'the worker applies the file itself too; its log (journalctl -u authentik-worker) says which entry failed',
  });
}
