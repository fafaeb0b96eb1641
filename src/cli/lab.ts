import { spawn } from 'node:child_process';
import { inputError, describeError, exitCodes, isHostctlError } from '../core/errors.js';
import { parse } from './args.js';
import { defaults, maxTargets, type LabOptions } from '../lab/options.js';

const help = `Usage: hostctl lab <up|down|status|ssh|images> [options]

Real Debian 13 (trixie) targets on this machine: systemd-nspawn containers, each in its own
network namespace on a host bridge, reachable over ssh, with apt through a relay that serves
the Debian mirror and nothing else. Needs root.

Commands:
  up                 build the rootfs once (cached), boot missing targets, wait for ssh,
                     write <state>/inventory.yml and <state>/known_hosts; running targets
                     are left as they are. First checks the host limits the new targets
                     need (inotify instances/watches, fs.file-max, pid_max, threads-max,
                     open files, free memory): raises the sysctls that are too low
                     (recorded in /run/hostctl-lab/host-limits.json) or refuses (exit 5)
                     naming the limit, the need and the fix. A target whose container
                     exits fails \`up\` at once with its last console lines
  down               stop targets, remove namespaces, bridge, firewall table, mounts,
                     cgroups, relay and the state dir's contents (the cache is kept);
                     the last lab to go down puts raised sysctls back
  status             per target: address, process, ssh, systemctl is-system-running;
                     relay; exit 0 when all are healthy, 1 otherwise
  ssh NAME [CMD...]  OpenSSH to a target with the lab key and pinned host keys
  images             local container images in the targets (no registry is reachable):
                     installs podman, imports Debian base images built once on the host
                     (cached in <cache>/images/) and builds localhost/lab-postgres:17|15,
                     localhost/lab-redis:8 and localhost/lab-authentik:TAG (an authentik
                     stand-in); images already built from the same inputs are kept

Options:
  --count N          number of targets (default ${defaults.count}, at most ${maxTargets}), named lab1..labN
  --names a,b        target names instead of --count (hostnames too)
  --subnet CIDR      lab network (default ${defaults.subnet}); the bridge gets .1, the
                     targets .2, .3, ... (up only; later commands read the state dir)
  --bridge NAME      host bridge (default ${defaults.bridge}); also prefixes the namespaces
  --cache DIR        rootfs tarball and apt cache, kept across labs (default ${defaults.cacheDir})
  --state DIR        this lab's key, inventory, known_hosts, pids and target roots
                     (default ${defaults.stateDir} in the current directory)
  --json             status: print JSON instead of a table

Options of images (each may repeat or take a comma list):
  --names a,b        targets to work on (default: all targets of the lab)
  --authentik-tag T  stand-in tags to build (default 2025.8.1, 2026.2.1)
  --broken-tag T     stand-ins whose /-/health/ready/ never answers 200 (default none)
  --postgres N       Postgres majors: 17 (Debian 13) and/or 15 (Debian 12) (default both)
  -h, --help         this text

Two labs coexist when they differ in --subnet, --bridge and --state.
`;

const options = {
  count: { type: 'string' },
  names: { type: 'string' },
  subnet: { type: 'string' },
  bridge: { type: 'string' },
  cache: { type: 'string' },
  state: { type: 'string' },
  json: { type: 'boolean' },
  'authentik-tag': { type: 'string', multiple: true },
  'broken-tag': { type: 'string', multiple: true },
  postgres: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

const valued = new Set(['--count', '--names', '--subnet', '--bridge', '--cache', '--state', '--authentik-tag', '--broken-tag', '--postgres']);

// `--postgres 17 --postgres 15` and `--postgres 17,15` alike.
const list = (values: string[] | undefined) => values?.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);

function imagesOptions(values: Record<string, string | string[] | boolean | undefined>) {
  const majors = list(values.postgres as string[] | undefined)?.map((m) => {
    if (!/^\d+$/.test(m)) throw inputError(`bad --postgres ${m}`, { hint: 'a major version: 17 or 15' });
    return Number(m);
  });
  const out: { authentikTags?: string[]; brokenTags?: string[]; postgresMajors?: number[] } = {};
  const tags = list(values['authentik-tag'] as string[] | undefined);
  const broken = list(values['broken-tag'] as string[] | undefined);
  if (tags) out.authentikTags = tags;
  if (broken) out.brokenTags = broken;
  if (majors) out.postgresMajors = majors;
  return out;
}

function labOptions(values: Record<string, string | string[] | boolean | undefined>): LabOptions {
  const out: LabOptions = { log: (line) => process.stderr.write(`lab: ${line}\n`) };
  if (typeof values.count === 'string') {
    if (!/^\d+$/.test(values.count)) throw inputError(`bad --count ${values.count}`, { hint: 'a whole number, e.g. --count 2' });
    out.count = Number(values.count);
  }
  if (typeof values.names === 'string') out.names = values.names.split(',').map((n) => n.trim()).filter(Boolean);
  if (typeof values.subnet === 'string') out.subnet = values.subnet;
  if (typeof values.bridge === 'string') out.bridge = values.bridge;
  if (typeof values.cache === 'string') out.cacheDir = values.cache;
  if (typeof values.state === 'string') out.stateDir = values.state;
  return out;
}

