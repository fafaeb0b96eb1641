import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { encrypt } from '../../src/vault/index.js';
import { events, hostctl, repo, tempDir } from '../helpers/cli.js';
import { labImages } from '../../src/lab/images.js';
import { labSkip, useLab } from '../helpers/lab.js';

type Event = Record<string, unknown>;
const HOST = 'authentik';
const PASSWORD = 'lab-only-example-password';
const STAMP = '/var/lib/hostctl/authentik-postgres-password-checked';
// Every podman call made from an SSH login (a session scope: hostctl's commands, not podman's
// own health-check timer or the units), recorded on the target by a wrapper in front of podman.
const CALLS = '/run/podman-calls';
// While /run/psql-fails holds a number N > 0, the next N psql execs from a session fail as
// they do while Postgres' image restarts its initialising server.
const PSQL_FAILS = '/run/psql-fails';
const WRAPPER = `#!/bin/sh
case "$(cat /proc/self/cgroup)" in *session-*)
  printf '%s\\n' "$*" >> ${CALLS}
  case "$*" in exec\\ *psql\\ *) n=$(cat ${PSQL_FAILS} 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then echo $((n - 1)) > ${PSQL_FAILS}; echo 'psql: the database system is shutting down' >&2; exit 2; fi;; esac;;
esac
exec /usr/bin/podman.real "$@"
`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// What a converged run of the authentik playbook costs on the target: no health check run in
// the Postgres container while podman's own record is fresh, and no psql there unless .env
// changed, a killed run left the comparison due, or its schedule came.
describe('the converged authentik run on the target', { skip: labSkip, timeout: 1_800_000 }, () => {
  const t = useLab(21, [HOST]);
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let inventory = '';
  let labVars = '';

  before(async () => {
    dir = await tempDir('hostctl-converged-');
    inventory = join(dir.path, 'inventory');
    await cp(join(repo, 'inventory'), inventory, { recursive: true });
    labVars = join(dir.path, 'lab.yml');
    await writeFile(labVars, (await readFile(join(repo, 'lab', 'authentik.yml'), 'utf8')).replace(/_delay: \d+/g, '_delay: 1'));
    await labImages(t.lab, { authentikTags: ['2026.2.1'], postgresMajors: [17] });
    await sh('mv /usr/bin/podman /usr/bin/podman.real && cat > /usr/bin/podman && chmod 0755 /usr/bin/podman', WRAPPER);
  });
  after(async () => {
    await dir?.[Symbol.asyncDispose]();
  });

  const args = (extra: string[]) => [
    'run', join(repo, 'playbooks', 'authentik.ts'), '-i', inventory, '-i', t.lab.inventoryPath, '-e', `@${labVars}`,
    '--vault-password-file', join(repo, 'lab', 'vault-password'), '--json', ...extra,
  ];
  const sh = async (command: string, input?: string) => {
    const r = await t.sh(HOST, command, input === undefined ? {} : { input });
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const ends = (stdout: string) => events(stdout).filter((e) => e.type === 'task-end') as Array<{ task: string; status: string; reason: string }>;
  const task = (stdout: string, name: string) => ends(stdout).find((e) => e.task === name);
  // A run, and the podman calls it made on the target.
  const run = async (...extra: string[]) => {
    await sh(`: > ${CALLS}`);
    const r = await hostctl(args(extra));
    assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    return { stdout: r.stdout, calls: (await sh(`cat ${CALLS}`)).split('\n').filter(Boolean) };
  };
  const healthChecks = (calls: string[]) => calls.filter((c) => c.startsWith('healthcheck run'));
  const psql = (calls: string[]) => calls.filter((c) => /^exec .* psql /.test(c));
  const changed = (stdout: string) => ends(stdout).filter((e) => e.status === 'changed').map((e) => e.task);
  // Until Postgres has run longer than one health interval + timeout (10 s + 5 s) and its
  // timer recorded a check since: what a converged host, up for a while, looks like.
  const settled = async () => {
    const since = Number(await sh(`podman inspect -f '{{.State.StartedAt.Unix}}' authentik-postgresql`));
    for (let i = 0; i < 60 && Number(await sh('date +%s')) - since < 30; i++) await sleep(1000);
  };

  it('deploys the stack and compares the password (.env is new), stamped root-only', async () => {
    const r = await hostctl(args([]));
    assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    // A first start may answer the comparison while Postgres still initialises (its entrypoint's
    // temporary server): then the comparison stays due, and the next run makes it.
    const first = task(r.stdout, 'postgres password of role authentik')?.reason;
    if (first !== 'the password in .env is the database password') {
      assert.equal(first, 'postgres is not running: its password is set when it first starts');
      assert.match(await sh('cat /var/lib/hostctl/journal/*.json'), /"name":"compare the postgres password"/);
      await settled();
      const again = await hostctl(args([]));
      assert.equal(task(again.stdout, 'postgres password of role authentik')?.reason, 'the password in .env is the database password');
    }
    assert.equal(await sh('ls -A /var/lib/hostctl/journal | wc -l'), '0');
    assert.equal(await sh(`stat -c '%a %U' ${STAMP}`), '600 root');
  });

  it('a converged re-run runs no health check and no psql in the Postgres container, in one round trip', async () => {
    await settled();
    const r = await run();
    assert.deepEqual(changed(r.stdout), []);
    assert.equal((events(r.stdout).find((e) => e.type === 'host-end') as { roundTrips: number }).roundTrips, 1);
    assert.deepEqual(healthChecks(r.calls), [], r.calls.join('\n'));
    assert.deepEqual(psql(r.calls), [], r.calls.join('\n'));
    // What it read instead: podman's record, and the stamp of the last comparison.
    assert.ok(r.calls.some((c) => c.startsWith('inspect --format') && c.endsWith('-- authentik-postgresql')), r.calls.join('\n'));
    assert.match(task(r.stdout, 'postgres password of role authentik')?.reason ?? '', /^compared \d{4}-\d\d-\d\d \d\d:\d\d UTC; again after 7 days, or when \.env changes$/);
  });

  it('Postgres restarted a moment ago (outside the run): its recorded health does not count, a real check runs', async () => {
    await sh('systemctl restart authentik-postgresql.service');
    const r = await run();
    assert.deepEqual(changed(r.stdout), []);
    assert.deepEqual(healthChecks(r.calls), ['healthcheck run authentik-postgresql'], r.calls.join('\n'));
    await settled();
    assert.deepEqual(healthChecks((await run()).calls), []);
  });

  it('Postgres started by the run: a real check', async () => {
    await sh('systemctl stop authentik-postgresql.service');
    const r = await run();
    assert.ok(changed(r.stdout).includes('authentik-postgresql.service'), r.stdout.slice(-3000));
    assert.ok(healthChecks(r.calls).length >= 1, r.calls.join('\n'));
    await settled();
  });

  it('.env changed (a new password in the vault): the password is compared and set; the next run does not compare', async () => {
    const vaultFile = join(inventory, 'host_vars', HOST, 'vault.yml');
    const view = (await hostctl(['vault', 'view', '--vault-password-file', join(repo, 'lab', 'vault-password'), vaultFile])).stdout;
    const key = /vault_authentik_secret_key: (\S+)/.exec(view)![1]!;
    await writeFile(vaultFile, encrypt(`vault_authentik_pg_pass: converged-cost-password-2\nvault_authentik_secret_key: ${key}\n`, PASSWORD));
    const r = await run();
    assert.ok(changed(r.stdout).includes('postgres password of role authentik'), r.stdout.slice(-3000));
    assert.ok(psql(r.calls).length >= 1, r.calls.join('\n'));
    await sh(`podman exec -e PGPASSWORD=converged-cost-password-2 authentik-postgresql psql -h 127.0.0.1 -U authentik -d authentik -tAc 'select 1'`);
    await settled();
    const next = await run();
    assert.deepEqual(changed(next.stdout), []);
    assert.deepEqual(psql(next.calls), [], next.calls.join('\n'));
  });

  it('a due comparison waits for Postgres to answer psql, as after its image restarts the initialising server', async () => {
    const vaultFile = join(inventory, 'host_vars', HOST, 'vault.yml');
    await writeFile(vaultFile, encrypt('vault_authentik_pg_pass: converged-cost-password-2\nvault_authentik_secret_key: converged-cost-key-rotated-0123456789\n', PASSWORD));
    await sh(`echo 3 > ${PSQL_FAILS}`);
    const r = await run();
    assert.equal(await sh(`cat ${PSQL_FAILS}`), '0');
    assert.match(task(r.stdout, 'postgres password of role authentik')?.reason ?? '', /the password in \.env is the database password/, r.stdout.slice(-3000));
    // Compared, so nothing is left due for the next run.
    assert.equal(await sh('ls -A /var/lib/hostctl/journal | wc -l'), '0');
  });

  it('a restart of server or worker due (the worker unit changed on the host): the password is compared before it', async () => {
    await settled();
    await sh('echo "# edited by hand" >> /etc/containers/systemd/authentik-worker.container');
    const r = await run();
    assert.ok(changed(r.stdout).includes('authentik-worker.service'), r.stdout.slice(-3000));
    assert.equal(psql(r.calls).length, 1, r.calls.join('\n'));
    assert.equal(task(r.stdout, 'postgres password of role authentik')?.reason, 'the password in .env is the database password');
  });

  it('after authentik_pg_password_check_days the password is compared again (every run with 0 days)', async () => {
    await sh(`touch -d '8 days ago' ${STAMP}`);
    const r = await run();
    assert.deepEqual(changed(r.stdout), []);
    assert.equal(psql(r.calls).length, 1, r.calls.join('\n'));
    assert.equal(task(r.stdout, 'postgres password of role authentik')?.reason, 'the password in .env is the database password');
    assert.equal(await sh(`find ${STAMP} -mmin -5 | wc -l`), '1');
    assert.deepEqual(psql((await run()).calls), []);
    const every = await run('-e', 'authentik_pg_password_check_days=0');
    assert.equal(psql(every.calls).length, 1, every.calls.join('\n'));
  });

  it('the password changed by hand in the database: authentik is locked out, so the next run compares and sets it again', async () => {
    await sh(`podman exec -i authentik-postgresql psql -X -q -v ON_ERROR_STOP=1 -U authentik -d authentik`, "ALTER ROLE authentik WITH PASSWORD 'changed-by-hand';\n");
    // The stand-in, as authentik, is not ready without its database.
    for (let i = 0; i < 30 && (await t.sh(HOST, 'curl -sf -o /dev/null http://127.0.0.1:9000/-/health/ready/')).code === 0; i++) await sleep(1000);
    const r = await run();
    assert.ok(changed(r.stdout).includes('postgres password of role authentik'), r.stdout.slice(-3000));
    await sh(`podman exec -e PGPASSWORD=converged-cost-password-2 authentik-postgresql psql -h 127.0.0.1 -U authentik -d authentik -tAc 'select 1'`);
    assert.deepEqual(psql((await run()).calls), []);
  });

  it('a run killed after .env changed, before the comparison: the next run compares', async () => {
    const vaultFile = join(inventory, 'host_vars', HOST, 'vault.yml');
    const view = (await hostctl(['vault', 'view', '--vault-password-file', join(repo, 'lab', 'vault-password'), vaultFile])).stdout;
    const key = /vault_authentik_secret_key: (\S+)/.exec(view)![1]!;
    await writeFile(vaultFile, encrypt(`vault_authentik_pg_pass: converged-cost-password-3\nvault_authentik_secret_key: ${key}\n`, PASSWORD));
    // Held at its wait for Postgres (paused: the recorded health does not count, the real
    // check fails) until it is dead, so the kill lands before the comparison.
    await sh('podman pause authentik-postgresql');
    try {
      const child = execa('node', [join(repo, 'bin', 'hostctl.js'), ...args([])], { reject: false, cwd: repo, env: { NO_COLOR: '1' }, buffer: false });
      for await (const line of createInterface({ input: child.stdout! })) {
        const e = line.trim() ? (JSON.parse(line) as Event) : {};
        if (e.type === 'task-end' && e.status === 'changed' && String(e.task).endsWith('.env')) {
          child.kill('SIGKILL');
          break;
        }
      }
      assert.equal((await child).signal, 'SIGKILL');
    } finally {
      await sh('podman unpause authentik-postgresql');
    }
    assert.match(await sh('cat /var/lib/hostctl/journal/*.json'), /"name":"compare the postgres password"/);
    const r = await run();
    assert.ok(changed(r.stdout).includes('postgres password of role authentik'), r.stdout.slice(-3000));
    assert.ok(psql(r.calls).length >= 1, r.calls.join('\n'));
    await sh(`podman exec -e PGPASSWORD=converged-cost-password-3 authentik-postgresql psql -h 127.0.0.1 -U authentik -d authentik -tAc 'select 1'`);
    assert.equal(await sh('ls -A /var/lib/hostctl/journal | wc -l'), '0');
  });
});
