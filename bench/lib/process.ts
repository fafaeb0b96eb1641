import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { repo } from './scenarios.js';

// Child processes of the bench: spawned in their own group, timed, their tree's memory sampled
// from /proc while they run.

export const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

// The running child's process group, killed on Ctrl-C before the labs go down.
let running: number | undefined;
export const runningGroup = () => running;

export interface Spawned {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  peakTreeRssKb: number;
  // Open file descriptors of the whole tree, peak of the same samples.
  peakTreeFds: number;
}

// Descendants of pid (itself included), through /proc/<pid>/task/<tid>/children.
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        const kids = readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}

const rssKb = (pid: number): number => {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

const fdCount = (pid: number): number => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
};

// A child in its own process group; while it runs, the RSS and open file descriptors of its
// whole tree are summed every 100 ms (pages that forked workers share with their parent count once per process: an upper
// bound; GNU time's maximum RSS of the largest process is the lower one).
export function run(file: string, args: string[], env: Record<string, string> = {}, timeoutMs = 1_800_000): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { cwd: repo, env: { ...process.env, NO_COLOR: '1', ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    running = child.pid;
    let stdout = '';
    let stderr = '';
    let peakTreeRssKb = 0;
    let peakTreeFds = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const sampler = setInterval(() => {
      if (child.pid === undefined) return;
      const tree = processTree(child.pid);
      peakTreeRssKb = Math.max(peakTreeRssKb, tree.reduce((sum, p) => sum + rssKb(p), 0));
      peakTreeFds = Math.max(peakTreeFds, tree.reduce((sum, p) => sum + fdCount(p), 0));
    }, 100);
    const timer = setTimeout(() => child.pid && process.kill(-child.pid, 'SIGTERM'), timeoutMs);
    child.on('error', (e) => {
      clearInterval(sampler);
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearInterval(sampler);
      clearTimeout(timer);
      running = undefined;
      resolve({ code: code ?? -1, stdout, stderr, ms: performance.now() - started, peakTreeRssKb, peakTreeFds });
    });
  });
}

export async function output(file: string, args: string[]): Promise<string> {
  const r = await run(file, args, {}, 60_000).catch(() => undefined);
  return r && r.code === 0 ? r.stdout.trim() : '';
}
