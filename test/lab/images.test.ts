import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { labDown, labUp, sshArgs, type Lab, type LabConfig, type LabOptions } from '../../src/lab/index.js';
import { assetsDir, labImages, specHash, type ImagesResult } from '../../src/lab/images.js';
import { baseImage, imageSpecs, labImage } from '../../src/lab/image-plan.js';
import { waitUntil } from '../../src/lab/process.js';
import { loadConfig } from '../../src/lab/state.js';

describe('lab image build contexts', () => {
  it('finds its build contexts and hashes their inputs', async () => {
    assert.deepEqual((await readdir(assetsDir)).sort(), ['authentik', 'postgres', 'redis']);
    const [a, b] = imageSpecs({ authentikTags: ['1.0', '2.0'], postgresMajors: [] }).filter((s) => s.context === 'authentik');
    assert.match(await specHash(a!), /^[0-9a-f]{16}$/);
    assert.notEqual(await specHash(a!), await specHash(b!));
    assert.equal(await specHash(a!), await specHash({ ...a! }));
  });
});

// End to end: its own lab (subnet, bridge, state dir) beside a developer's; the shared
// cache keeps the base tarballs. `after` tears down even when a test failed.
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const tools = ['systemd-nspawn', 'debootstrap', 'apt-cacher-ng', 'ssh', 'nft', 'zstd', 'curl'].every(
  (t) => existsSync(`/usr/bin/${t}`) || existsSync(`/usr/sbin/${t}`),
);
const skip = !root ? 'needs root' : !tools ? 'needs debootstrap systemd-container apt-cacher-ng openssh-client nftables zstd curl' : false;

const BROKEN = '2099.1.0';
const options: LabOptions = {
  count: 1,
  subnet: '10.202.0.0/24',
  bridge: 'hlimg0',
  stateDir: skip ? join(tmpdir(), 'hostctl-images-test-skipped') : await mkdtemp(join(tmpdir(), 'hostctl-images-test-')),
  log: (line) => console.log(`# lab: ${line}`),
};

let lab: Lab;
let config: LabConfig;
let first: ImagesResult;

async function sh(command: string, timeoutMs = 120_000) {
  return execa('ssh', sshArgs(config, config.targets[0]!, [command]), { reject: false, timeout: timeoutMs });
}

