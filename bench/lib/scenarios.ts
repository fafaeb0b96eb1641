import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

// What the bench runs: each scenario's hosts, the command line of each tool, the packages
// to warm the apt relay with, and the files both tools must leave identical.

export const repo = fileURLToPath(new URL('../../', import.meta.url));
// Where the labs and their state live while the bench runs.
export const STATE = '/var/tmp/hostctl-bench';

export type Tool = 'hostctl' | 'ansible';
export type Mode = 'first' | 'rerun' | 'check';

// One lab per tool, so each tool gets its own fresh targets with the same names.
export interface LabSpec {
  tool: Tool;
  stateDir: string;
  bridge: string;
  subnet: string;
}

export interface Scenario {
  hosts: number;
  title: string;
  names: string[];
  images: boolean;
  // What the job installs with apt: fetched through the apt relay before the first runs, so
  // neither tool's first run pays for a cold relay cache.
  packages: string[];
  labs: Record<Tool, LabSpec>;
  command(tool: Tool, inventory: string, mode: Mode): [string, string[]];
  // Files both tools manage, compared by sha256, mode and owner after the runs.
  files: string[];
}

export const authentikVersion = String((parseYaml(readFileSync(join(repo, 'inventory/host_vars/authentik/vars.yml'), 'utf8')) as Record<string, unknown>).authentik_version);

const labSpec = (tool: Tool, n: number): LabSpec => ({ tool, stateDir: join(STATE, `lab${n}`), bridge: `hlbench${n}`, subnet: `10.230.${n}.0/24` });

const hostctlBin = join(repo, 'bin', 'hostctl.js');
export const ansibleEnv = (stateDir: string): Record<string, string> => ({
  ANSIBLE_CONFIG: join(repo, 'bench', 'ansible', 'ansible.cfg'),
  ANSIBLE_SSH_CONTROL_PATH_DIR: join(stateDir, 'cp'),
  // The lab pins each target's host key in its known_hosts; only the lab key is offered.
  ANSIBLE_SSH_COMMON_ARGS: `-o UserKnownHostsFile=${join(stateDir, 'known_hosts')} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes`,
  ANSIBLE_LOCAL_TEMP: join(stateDir, 'ansible-tmp'),
  ANSIBLE_NOCOLOR: '1',
});

// The largest fleet one lab subnet (a /24 beside the lab's own addresses) holds.
export const MAX_HOSTS = 250;

// 1 host: the authentik job; N > 1 hosts: the files + package + unit job on lab1..labN, with
// Ansible's forks = N (its ansible.cfg says 6: the command line wins), as hostctl's --forks.
export function scenarioFor(hosts: number): Scenario {
  if (hosts === 1) return authentik;
  const names = Array.from({ length: hosts }, (_, i) => `lab${i + 1}`);
  return {
    hosts,
    title: `${hosts} hosts: files, a package and a unit (test/fixtures/e2e)`,
    names,
    images: false,
    packages: ['hello'],
    labs: { hostctl: labSpec('hostctl', 3), ansible: labSpec('ansible', 4) },
    command(tool, inventory, mode) {
      const check = mode === 'check' ? ['--check'] : [];
      const forks = ['--forks', String(hosts)];
      return tool === 'hostctl'
        ? ['node', [hostctlBin, 'run', 'test/fixtures/e2e/playbook.ts', '-i', inventory, ...forks, ...check, '--json']]
        : ['ansible-playbook', ['bench/ansible/demo.yml', '-i', inventory, ...forks, ...check]];
    },
    files: ['/srv/demo/index.html', '/etc/systemd/system/hostctl-demo.service', '/srv/demo'],
  };
}

const authentik: Scenario = {
  hosts: 1,
  title: '1 host: the authentik job',
  names: ['authentik'],
  images: true,
  packages: ['ca-certificates', 'curl', 'unattended-upgrades', 'apt-listchanges', 'less', 'openssh-server', 'sudo', 'podman', 'crun', 'netavark', 'aardvark-dns', 'passt'],
  labs: { hostctl: labSpec('hostctl', 1), ansible: labSpec('ansible', 2) },
  command(tool, inventory, mode) {
    const common = ['-i', 'inventory', '-i', inventory, '-e', '@lab/authentik.yml', '--vault-password-file', 'lab/vault-password', ...(mode === 'check' ? ['--check'] : [])];
    return tool === 'hostctl'
      ? ['node', [hostctlBin, 'run', 'playbooks/authentik.ts', ...common, '--json']]
      : ['ansible-playbook', ['bench/ansible/authentik.yml', ...common]];
  },
  files: [
    '/srv/authentik/.env',
    '/etc/containers/systemd/authentik-internal.network',
    '/etc/containers/systemd/authentik-postgresql.container',
    '/etc/containers/systemd/authentik-server.container',
    '/etc/containers/systemd/authentik-worker.container',
    '/etc/apt/apt.conf.d/20auto-upgrades',
    '/etc/systemd/journald.conf.d/50-hostctl.conf',
    '/etc/sysctl.d/60-hostctl-common.conf',
    '/etc/ssh/sshd_config.d/50-hostctl.conf',
    '/etc/sudoers.d/90-hostctl-admin',
    '/home/admin/.ssh/authorized_keys',
    '/usr/local/libexec/hostctl/netavark-dnat-cleanup',
    '/usr/local/libexec/hostctl/authentik-backup',
    '/usr/local/libexec/hostctl/authentik-restore',
    '/etc/systemd/system/authentik-backup.service',
    '/etc/systemd/system/authentik-backup.timer',
    '/srv/authentik', '/srv/authentik/database', '/srv/authentik/media', '/srv/authentik/certs',
    '/srv/authentik/custom-templates', '/srv/authentik/backup', '/home/admin/.ssh',
  ],
};
