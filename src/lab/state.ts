import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HostctlError } from '../core/errors.js';
import type { LabConfig } from './options.js';
import type { ProcessRecord } from './process.js';

// Where each thing a lab owns lives inside its state dir; one place so down removes exactly
// what up made.
export function statePaths(stateDir: string) {
  return {
    config: join(stateDir, 'lab.json'),
    key: join(stateDir, 'id_ed25519'),
    inventory: join(stateDir, 'inventory.yml'),
    knownHosts: join(stateDir, 'known_hosts'),
    run: join(stateDir, 'run'),
    relayDir: join(stateDir, 'relay'),
    targetsDir: join(stateDir, 'targets'),
  };
}

export function targetPaths(stateDir: string, name: string) {
  const dir = join(stateDir, 'targets', name);
  return {
    dir,
    root: join(dir, 'root'),
    upper: join(dir, 'upper'),
    work: join(dir, 'work'),
    // A plain directory: podman's overlay storage cannot sit on the overlayfs root.
    containers: join(dir, 'containers'),
    bootScript: join(dir, 'boot.sh'),
    log: join(dir, 'console.log'),
    pid: join(stateDir, 'run', `${name}.json`),
  };
}

// Written through a temp file and rename so a crash never leaves half a JSON file behind.
export async function writeFileAtomic(path: string, data: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

export async function loadConfig(stateDir: string): Promise<LabConfig | undefined> {
  const path = statePaths(stateDir).config;
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LabConfig;
  } catch (cause) {
    throw new HostctlError('input', `cannot read ${path}`, { cause, hint: 'remove the state dir by hand if no lab is running from it' });
  }
}

export const saveConfig = (config: LabConfig) =>
  writeFileAtomic(statePaths(config.stateDir).config, JSON.stringify(config, null, 2) + '\n');

export async function loadPid(path: string): Promise<ProcessRecord | undefined> {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as ProcessRecord;
  } catch {
    return undefined;
  }
}

export const savePid = (path: string, record: ProcessRecord) => writeFileAtomic(path, JSON.stringify(record) + '\n');

export const removeFile = (path: string) => rm(path, { force: true });
