// An image folder as the page gets it: from a folder picker (<input webkitdirectory>, each file
// with its path below the picked folder) or dropped (walking the dropped directory's entries,
// which also shows empty class folders). The files go to the worker, which reads them.
import type { PickedFile } from './protocol.ts';

export interface Folder {
  /** The folder's name. */
  root: string;
  /** Files with their paths below the folder (class/…/name). */
  files: PickedFile[];
  /** Folders below it, empty ones included when known. */
  dirs: string[];
}

/** The files of a folder picker: paths are `root/class/…/name`. */
export function pickedFolder(files: File[]): Folder {
  if (!files.length) throw new Error('The picked folder holds no files.');
  const withPath = files.map((file) => ({ file, parts: (file.webkitRelativePath || file.name).split('/') }));
  const root = withPath[0].parts.length > 1 ? withPath[0].parts[0] : 'folder';
  if (withPath.every((f) => f.parts.length < 2)) {
    throw new Error(
      `Pick a folder (with one subfolder per class), not single files: got ${files
        .slice(0, 3)
        .map((f) => f.name)
        .join(', ')}${files.length > 3 ? ', ...' : ''}.`,
    );
  }
  const out = withPath.map(({ file, parts }) => ({ file, path: parts.slice(1).join('/') }));
  const dirs = new Set<string>();
  for (const f of out) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return { root, files: out, dirs: [...dirs] };
}

function readAll(dir: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = dir.createReader();
  const out: FileSystemEntry[] = [];
  // readEntries returns a batch at a time (100 in Chrome) until an empty one.
  return new Promise((resolve, reject) => {
    const next = () =>
      reader.readEntries((batch) => {
        if (!batch.length) return resolve(out);
        out.push(...batch);
        next();
      }, reject);
    next();
  });
}

const fileOf = (e: FileSystemFileEntry) => new Promise<File>((resolve, reject) => e.file(resolve, reject));

/** A dropped folder (one directory item). */
export async function droppedFolder(dt: DataTransfer | null): Promise<Folder> {
  const entries = Array.from(dt?.items ?? [])
    .map((i) => i.webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => !!e);
  const dir = entries.find((e) => e.isDirectory) as FileSystemDirectoryEntry | undefined;
  if (!dir) throw new Error('Drop a folder (with one subfolder of images per class), not files.');
  const files: PickedFile[] = [];
  const dirs: string[] = [];
  const walk = async (d: FileSystemDirectoryEntry, prefix: string) => {
    for (const e of await readAll(d)) {
      const path = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory) {
        dirs.push(path);
        await walk(e as FileSystemDirectoryEntry, path);
      } else files.push({ path, file: await fileOf(e as FileSystemFileEntry) });
    }
  };
  await walk(dir, '');
  return { root: dir.name, files, dirs };
}