async function ok(command: string, timeoutMs?: number): Promise<string> {
  const r = await sh(command, timeoutMs);
  assert.equal(r.exitCode, 0, `${command}\nexit ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const ipOf = async (ctr: string) => (await ok(`podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' ${ctr}`)).trim();

// HTTP status and body, fetched by curl inside the target.
async function get(ip: string, path: string): Promise<{ code: number; body: string }> {
  const r = await sh(`curl -s -m 5 -w '\\n%{http_code}' http://${ip}:9000${path}`);
  const lines = r.stdout.split('\n');
  return { code: Number(lines.pop()), body: lines.join('\n').trim() };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  assert.ok(await waitUntil(check, timeoutMs, 500), `${what}: not within ${timeoutMs / 1000} s`);
}

const authentik = (name: string, image: string, env: Record<string, string>, args = '') =>
  ok(`podman run -d --name ${name} --network labnet ${Object.entries(env).map(([k, v]) => `-e ${k}=${v}`).join(' ')} ${image} ${args}`);

const dbEnv = {
  AUTHENTIK_SECRET_KEY: 'not-so-secret',
  AUTHENTIK_POSTGRESQL__HOST: 'pg',
  AUTHENTIK_POSTGRESQL__NAME: 'authentik',
  AUTHENTIK_POSTGRESQL__USER: 'authentik',
  AUTHENTIK_POSTGRESQL__PASSWORD: 'first-password',
};

describe('lab images', { skip, timeout: 1_800_000 }, () => {
  before(async () => {
    let started = Date.now();
    lab = await labUp(options);
    config = (await loadConfig(options.stateDir!))!;
    console.log(`# lab up took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    started = Date.now();
    first = await labImages(lab, { brokenTags: [BROKEN], log: options.log! });
    console.log(`# lab images (fresh target) took ${first.seconds.toFixed(1)} s`);
  });

  after(async () => {
    await labDown(options);
  });

  it('installs podman, imports the bases and builds every image', async () => {
    const [t] = first.targets;
    assert.equal(t!.installedPodman, true);
    assert.deepEqual(t!.imported.sort(), [baseImage('bookworm'), baseImage('trixie')]);
    assert.equal(t!.built.length, 6);
    const listed = (await ok(`podman images --filter label=hostctl.lab=1 --format '{{.Repository}}:{{.Tag}} {{.Size}}'`)).trim();
    console.log(listed.split('\n').map((l) => `# ${l}`).join('\n'));
    for (const name of [labImage.postgres(17), labImage.postgres(15), labImage.redis, labImage.authentik('2025.8.1'), labImage.authentik('2026.2.1'), labImage.authentik(BROKEN)]) {
      assert.match(listed, new RegExp(`^${name.replace(/[.]/g, '\\.')} `, 'm'));
      assert.ok(first.images.includes(name), name);
    }
  });

  it('does nothing the second time', async () => {
    const again = await labImages(lab, { brokenTags: [BROKEN] });
    console.log(`# lab images (second run) took ${again.seconds.toFixed(1)} s`);
    assert.deepEqual(again.targets.map((t) => [t.installedPodman, t.imported, t.built]), [[false, [], []]]);
    assert.deepEqual(again.images, first.images);
    assert.ok(again.seconds < 10, `second run took ${again.seconds} s`);
  });

  it('postgres 17 initialises from POSTGRES_* once and has the client tools', async () => {
    await ok('podman network create labnet');
    const tools = await ok(`podman run --rm --entrypoint sh ${labImage.postgres(17)} -c 'for t in pg_isready psql pg_dump pg_restore pg_dumpall; do command -v $t; done'`);
    assert.equal(tools.trim().split('\n').length, 5, tools);
    await ok(`podman run -d --name pg --network labnet -v pgdata:/var/lib/postgresql/data -e POSTGRES_DB=authentik -e POSTGRES_USER=authentik -e POSTGRES_PASSWORD=first-password ${labImage.postgres(17)}`);
    await waitFor('pg_isready', async () => (await sh('podman exec pg pg_isready -q -h 127.0.0.1 -U authentik')).exitCode === 0);
    assert.equal((await ok('podman exec pg cat /var/lib/postgresql/data/PG_VERSION')).trim(), '17');
    assert.equal((await ok(`podman exec pg psql -U authentik -d authentik -tAc 'select current_user, current_database()'`)).trim(), 'authentik|authentik');
    // TCP needs the password (scram), the local socket does not.
    const ip = await ipOf('pg');
    const bad = await sh(`podman run --rm -e PGPASSWORD=wrong ${labImage.postgres(17)} psql -h ${ip} -U authentik -d authentik -tAc 'select 1'`);
    assert.notEqual(bad.exitCode, 0);
    assert.match(bad.stderr, /password authentication failed/);
    assert.equal((await ok(`podman run --rm -e PGPASSWORD=first-password ${labImage.postgres(17)} psql -h ${ip} -U authentik -d authentik -tAc 'select 1'`)).trim(), '1');
  });

  it('the stand-in is ready with the right credentials and Redis', async () => {
    await ok(`podman run -d --name redis --network labnet ${labImage.redis}`);
    await waitFor('redis', async () => (await sh(`podman exec redis redis-cli ping`)).stdout.trim() === 'PONG');
    await authentik('ak', labImage.authentik('2025.8.1'), { ...dbEnv, AUTHENTIK_REDIS__HOST: 'redis' });
    const ip = await ipOf('ak');
    await waitFor('ak ready', async () => (await get(ip, '/-/health/ready/')).code === 200);
    assert.equal((await get(ip, '/-/health/live/')).code, 200);
    assert.deepEqual(await get(ip, '/-/version/'), { code: 200, body: '2025.8.1' });
    assert.equal((await sh('podman exec ak ak healthcheck')).exitCode, 0);
    // It stays a non-root process, like the real image.
    assert.equal((await ok('podman exec ak id -u')).trim(), '1000');
    // Redis gone: not ready, and the reason says so.
    await ok('podman stop -t 5 redis');
    await waitFor('ak not ready without redis', async () => {
      const r = await get(ip, '/-/health/ready/');
      return r.code === 503 && /redis/.test(r.body);
    });
    assert.notEqual((await sh('podman exec ak ak healthcheck')).exitCode, 0);
    await ok('podman start redis');
    await waitFor('ak ready again', async () => (await get(ip, '/-/health/ready/')).code === 200);
    const logs = await ok('podman logs ak');
    assert.match(logs, /"server not ready"/);
    assert.match(logs, /"server ready"/);
  });

  it('is not ready with a wrong database password', async () => {
    await authentik('ak-wrong', labImage.authentik('2026.2.1'), { ...dbEnv, AUTHENTIK_POSTGRESQL__PASSWORD: 'wrong' });
    const ip = await ipOf('ak-wrong');
    await waitFor('ak-wrong live', async () => (await get(ip, '/-/health/live/')).code === 200);
    const r = await get(ip, '/-/health/ready/');
    assert.equal(r.code, 503);
    assert.match(r.body, /password authentication failed/);
    assert.equal(r.body.split('\n').length, 1);
  });

  it('a broken tag is never ready, even with the right credentials', async () => {
    await authentik('ak-broken', labImage.authentik(BROKEN), dbEnv);
    const ip = await ipOf('ak-broken');
    await waitFor('ak-broken live', async () => (await get(ip, '/-/health/live/')).code === 200);
    for (let i = 0; i < 3; i++) assert.equal((await get(ip, '/-/health/ready/')).code, 503);
    assert.deepEqual(await get(ip, '/-/version/'), { code: 200, body: BROKEN });
  });

  it('refuses to start without AUTHENTIK_SECRET_KEY, in either mode', async () => {
    for (const mode of ['', 'worker']) {
      const r = await sh(`podman run --rm --network labnet -e AUTHENTIK_POSTGRESQL__HOST=pg ${labImage.authentik('2025.8.1')} ${mode}`);
      assert.equal(r.exitCode, 1, `${mode || 'server'}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stderr, /AUTHENTIK_SECRET_KEY/);
    }
  });

  it('worker mode talks to Postgres and listens on nothing', async () => {
    await authentik('ak-worker', labImage.authentik('2025.8.1'), dbEnv, 'worker');
    await waitFor('worker heartbeat', async () => (await sh('podman exec ak-worker ak healthcheck')).exitCode === 0);
    assert.match(await ok('podman logs ak-worker'), /"worker ready"/);
    const ip = await ipOf('ak-worker');
    const r = await sh(`curl -s -m 5 -o /dev/null http://${ip}:9000/-/health/live/; echo $?`);
    assert.equal(r.stdout.trim(), '7', 'worker answered on 9000');
    assert.equal((await ok(`podman inspect -f '{{.State.Running}}' ak-worker`)).trim(), 'true');
  });

  it('the stand-in records its version in the database, a broken one too', async () => {
    const rows = await ok(`podman exec pg psql -U authentik -d authentik -tAc 'select version from standin_version_history order by started_at'`);
    assert.equal(rows.trim(), `2025.8.1\n${BROKEN}`);
  });

  it('postgres stops fast on SIGTERM and ignores a changed POSTGRES_PASSWORD', async () => {
    await ok('podman rm -f ak ak-wrong ak-broken ak-worker');
    const started = Date.now();
    await ok('podman kill --signal TERM pg && podman wait pg');
    assert.ok(Date.now() - started < 8_000, `SIGTERM took ${Date.now() - started} ms`);
    assert.equal((await ok('podman wait pg')).trim(), '0');
    // Once after initdb's temporary server, once now.
    assert.equal((await ok('podman logs pg 2>&1')).match(/database system is shut down/g)?.length, 2);
    await ok('podman rm pg');
    await ok(`podman run -d --name pg --network labnet -v pgdata:/var/lib/postgresql/data -e POSTGRES_DB=authentik -e POSTGRES_USER=authentik -e POSTGRES_PASSWORD=second-password ${labImage.postgres(17)}`);
    await waitFor('pg_isready again', async () => (await sh('podman exec pg pg_isready -q -h 127.0.0.1 -U authentik')).exitCode === 0);
    const ip = await ipOf('pg');
    const psql = (pw: string) => sh(`podman run --rm -e PGPASSWORD=${pw} ${labImage.postgres(17)} psql -h ${ip} -U authentik -d authentik -tAc 'select 1'`);
    assert.equal((await psql('first-password')).exitCode, 0);
    assert.notEqual((await psql('second-password')).exitCode, 0);
  });

  it('postgres 15 starts and says 15', async () => {
    await ok(`podman run -d --name pg15 --network labnet -e POSTGRES_PASSWORD=pw ${labImage.postgres(15)}`);
    await waitFor('pg15 ready', async () => (await sh('podman exec pg15 pg_isready -q -h 127.0.0.1 -U postgres')).exitCode === 0);
    assert.match(await ok(`podman exec pg15 psql -U postgres -tAc 'select version()'`), /^PostgreSQL 15\./);
    assert.equal((await ok('podman exec pg15 cat /var/lib/postgresql/data/PG_VERSION')).trim(), '15');
    // A dump of 15 restores into 17: the way a major upgrade goes.
    await ok(`podman exec pg15 psql -U postgres -c 'create table t (x int); insert into t values (42)'`);
    await ok(`podman exec pg15 pg_dump -U postgres -Fc -t t postgres > /tmp/pg15.dump && podman exec -i pg pg_restore --no-owner --no-acl -U authentik -d authentik < /tmp/pg15.dump`);
    assert.equal((await ok(`podman exec pg psql -U authentik -d authentik -tAc 'select x from t'`)).trim(), '42');
  });
});
