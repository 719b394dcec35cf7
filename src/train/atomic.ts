// Crash-safe file writes for checkpoints (Node only). A checkpoint is written to a temporary file
// beside the target, flushed to disk, then renamed over the target: a crash or a full disk at any
// point leaves either the old file or the new one, never a torn mix of both.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** The temporary name used while writing `path`: hidden, in the same directory (so rename is atomic). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/**
 * Write `bytes` to `path` atomically: write a temporary file in the same directory, fsync it,
 * rename it over `path`, then fsync the directory so the rename itself is durable. The existing
 * file is not touched before the rename. On any error the temporary file is removed and the error
 * is rethrown with the path in its message (the original error is its `cause`).
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = tempPathFor(path);
  let handle: FileHandle | null = null;
  let step = 'create a temporary file for';
  try {
    handle = await open(tmp, 'wx');
    step = 'write';
    await handle.writeFile(bytes);
    step = 'flush';
    await handle.sync();
    await handle.close();
    handle = null;
    step = 'rename the temporary file over';
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw new Error(`Could not ${step} ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    await syncDirectory(dirname(path));
  } catch (err) {
    throw new Error(`Wrote ${path}, but could not flush its directory, so the rename may not survive a power loss: ${(err as Error).message}`, { cause: err });
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory as a file; its rename is durable without this step.
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Read a whole file. Says plainly when the file does not exist or is a directory, giving the
 * path as passed and as resolved; other errors are rethrown with the path in the message.
 */
export async function readFileChecked(path: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = resolve(path) === path ? path : `${path} (${resolve(path)})`;
    if (code === 'ENOENT') throw new Error(`No such file: ${where}`, { cause: err });
    if (code === 'EISDIR') throw new Error(`Expected a file but found a directory: ${where}`, { cause: err });
    throw new Error(`Could not read ${where}: ${(err as Error).message}`, { cause: err });
  }
}
