import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options } from 'execa';

export const repo = fileURLToPath(new URL('../../', import.meta.url));
export const fixture = (...parts: string[]) => join(repo, 'test', 'fixtures', ...parts);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

// The real CLI in a child process, as a user runs it (the compiled bin).
export async function hostctl(args: string[], options: Options = {}): Promise<CliResult> {
  const r = await execa('node', [join(repo, 'bin', 'hostctl.js'), ...args], {
    reject: false,
    cwd: repo,
    env: { NO_COLOR: '1', ...(options.env ?? {}) },
    ...options,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function tempDir(prefix = 'hostctl-test-'): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, [Symbol.asyncDispose]: () => rm(path, { recursive: true, force: true }) };
}

// JSON events of a --json run.
export const events = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
