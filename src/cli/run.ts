import { relative } from 'node:path';
import { parse } from './args.js';
import { channelFactory } from './channels.js';
import { parseExtraVars } from './extra-vars.js';
import { loadPlaybook } from './playbook.js';
import { openInventory, inventoryOptions, inventoryOptionsHelp } from './inventory-options.js';
import { inputError } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import { askHidden } from '../core/terminal.js';
import type { Sourced } from '../inventory/model.js';
import { TagSelection } from '../engine/tags.js';
import { listTasks, type ListedRole } from '../engine/list.js';
import { vaultDecoder } from '../inventory/vault.js';
import { keyringOptions, loadKeyring } from '../vault/index.js';
import { DEFAULT_LOCK_TIMEOUT, runPlaybook } from '../engine/engine.js';
import { parseShard, prepare, selectPlayHosts } from '../engine/prepare.js';
import { jsonRenderer } from '../report/json.js';
import { plainRenderer } from '../report/plain.js';
import type { Renderer } from '../report/renderer.js';

const HELP = `Usage: hostctl run PLAYBOOK.ts [options]

Applies the playbook's roles, in order, to every selected host (hosts in parallel).

Selection:
  -l, --limit PATTERN       only hosts matching PATTERN too (groups, hosts, globs, a:b, a:!b, a:&b)
      --shard I/N           only the I-th of N parts of those hosts (by a hash of each host's
                            name: stable, disjoint; N machines with 1/N..N/N cover them all)
  -t, --tags TAGS           only tasks with one of these tags (comma list; a role's name is a tag)
      --skip-tags TAGS      skip tasks with one of these tags
Variables:
${inventoryOptionsHelp}
  -e, --extra-vars VARS     key=value ..., a JSON/YAML mapping, or @file.yml; above everything else
What to do:
  -C, --check               change nothing; report what would change (dependent tasks: "may-change")
  -D, --diff                show unified diffs of what changes (secret values masked)
  -f, --forks N             hosts at once (default 10)
      --start-at-task NAME  skip every task before the first one titled NAME (the recap says
                            how many); preflight checks and handlers still run
      --list-hosts          print the hosts the run would act on; touch no host
      --list-tasks          print each role's tasks as far as a dry pass reaches them (role
                            bodies are code: a task that depends on what a host answers is not
                            listed); touch no host
      --syntax-check        load the playbook, the inventory and every host's variables and
                            templates, as a run does before connecting; touch no host
      --force-handlers      run notified handlers even when a task failed
      --lock-timeout SECS   wait at most SECS for another run holding a host (default 1800);
                            then that host is left untouched and the exit code is 4
Connection (as ansible-playbook's; a variable set in the inventory wins over them):
  -u, --user USER           log in as USER (ansible_user)
      --private-key FILE    private key to offer first (ansible_ssh_private_key_file)
  -T, --timeout SECS        connection timeout (ansible_ssh_timeout)
      --ssh-common-args=ARGS  ssh arguments (ansible_ssh_common_args), e.g.
                            --ssh-common-args='-o ProxyJump=bastion'
  -b, --become              run tasks with sudo (ansible_become)
      --become-user USER    sudo to USER (ansible_become_user; default root)
  -K, --ask-become-pass     ask for the sudo password once (ansible_become_password)
      --known-hosts FILE    verify SSH host keys against FILE (default ~/.ssh/known_hosts,
                            or the inventory's hostctl_known_hosts_file)
      --accept-new-host-keys  accept and record unknown host keys (OpenSSH's accept-new);
                            a changed key is always refused
Output:
      --json                one JSON event per line, ending with the recap
      --plain               plain lines even on a terminal (the default when not a TTY)
  -v, --verbose             also print task starts, connections and error causes
  -h, --help                this help

Exit codes: 0 ok, 2 a host failed, 4 a host unreachable (or locked by another run), 5 bad input, 130 interrupted, 1 other.
NO_COLOR disables colour.`;