// `lab ssh NAME ls -la`: everything after NAME belongs to the remote command, so only the
// words before it are parsed as our options.
function splitSsh(argv: string[]): { ours: string[]; name: string | undefined; command: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return { ours: argv.slice(0, i), name: argv[i + 1], command: argv.slice(i + 2) };
    if (valued.has(a)) {
      i++;
      continue;
    }
    if (!a.startsWith('-')) return { ours: argv.slice(0, i), name: a, command: argv.slice(i + 1).filter((w, j) => !(j === 0 && w === '--')) };
  }
  return { ours: argv, name: undefined, command: [] };
}

async function sshCommand(argv: string[]): Promise<number> {
  const { ours, name, command } = splitSsh(argv);
  const { values } = parse(ours, options, 'lab');
  if (values.help) return (process.stdout.write(help), 0);
  if (!name) throw inputError('lab ssh needs a target name', { hint: 'hostctl lab ssh lab1 [command...]' });
  const { labConfig, sshArgs } = await import('../lab/index.js');
  const config = await labConfig(labOptions(values));
  if (!config) throw inputError('no lab in this state dir', { hint: 'run `hostctl lab up` first, or give --state' });
  const target = config.targets.find((t) => t.name === name);
  if (!target) {
    throw inputError(`no target ${name} in the lab`, { hint: `targets: ${config.targets.map((t) => t.name).join(', ')}` });
  }
  const args = sshArgs(config, target, command, { batch: false });
  const child = spawn('ssh', args, { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`hostctl lab ssh: ${error.message}\n`);
      resolve(exitCodes.internal);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 1 : 1)));
  });
}

export async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(help);
    return command === undefined ? exitCodes.input : 0;
  }
  try {
    if (command === 'ssh') return await sshCommand(rest);
    const { values, positionals } = parse(rest, options, 'lab');
    if (values.help) return (process.stdout.write(help), 0);
    if (positionals.length) throw inputError(`unexpected ${positionals.join(' ')}`, { hint: 'see `hostctl lab --help`' });
    const lab = await import('../lab/index.js');
    const opts = labOptions(values);
    switch (command) {
      case 'up': {
        const started = Date.now();
        const up = await lab.labUp(opts);
        for (const t of up.targets) process.stdout.write(`${t.name}\t${t.address}\tpid ${t.pid}\n`);
        process.stdout.write(`inventory: ${up.inventoryPath}\n`);
        process.stderr.write(`lab: up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        return 0;
      }
      case 'down':
        await lab.labDown(opts);
        return 0;
      case 'status': {
        const s = await lab.labStatus(opts);
        if (values.json) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
        else if (!s.exists) process.stdout.write(`no lab in ${s.stateDir}\n`);
        else {
          process.stdout.write(`relay\t${s.relay?.url}\t${s.relay?.alive ? `alive (pids ${s.relay.pids.join(' ')})` : 'DEAD'}\n`);
          for (const t of s.targets) {
            const failed = t.failedUnits.length ? ` failed: ${t.failedUnits.join(' ')}` : '';
            process.stdout.write(
              `${t.name}\t${t.address}\t${t.alive ? `pid ${t.pid}` : 'NOT RUNNING'}\t${t.ssh ? 'ssh ok' : 'ssh DOWN'}\t${t.systemState ?? '-'}${failed}\n`,
            );
          }
        }
        return s.healthy ? 0 : 1;
      }
      case 'images': {
        const { labImages } = await import('../lab/images.js');
        const r = await labImages({ stateDir: opts.stateDir }, {
          ...imagesOptions(values),
          ...(opts.names ? { names: opts.names } : {}),
          log: opts.log!,
        });
        for (const t of r.targets) {
          const did = [
            t.installedPodman ? 'podman installed' : '',
            t.imported.length ? `imported ${t.imported.join(' ')}` : '',
            t.built.length ? `built ${t.built.length}` : 'nothing to build',
          ].filter(Boolean).join(', ');
          process.stdout.write(`${t.name}\t${t.seconds.toFixed(1)} s\t${did}\n`);
        }
        for (const i of r.images) process.stdout.write(`${i}\n`);
        process.stderr.write(`lab: images in ${r.seconds.toFixed(1)} s\n`);
        return 0;
      }
      default:
        throw inputError(`unknown lab command ${JSON.stringify(command)}`, { hint: 'one of up, down, status, ssh, images' });
    }
  } catch (error) {
    process.stderr.write(`hostctl lab: ${describeError(error, process.env.HOSTCTL_VERBOSE === '1')}\n`);
    return isHostctlError(error) ? exitCodes[error.kind] : exitCodes.internal;
  }
}
