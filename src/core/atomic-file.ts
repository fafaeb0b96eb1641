import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { inputError, type HostctlError } from './errors.js';

// Replace (or create) a file atomically: a temp file beside it, fsync, rename, fsync the
// directory. An existing file keeps its mode (and owner, when we may set it); a new one gets
// `mode` (default 0600: what is written here is often a secret). Symlinks are followed, so the
// link stays a link.
export async function writeFileAtomic(path: string, data: string | Buffer, options: { mode?: number } = {}): Promise<void> {
  let target = path;
  let previous: { mode: number; uid: number; gid: number } | undefined;
  try {
    target = await realpath(path);
    const info = await stat(target);
    previous = { mode: info.mode & 0o7777, uid: info.uid, gid: info.gid };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError('cannot read', path, error);
  }
  const dir = dirname(target);
  const temp = join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const mode = previous?.mode ?? options.mode ?? 0o600;
  let handle;
  try {
    handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    await handle.writeFile(data);
    await handle.chmod(mode);
    if (previous && (previous.uid !== process.getuid?.() || previous.gid !== process.getgid?.())) {
      await handle.chown(previous.uid, previous.gid).catch(() => undefined);
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, target);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw fileError('cannot write', path, error);
  }
  const dirHandle = await open(dir, constants.O_RDONLY).catch(() => undefined);
  if (dirHandle) {
    await dirHandle.sync().catch(() => undefined);
    await dirHandle.close();
  }
}

function fileError(what: string, path: string, error: unknown): HostctlError {
  const code = (error as NodeJS.ErrnoException).code;
  return inputError(`${what} the file: ${code ?? (error as Error).message}`, { where: path, cause: error });
}