const options = {
  ...inventoryOptions,
  limit: { type: 'string', short: 'l' },
  shard: { type: 'string' },
  tags: { type: 'string', short: 't', multiple: true },
  'skip-tags': { type: 'string', multiple: true },
  'extra-vars': { type: 'string', short: 'e', multiple: true },
  check: { type: 'boolean', short: 'C' },
  diff: { type: 'boolean', short: 'D' },
  forks: { type: 'string', short: 'f' },
  'force-handlers': { type: 'boolean' },
  'start-at-task': { type: 'string' },
  'list-hosts': { type: 'boolean' },
  'list-tasks': { type: 'boolean' },
  'syntax-check': { type: 'boolean' },
  user: { type: 'string', short: 'u' },
  'private-key': { type: 'string' },
  timeout: { type: 'string', short: 'T' },
  'ssh-common-args': { type: 'string' },
  become: { type: 'boolean', short: 'b' },
  'become-user': { type: 'string' },
  'ask-become-pass': { type: 'boolean', short: 'K' },
  'lock-timeout': { type: 'string' },
  'known-hosts': { type: 'string' },
  'accept-new-host-keys': { type: 'boolean' },
  json: { type: 'boolean' },
  plain: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

const list = (values: readonly string[] | undefined) => (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, options, 'run');
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw inputError('give exactly one playbook', { hint: 'hostctl run playbooks/site.ts' });
  const forks = values.forks === undefined ? 10 : Number(values.forks);
  if (!Number.isInteger(forks) || forks < 1) throw inputError(`--forks ${values.forks} is not a positive whole number`);
  const lockTimeout = values['lock-timeout'] === undefined ? DEFAULT_LOCK_TIMEOUT : Number(values['lock-timeout']);
  if (!/^\d+$/.test(values['lock-timeout'] ?? '0')) throw inputError(`--lock-timeout ${values['lock-timeout']} is not a whole number of seconds`, { hint: '--lock-timeout 600' });
  const file = positionals[0]!;
  const playbookFile = relative(process.cwd(), file);
  const shard = values.shard === undefined ? undefined : parseShard(values.shard);

  // Everything that can fail on bad input happens before the first connection.
  const keyring = await loadKeyring(keyringOptions(values));
  const extraVars = await parseExtraVars(values['extra-vars'] ?? [], vaultDecoder(keyring));
  const inventory = await openInventory(values, keyring);
  const playbook = await loadPlaybook(file);
  if (values['list-hosts']) {
    const hosts = selectPlayHosts(playbook, inventory, { limit: values.limit, shard, playbookFile });
    process.stdout.write(`playbook: ${playbookFile}\n  hosts (${hosts.length}):\n${hosts.map((h) => `    ${h}\n`).join('')}`);
    return 0;
  }
  const connectionDefaults = await connectionFlags(values);
  const plans = await prepare(playbook, inventory, { limit: values.limit, shard, extraVars, playbookFile, connectionDefaults });
  const tags = list(values.tags);
  const skipTags = list(values['skip-tags']);
  if (values['syntax-check']) {
    process.stdout.write(`playbook: ${playbookFile}: the playbook, the inventory and the variables and templates of ${plans.length} host(s) are valid; no host was contacted\n`);
    return 0;
  }
  const startAt = values['start-at-task'];
  if (values['list-tasks'] || startAt !== undefined) {
    const listed = await Promise.all(plans.map(async (plan) => ({ host: plan.name, roles: await listTasks(plan, new TagSelection(tags, skipTags)) })));
    if (values['list-tasks']) {
      process.stdout.write(`playbook: ${playbookFile}\n${listed.map(({ host, roles }) => `  host ${host}:\n${roles.map(taskListing).join('')}`).join('')}`);
      return 0;
    }
    // A name no dry pass met, when every pass went to the end, is a typo: stop before any host.
    const all = listed.flatMap((l) => l.roles);
    if (all.every((r) => r.complete) && !all.some((r) => r.tasks.includes(startAt!))) {
      throw inputError(`--start-at-task "${startAt}": no task has that title`, { hint: 'see the titles with --list-tasks' });
    }
  }

  const verbose = (values.verbose?.length ?? 0) > 0;
  // listr2 is loaded only for a terminal.
  const renderer: Renderer = values.json
    ? jsonRenderer()
    : process.stdout.isTTY && !values.plain && !verbose
      ? (await import('../report/listr.js')).listrRenderer()
      : plainRenderer(process.stdout, verbose);

  const controller = new AbortController();
  const interrupt = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\ninterrupted: stopping after the running commands (Ctrl-C again to quit now)\n');
    controller.abort();
  };
  // Left installed until the process ends: a second Ctrl-C during the recap still exits 130.
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  const summary = await runPlaybook(playbook, plans, {
    check: values.check ?? false,
    diff: values.diff ?? false,
    forks,
    tags,
    skipTags,
    forceHandlers: values['force-handlers'] ?? false,
    startAtTask: startAt,
    lockTimeoutSeconds: lockTimeout,
    signal: controller.signal,
    emit: renderer.sink,
    channelFor: channelFactory({
      knownHostsFile: values['known-hosts'],
      acceptNewHostKeys: values['accept-new-host-keys'] ?? false,
      interactive: process.stdin.isTTY === true,
    }),
  });
  await renderer.finish();
  return summary.exitCode;
}

function taskListing(r: ListedRole): string {
  const lines = [...(r.preflight ? ['preflight checks'] : []), ...r.tasks].map((t) => `      ${t}\n`);
  const rest = r.complete ? '' : '      ... and the tasks that depend on what the host answers (not known before the run)\n';
  return `    role ${r.role}:\n${lines.join('')}${rest}`;
}

// ansible-playbook's connection flags, as the ansible_* variables they stand for. They sit
// below the inventory, as in Ansible (where a host's ansible_user beats -u).
async function connectionFlags(values: {
  user?: string | undefined;
  'private-key'?: string | undefined;
  timeout?: string | undefined;
  'ssh-common-args'?: string | undefined;
  become?: boolean | undefined;
  'become-user'?: string | undefined;
  'ask-become-pass'?: boolean | undefined;
}): Promise<Map<string, Sourced>> {
  const out = new Map<string, Sourced>();
  const set = (key: string, value: unknown, flag: string) => value !== undefined && out.set(key, { value, source: flag });
  set('ansible_user', values.user, '-u/--user');
  set('ansible_ssh_private_key_file', values['private-key'], '--private-key');
  if (values.timeout !== undefined && !/^\d+$/.test(values.timeout)) throw inputError(`-T/--timeout ${values.timeout} is not a whole number of seconds`, { hint: '-T 30' });
  set('ansible_ssh_timeout', values.timeout === undefined ? undefined : Number(values.timeout), '-T/--timeout');
  set('ansible_ssh_common_args', values['ssh-common-args'], '--ssh-common-args');
  set('ansible_become', values.become, '-b/--become');
  set('ansible_become_user', values['become-user'], '--become-user');
  if (values['ask-become-pass']) {
    const password = await askHidden('BECOME password: ', { hint: 'run hostctl on a terminal, or set ansible_become_password in a vault file' });
    set('ansible_become_password', new Secret(password, 'the -K become password'), '-K/--ask-become-pass');
  }
  return out;
}
