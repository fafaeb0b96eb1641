import { relative } from 'node:path';
import { parse } from './args.js';
import { channelFactory } from './channels.js';
import { parseExtraVars } from './extra-vars.js';
import { loadPlaybook } from './playbook.js';
import { openInventory, inventoryOptions, inventoryOptionsHelp } from './inventory-options.js';
import { inputError } from '../core/errors.js';
import { vaultDecoder } from '../inventory/vault.js';
import { keyringOptions, loadKeyring } from '../vault/index.js';
import { runPlaybook } from '../engine/engine.js';
import { parseShard, prepare } from '../engine/prepare.js';
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
      --force-handlers      run notified handlers even when a task failed
Connection:
      --known-hosts FILE    verify SSH host keys against FILE (default ~/.ssh/known_hosts,
                            or the inventory's hostctl_known_hosts_file)
      --accept-new-host-keys  accept and record unknown host keys (OpenSSH's accept-new);
                            a changed key is always refused
Output:
      --json                one JSON event per line, ending with the recap
      --plain               plain lines even on a terminal (the default when not a TTY)
  -v, --verbose             also print task starts, connections and error causes
  -h, --help                this help

Exit codes: 0 ok, 2 a host failed, 4 a host unreachable, 5 bad input, 130 interrupted, 1 other.
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
  const file = positionals[0]!;
  const shard = values.shard === undefined ? undefined : parseShard(values.shard);

  // Everything that can fail on bad input happens before the first connection.
  const keyring = await loadKeyring(keyringOptions(values));
  const extraVars = await parseExtraVars(values['extra-vars'] ?? [], vaultDecoder(keyring));
  const inventory = await openInventory(values, keyring);
  const playbook = await loadPlaybook(file);
  const plans = await prepare(playbook, inventory, { limit: values.limit, shard, extraVars, playbookFile: relative(process.cwd(), file) });

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
    tags: list(values.tags),
    skipTags: list(values['skip-tags']),
    forceHandlers: values['force-handlers'] ?? false,
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
