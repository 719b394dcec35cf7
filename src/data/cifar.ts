// CIFAR-10 binary batches, parsed from bytes (browser file picker or Node). Each record is one
// label byte followed by 3072 pixel bytes in CHW order (1024 red, 1024 green, 1024 blue, each
// 32x32 row-major), which is already the per-sample NCHW layout the models use.
import { DataError, type Dataset, type Split } from './dataset.ts';
import type { NamedBytes } from './idx.ts';

export const CIFAR10_SHAPE = [3, 32, 32];
export const CIFAR10_PIXELS = 3 * 32 * 32;
export const CIFAR10_RECORD = 1 + CIFAR10_PIXELS;
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** Parse one CIFAR-10 binary batch: length must be a whole number of 3073-byte records, labels 0..9. */
export function parseCifarBatch(bytes: Uint8Array, fileLabel: string): Split {
  if (bytes.length === 0) throw new DataError(fileLabel, 'file is empty', { offset: 0 });
  const partial = bytes.length % CIFAR10_RECORD;
  if (partial !== 0) {
    const at = bytes.length - partial;
    throw new DataError(fileLabel, `partial record: ${bytes.length} bytes is not a multiple of the ${CIFAR10_RECORD}-byte record; the last record starts here and has only ${partial} bytes`, { offset: at });
  }
  const n = bytes.length / CIFAR10_RECORD;
  const x = new Uint8Array(n * CIFAR10_PIXELS);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const at = i * CIFAR10_RECORD;
    const label = bytes[at];
    if (label > 9) throw new DataError(fileLabel, `label ${label} of record ${i} is out of range [0, 10)`, { offset: at });
    y[i] = label;
    x.set(bytes.subarray(at + 1, at + CIFAR10_RECORD), i * CIFAR10_PIXELS);
  }
  return { n, x, y };
}

/** Concatenate splits with the same sample size, in order. */
export function concatSplits(splits: Split[], sampleSize: number): Split {
  const n = splits.reduce((a, s) => a + s.n, 0);
  const x = new Uint8Array(n * sampleSize);
  const y = new Uint8Array(n);
  let at = 0;
  for (const s of splits) {
    x.set(s.x as Uint8Array, at * sampleSize);
    y.set(s.y as Uint8Array, at);
    at += s.n;
  }
  return { n, x, y };
}

/** Class names from `batches.meta.txt`: one per non-empty line, exactly 10. */
export function parseCifarClassNames(text: string, fileLabel: string): string[] {
  const names = text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== 10) throw new DataError(fileLabel, `expected 10 class names (one per line), found ${names.length}`);
  return names;
}

/**
 * CIFAR-10 from its binary batches: the given training batches concatenated in order, and the test
 * batch. `meta` (batches.meta.txt), when given, supplies the class names.
 */
export function cifar10Dataset(trainBatches: NamedBytes[], testBatch: NamedBytes, meta?: { label: string; text: string }, source?: string): Dataset {
  if (trainBatches.length === 0) throw new Error('CIFAR-10: no training batches given');
  const train = concatSplits(
    trainBatches.map((b) => parseCifarBatch(b.bytes, b.label)),
    CIFAR10_PIXELS,
  );
  const test = parseCifarBatch(testBatch.bytes, testBatch.label);
  return {
    name: 'cifar10',
    task: 'classification',
    inputShape: CIFAR10_SHAPE.slice(),
    numClasses: 10,
    classNames: meta ? parseCifarClassNames(meta.text, meta.label) : CIFAR10_CLASSES.slice(),
    train,
    test,
    normalization: { kind: 'scale255' },
    source,
  };
}

/** Encode a CIFAR-10 binary batch (for tests and for exporting data): `x` is n * 3072 CHW pixels. */
export function encodeCifarBatch(x: Uint8Array, y: ArrayLike<number>): Uint8Array {
  const n = y.length;
  const out = new Uint8Array(n * CIFAR10_RECORD);
  for (let i = 0; i < n; i++) {
    out[i * CIFAR10_RECORD] = y[i];
    out.set(x.subarray(i * CIFAR10_PIXELS, (i + 1) * CIFAR10_PIXELS), i * CIFAR10_RECORD + 1);
  }
  return out;
}
