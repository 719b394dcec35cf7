// Crash-safe file writes for checkpoints (Node only). A checkpoint is written to a temporary file
// beside the target, flushed to disk, then renamed over the target: a crash or a full disk at any
// point leaves either the old file or the new one, never a torn mix of both.
import { randomBytes } from 'node:crypto';
import { readdirSync, unlinkSync } from 'node:fs';
import { open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** Temporary files of writes in progress: what an abrupt exit must remove (see removeTemporaryFiles). */
const inFlight = new Set<string>();

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
  inFlight.add(tmp);
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
  } finally {
    inFlight.delete(tmp);
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

/**
 * Remove, synchronously, the temporary files of writes still in progress: for a process about to
 * exit at once (a second Ctrl-C). Their targets are untouched (a rename not yet made leaves the
 * old file; one already made has no temporary file left), so nothing is torn and nothing litters.
 */
export function removeTemporaryFiles(): void {
  for (const tmp of inFlight) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already renamed or removed */
    }
  }
  inFlight.clear();
}

/**
 * Remove temporary files left beside `path` by writers that died (killed mid-write): those whose
 * process id is no longer running. A live writer's files are left alone, as is anything else.
 */
export function removeStaleTemporaryFiles(path: string): void {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)-[0-9a-f]+$/.exec(name.slice(prefix.length)) : null;
    if (!m || Number(m[1]) === process.pid || isRunning(Number(m[1]))) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      /* gone already */
    }
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
