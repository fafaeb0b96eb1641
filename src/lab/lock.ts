import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive, recordOf, waitUntil } from './process.js';

// Two labs may build the same cached rootfs or base image at once: a mkdir lock holding its
// owner's pid and start time keeps them from doing it twice, and a dead owner's lock is
// taken over.
export async function withLock<T>(lock: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = await readFile(join(lock, 'owner'), 'utf8').then((t) => JSON.parse(t), () => undefined);
      if (owner && (await isAlive(owner))) await waitUntil(async () => !existsSync(lock), waitMs, 500);
      else await rm(lock, { recursive: true, force: true });
    }
  }
  try {
    await writeFile(join(lock, 'owner'), JSON.stringify(await recordOf(process.pid)));
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}
