// Image folders in Node: list the folder, read each file, decode PNG with pngjs and JPEG with
// jpeg-js (pure JavaScript, installed from npm alone), and hand them to ImageFolderReader, which
// resizes, splits and names every file it skips.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { DataError, type Dataset } from './dataset.ts';
import { ImageFileError, type ImageHeader, type RgbaImage } from './image-file.ts';
import { formatImageFolderReport, ImageFolderReader, sortImageFolder, type FolderContents, type ImageFolderOptions, type ImageFolderReport } from './image-folder.ts';

/** Files and folders under `root`, relative and '/'-separated; symbolic links are followed. */
export function listFolder(root: string): FolderContents {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = (rel: string) => {
    let entries: string[];
    try {
      entries = readdirSync(rel ? join(root, rel) : root);
    } catch (e) {
      throw new DataError(rel ? `${root}/${rel}` : root, `cannot list directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    for (const name of entries) {
      const path = rel ? `${rel}/${name}` : name;
      let dir = false;
      try {
        dir = statSync(join(root, path)).isDirectory();
      } catch {
        // A dangling link is listed as a file; reading it then names it.
      }
      if (dir) {
        dirs.push(path);
        walk(path);
      } else files.push(path);
    }
  };
  walk('');
  return { files, dirs };
}

/** Decode a PNG or JPEG to 8-bit RGBA (16-bit PNGs are reduced to 8 bits by pngjs). */
export function decodeImage(bytes: Uint8Array, header: ImageHeader): RgbaImage {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (header.format === 'png') {
    const png = PNG.sync.read(buf);
    return { width: png.width, height: png.height, rgba: png.data };
  }
  // jpeg-js refuses images above maxResolutionInMP (100 by default): such a file is named, not read.
  const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true });
  if (!img.width || !img.height) throw new ImageFileError('the JPEG decoder found no image data');
  return { width: img.width, height: img.height, rgba: img.data };
}

/**
 * An image folder as a dataset, with the report of what was read and skipped. `log` gets the
 * report's lines (skipped files with reasons, notes); `onProgress` the files read so far.
 */
export function readImageFolder(root: string, opts: ImageFolderOptions & { onProgress?: (done: number, total: number) => void } = {}): { dataset: Dataset; report: ImageFolderReport } {
  const listing = sortImageFolder(root, listFolder(root));
  const reader = new ImageFolderReader(root, listing, opts);
  reader.files.forEach(({ file }, i) => {
    let bytes: Uint8Array;
    try {
      const buf = readFileSync(join(root, file));
      bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      reader.reject(i, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      return;
    }
    reader.readSync(i, bytes, decodeImage);
    opts.onProgress?.(i + 1, reader.files.length);
  });
  return reader.finish();
}

/** An image folder as a dataset; the report's lines go to `log` (default stderr). */
export function loadImageFolder(root: string, opts: ImageFolderOptions & { log?: (msg: string) => void } = {}): Dataset {
  const { dataset, report } = readImageFolder(root, opts);
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  for (const line of formatImageFolderReport(report)) log(line);
  return dataset;
}
