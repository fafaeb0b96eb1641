import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { isHostctlError } from '../../src/core/errors.js';
import { labDown, labUp, sshArgs, type LabOptions } from '../../src/lab/index.js';
import { hostUsage, perTarget, registryPath } from '../../src/lab/limits.js';
import { maxTargets } from '../../src/lab/options.js';
import { loadConfig, targetPaths } from '../../src/lab/state.js';
import { labSkip } from '../helpers/lab.js';

// The lab against the host's limits, on real targets. Subnets 10.221-10.223 and bridges
// hlscale* belong to this file alone.
const instancesPath = '/proc/sys/fs/inotify/max_user_instances';
const readInstances = async () => Number((await readFile(instancesPath, 'utf8')).trim());
const repo = join(import.meta.dirname, '../..');

async function scratchLab(bridge: string, subnet: string, extra: Partial<LabOptions>): Promise<LabOptions> {
  const stateDir = await mkdtemp(join(tmpdir(), `hostctl-${bridge}-`));
  return { bridge, subnet, stateDir, log: (line) => console.log(`# lab: ${line}`), ...extra };
}

// The refusal needs a host with less free memory than the largest lab takes.
const memory = (await hostUsage()).memAvailableMiB;
const tooMuch = memory >= maxTargets * perTarget.memoryMiB ? `${memory} MiB free holds ${maxTargets} targets` : false;

describe('lab at scale', { skip: labSkip, timeout: 900_000 }, () => {
  it('boots more targets than fs.inotify.max_user_instances holds by raising it, and puts it back on down', async () => {
    const count = 10;
    const original = await readInstances();
    const options = await scratchLab('hlscale1', '10.221.0.0/24', { count });
    // Room for 4 more instances beyond what the host uses now: a target alone takes ~7.
    const low = (await hostUsage()).inotifyInstances + 4;
    try {
      await writeFile(instancesPath, `${low}\n`);
      const lab = await labUp(options, 90_000);
      const raised = await readInstances();
      assert.ok(raised >= low + count * perTarget.inotifyInstances, `max_user_instances is ${raised}`);
      assert.ok(existsSync(registryPath), 'the old value is recorded');
      assert.equal(JSON.parse(await readFile(registryPath, 'utf8')).original['fs.inotify.max_user_instances'], low);
      const config = (await loadConfig(options.stateDir!))!;
      const names = await Promise.all(config.targets.map(async (t) => {
        const r = await execa('ssh', sshArgs(config, t, ['hostname']), { reject: false, timeout: 60_000 });
        return r.stdout.trim();
      }));
      assert.deepEqual(names, lab.targets.map((t) => t.name));
      assert.equal(names.length, count);

      await labDown(options);
      assert.equal(await readInstances(), low, 'down puts the old value back');
      assert.equal(existsSync(registryPath), false);
    } finally {
      await labDown(options).catch((e) => console.log(`# cleanup: ${e.message}`));
      await writeFile(instancesPath, `${original}\n`);
    }
  });

  it('reports a target whose container exits at once, with its last console lines', async () => {
    const options = await scratchLab('hlscale2', '10.222.0.0/24', { names: ['good', 'bad'] });
    // A real boot that fails: the overlay's upper dir gives "bad" an init that gives up.
    const init = join(targetPaths(options.stateDir!, 'bad').upper, 'usr/lib/systemd/systemd');
    await mkdir(join(init, '..'), { recursive: true });
    await writeFile(init, '#!/bin/sh\necho "test-init: cannot go on, giving up"\nexit 3\n');
    await chmod(init, 0o755);
    const started = Date.now();
    try {
      const error = await labUp(options).then(() => undefined, (e: unknown) => e);
      const seconds = (Date.now() - started) / 1000;
      assert.ok(isHostctlError(error, 'unreachable'), String(error));
      assert.ok(seconds < 20, `reported after ${seconds} s`);
      assert.match(error.message, /bad \(10\.222\.0\.3\): its container exited/);
      assert.match(error.message, /test-init: cannot go on, giving up/);
      assert.match(error.message, /hostctl-lab: bad exited 3/);
      assert.doesNotMatch(error.message, /good/);
    } finally {
      await labDown(options);
    }
  });

  it('refuses a lab the host cannot hold (exit 5), naming the limit, the need and the fix, touching nothing', { skip: tooMuch }, async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'hostctl-hlscale3-'));
    const before = await readInstances();
    try {
      const r = await execa('node', [join(repo, 'bin/hostctl.js'), 'lab', 'up', '--count', String(maxTargets), '--subnet', '10.223.0.0/22',
        '--bridge', 'hlscale3', '--state', stateDir], { reject: false, timeout: 120_000 });
      assert.equal(r.exitCode, 5, r.stderr);
      assert.match(r.stderr, new RegExp(`cannot hold ${maxTargets} more lab targets: memory: ${maxTargets * perTarget.memoryMiB} MiB needed, \\d+ MiB available`));
      assert.match(r.stderr, /boot fewer targets/);
      assert.equal(existsSync(join(stateDir, 'lab.json')), false);
      assert.notEqual((await execa('ip', ['link', 'show', 'dev', 'hlscale3'], { reject: false })).exitCode, 0);
      assert.equal(await readInstances(), before, 'a refused lab raises nothing');
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
