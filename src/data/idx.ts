// IDX files (MNIST, Fashion-MNIST, EMNIST): parsed from bytes so that the browser can use them on
// a picked file as well as Node on a file read from disk. Gzipped files are recognised by their
// magic number and inflated with fflate. Every check names the file and the byte offset.
import { gunzipSync } from 'fflate';
import { DataError, type Dataset, type Split } from './dataset.ts';

/** IDX magic: two zero bytes, the element type, the number of dimensions. */
export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
const IDX_UBYTE = 0x08;

/** A parsed IDX file: its dimensions and its uint8 elements, row-major. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** A named byte buffer: the label is what error messages call the file. */
export interface NamedBytes {
  label: string;
  bytes: Uint8Array;
}

/** True when the bytes start with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Inflate gzip bytes, or return them unchanged if they are not gzip; a corrupt stream names the file. */
export function maybeGunzip(bytes: Uint8Array, fileLabel: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (e) {
    throw new DataError(fileLabel, `gzip data is corrupt or truncated (${(e as Error).message})`);
  }
}

/**
 * Parse an IDX file of unsigned bytes (gzipped or not). `kind` checks the magic number exactly:
 * 0x00000803 for images, 0x00000801 for labels. Offsets in errors are into the decompressed bytes.
 */
export function parseIdx(bytes: Uint8Array, fileLabel: string, kind?: 'images' | 'labels'): IdxArray {
  const gz = isGzip(bytes);
  const raw = maybeGunzip(bytes, fileLabel);
  const label = gz ? `${fileLabel} (decompressed)` : fileLabel;
  const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
  if (raw.length < 4) throw new DataError(label, `file is ${raw.length} bytes, too short for the 4-byte IDX magic number`, { offset: raw.length });
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const magic = view.getUint32(0, false);
  if (raw[0] !== 0 || raw[1] !== 0) {
    throw new DataError(label, `not an IDX file: magic number ${hex(magic)} should start with two zero bytes`, { offset: 0 });
  }
  if (raw[2] !== IDX_UBYTE) {
    throw new DataError(label, `IDX element type 0x${raw[2].toString(16).padStart(2, '0')} is not supported (only unsigned byte, 0x08)`, { offset: 2 });
  }
  const ndims = raw[3];
  if (kind) {
    const want = kind === 'images' ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC;
    if (magic !== want) {
      throw new DataError(label, `magic number ${hex(magic)} is not that of an IDX ${kind} file (${hex(want)}): ${ndims} dimensions`, { offset: 0 });
    }
  }
  if (ndims < 1) throw new DataError(label, 'IDX file declares 0 dimensions', { offset: 3 });
  const headerSize = 4 + 4 * ndims;
  if (raw.length < headerSize) {
    throw new DataError(label, `header of ${ndims} dimensions needs ${headerSize} bytes, file has ${raw.length}`, { offset: raw.length });
  }
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = headerSize + count;
  if (raw.length < expected) {
    throw new DataError(label, `truncated: dimensions [${dims.join(', ')}] need ${headerSize} + ${count} = ${expected} bytes, file has ${raw.length} (data ends early)`, { offset: raw.length });
  }
  if (raw.length > expected) {
    throw new DataError(label, `${raw.length - expected} unexpected bytes after the data: dimensions [${dims.join(', ')}] need ${expected} bytes, file has ${raw.length}`, { offset: expected });
  }
  return { dims, data: raw.subarray(headerSize, expected) };
}

/** A split and its per-sample shape [1, rows, cols], from an images file and a labels file. */
export interface IdxSplit {
  split: Split;
  inputShape: number[];
}

/**
 * Parse an IDX images/labels pair into a split: the image count must equal the label count, and
 * every label must be below `numClasses`.
 */
export function parseIdxPair(images: NamedBytes, labels: NamedBytes, numClasses = 10): IdxSplit {
  const img = parseIdx(images.bytes, images.label, 'images');
  const lab = parseIdx(labels.bytes, labels.label, 'labels');
  if (img.dims.length !== 3) throw new DataError(images.label, `images file has ${img.dims.length} dimensions, expected 3 [n, rows, cols]`, { offset: 3 });
  const [n, rows, cols] = img.dims;
  if (lab.dims[0] !== n) {
    throw new DataError(labels.label, `${lab.dims[0]} labels but ${images.label} has ${n} images`, { offset: 4 });
  }
  const header = 8; // labels: magic + one dimension
  for (let i = 0; i < n; i++) {
    if (lab.data[i] >= numClasses) {
      throw new DataError(labels.label, `label ${lab.data[i]} of sample ${i} is out of range [0, ${numClasses})`, { offset: header + i });
    }
  }
  return { split: { n, x: img.data, y: lab.data }, inputShape: [1, rows, cols] };
}

/** The four files of an IDX dataset. */
export interface IdxFiles {
  trainImages: NamedBytes;
  trainLabels: NamedBytes;
  testImages: NamedBytes;
  testLabels: NamedBytes;
}

/** Options for an IDX dataset. */
export interface IdxDatasetOptions {
  /** Number of classes; labels must be below it (default 10; EMNIST balanced has 47). */
  numClasses?: number;
  classNames?: string[];
  source?: string;
}

/** Build a classification dataset from the four IDX files; train and test images must have the same size. */
export function idxDataset(name: string, files: IdxFiles, opts: IdxDatasetOptions = {}): Dataset {
  const numClasses = opts.numClasses ?? opts.classNames?.length ?? 10;
  if (opts.classNames && opts.classNames.length !== numClasses) {
    throw new Error(`${name}: ${opts.classNames.length} class names given for ${numClasses} classes`);
  }
  const train = parseIdxPair(files.trainImages, files.trainLabels, numClasses);
  const test = parseIdxPair(files.testImages, files.testLabels, numClasses);
  if (train.inputShape.join() !== test.inputShape.join()) {
    throw new DataError(files.testImages.label, `images are ${test.inputShape.slice(1).join('x')} but ${files.trainImages.label} has ${train.inputShape.slice(1).join('x')}`, { offset: 8 });
  }
  return {
    name,
    task: 'classification',
    inputShape: train.inputShape,
    numClasses,
    classNames: opts.classNames,
    train: train.split,
    test: test.split,
    normalization: { kind: 'scale255' },
    source: opts.source,
  };
}

/** Encode an IDX file of unsigned bytes (for tests and for exporting data). */
export function encodeIdx(dims: number[], data: ArrayLike<number>): Uint8Array {
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x00000800 | dims.length, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, header);
  return out;
}
