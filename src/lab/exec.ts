import { execa } from 'execa';
import { HostctlError, inputError } from '../core/errors.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string;
  // Callers that probe (does this link exist?) read the exit code themselves.
  allowFail?: boolean;
  timeoutMs?: number;
  hint?: string;
  env?: Record<string, string>;
}

// Every host command of the lab goes through here so a failure always names the command,
// its exit code and the last words it printed, plus what the user can do about it.
export async function exec(file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const r = await execa(file, args, {
    reject: false,
    input: options.input ?? '',
    ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
  const result: ExecResult = {
    code: r.exitCode ?? (r.timedOut ? 124 : 128),
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
  };
  if (result.code !== 0 && !options.allowFail) {
    const said = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' | ');
    throw new HostctlError(
      'internal',
      `${[file, ...args].join(' ')} ${r.timedOut ? 'timed out' : `failed (exit ${result.code})`}${said ? `: ${said}` : ''}`,
      { hint: options.hint ?? 'see the message above; `hostctl lab down` cleans up a half-built lab' },
    );
  }
  return result;
}

// The lab creates namespaces, bridges, mounts and cgroups: all root-only, so say so up front
// instead of failing halfway through with EPERM.
export function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw inputError('the lab needs root (network namespaces, bridges, mounts, cgroups)', {
      hint: 'run `sudo hostctl lab ...`',
    });
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
