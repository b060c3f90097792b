import { constants } from 'node:fs';
import { access, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, parse, resolve, sep } from 'node:path';
import { RuntimeError, UsageError } from './errors.ts';

/**
 * Paths the operator gives (`--backup-dir`, `--log-file`, `--metrics-file`): checked before anything is
 * written, each problem one line naming the path and the reason in words, never a raw errno or a hang.
 */

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'it is a directory',
  ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exhausted',
  EEXIST: 'it already exists',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  EIO: 'an input/output error on the device',
};

/** What went wrong with a file operation, as a person says it. */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return (code && REASONS[code]) ?? (error as Error).message ?? String(error);
}

/** Whether a write failed because the device is full (or the quota is). */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** What a path is when it is not a regular file, in words. */
function kindOf(info: import('node:fs').Stats): string {
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  if (info.isDirectory()) return 'a directory';
  return 'not a regular file';
}

/**
 * Reads a file the tool was pointed at (a config, an import, a manifest, a backup file) after checking it is
 * a regular file: a FIFO would block the read for ever, a device never end, a socket fail obscurely. Anything
 * else is one line naming the path (`what` says which input it is) and what it is.
 */
export async function readRegularFile(path: string, what: string): Promise<Buffer> {
  let info: import('node:fs').Stats;
  try {
    info = await stat(path);
  } catch (error) {
    throw new UsageError(`${what} ${path}: cannot read it (${describeFsError(error)})`);
  }
  if (!info.isFile()) throw new UsageError(`${what} ${path}: is ${kindOf(info)}, not a regular file`);
  try {
    return await readFile(path);
  } catch (error) {
    throw new UsageError(`${what} ${path}: cannot read it (${describeFsError(error)})`);
  }
}

/** Kernel pseudo file systems: writes there do not store anything, and recursive mkdir can spin for ever. */
function pseudoFileSystem(path: string): boolean {
  return /^\/(proc|sys|dev)(\/|$)/.test(path);
}

/**
 * Creates a directory and its missing parents one level at a time (bounded by the path's depth: Node's
 * recursive mkdir loops for ever under /proc), then checks it is writable. Problems are usage errors.
 */
export async function ensureWritableDir(
  path: string,
  flag: string,
  mode = 0o700,
  /** The path as the operator gave it, when this directory is only its parent. */
  given = path,
): Promise<string> {
  const absolute = resolve(path);
  const fail = (reason: string) => new UsageError(`${flag} ${given}: ${reason}`);
  if (pseudoFileSystem(absolute))
    throw fail('is on a kernel pseudo file system (/proc, /sys, /dev), not storage');
  const { root } = parse(absolute);
  let current = root;
  for (const part of absolute.slice(root.length).split(sep).filter(Boolean)) {
    current = current === root ? `${root}${part}` : `${current}${sep}${part}`;
    const info = await stat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw fail(`${current}: ${describeFsError(error)}`);
    });
    if (info && !info.isDirectory()) throw fail(`${current} is a file, not a directory`);
    if (!info)
      await mkdir(current, { mode }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw fail(`cannot create ${current}: ${describeFsError(error)}`);
      });
  }
  await access(absolute, constants.W_OK).catch((error) => {
    throw fail(`not writable: ${describeFsError(error)}`);
  });
  return absolute;
}

/** Checks a file the tool will write (or append to): not a directory, its directory created and writable. */
export async function ensureWritableFile(path: string, flag: string): Promise<string> {
  const absolute = resolve(path);
  if (pseudoFileSystem(absolute))
    throw new UsageError(
      `${flag} ${path}: is on a kernel pseudo file system (/proc, /sys, /dev), not storage`,
    );
  const info = await stat(absolute).catch(() => undefined);
  if (info?.isDirectory()) throw new UsageError(`${flag} ${path}: it is a directory, not a file`);
  if (info && !info.isFile()) throw new UsageError(`${flag} ${path}: not a regular file`);
  await ensureWritableDir(dirname(absolute), flag, 0o755, path);
  if (info)
    await access(absolute, constants.W_OK).catch((error) => {
      throw new UsageError(`${flag} ${path}: not writable: ${describeFsError(error)}`);
    });
  return absolute;
}

/** Removes a temporary file left by a failed write; a file already gone is fine. */
export async function removeTemporary(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
}

/** A write that failed at run time, named by its path and the reason in words. */
export function writeFailure(path: string, error: unknown): RuntimeError {
  return new RuntimeError(`cannot write ${path}: ${describeFsError(error)}`);
}
