// The shape every data source is brought into: a named dataset with fixed train and test splits,
// the per-sample input shape, and how raw stored values become model inputs. Parsers produce it,
// the Batcher consumes it. Also the error type every reader throws, so that a bad file is always
// reported by its name and the byte offset or line where it goes wrong.

/** One split of a dataset: `n` samples stored flat, sample-major. */
export interface Split {
  n: number;
  /** uint8 pixels (images stay uint8 until batched) or f32 features, n * sampleSize values */
  x: Uint8Array | Float32Array;
  /** classification: class indices; regression: f32 targets (n * targetSize) */
  y: Uint8Array | Int32Array | Float32Array;
}

/** How stored x values become model inputs. */
export type Normalization = { kind: 'scale255' } | { kind: 'standardize'; mean: number[]; std: number[] };

/** A dataset with fixed train and test splits. */
export interface Dataset {
  name: string;
  task: 'classification' | 'regression';
  /** per-sample input shape: images NCHW per sample [C, H, W] (MNIST [1,28,28], CIFAR [3,32,32]); tabular [F] */
  inputShape: number[];
  /** classification: number of classes; regression: the target size (1 for one target column) */
  numClasses: number;
  classNames?: string[];
  /** tabular: the feature column names, in input order */
  featureNames?: string[];
  /** tabular: the target column's name */
  targetName?: string;
  train: Split;
  test: Split;
  /** how x values become model inputs: uint8 -> value/255 for images; tabular: (v - mean)/std with train stats */
  normalization: Normalization;
  /** regression: target standardisation stats from train, so the model trains on unit-scale targets (and predictions can be mapped back) */
  targetNormalization?: { mean: number[]; std: number[] };
  /** Where the data came from and how it was split, for logs and reports. */
  source?: string;
}

/** Values per sample: the product of `inputShape`. */
export function sampleSize(ds: Pick<Dataset, 'inputShape'>): number {
  return ds.inputShape.reduce((a, b) => a * b, 1);
}

/** Target values per sample: 1 class index for classification, `numClasses` values for regression. */
export function targetSize(ds: Pick<Dataset, 'task' | 'numClasses'>): number {
  return ds.task === 'classification' ? 1 : ds.numClasses;
}

/** Where in a file a problem is: a byte offset (binary formats) or a line and column (text). */
export interface DataErrorLocation {
  offset?: number;
  line?: number;
  column?: string;
}

/**
 * A malformed or missing data file. The message always starts with the file, then the location:
 * `train-labels-idx1-ubyte.gz: byte offset 8: label 12 is out of range [0, 10)`.
 */
export class DataError extends Error {
  readonly file: string;
  readonly location: DataErrorLocation;

  constructor(file: string, message: string, location: DataErrorLocation = {}) {
    const where: string[] = [];
    if (location.offset !== undefined) where.push(`byte offset ${location.offset}`);
    if (location.line !== undefined) where.push(`line ${location.line}`);
    if (location.column !== undefined) where.push(`column "${location.column}"`);
    super(`${file}: ${where.length ? `${where.join(', ')}: ` : ''}${message}`);
    this.name = 'DataError';
    this.file = file;
    this.location = location;
  }
}

/** Map standardised regression outputs back to target units (in place); a no-op without targetNormalization. */
export function unstandardizeTargets(ds: Pick<Dataset, 'targetNormalization'>, values: Float32Array): Float32Array {
  const tn = ds.targetNormalization;
  if (!tn) return values;
  const t = tn.mean.length;
  for (let i = 0; i < values.length; i++) values[i] = values[i] * tn.std[i % t] + tn.mean[i % t];
  return values;
}

/** Mean and standard deviation (population) of each of `width` interleaved columns; std 0 becomes 1. */
export function columnStats(values: ArrayLike<number>, n: number, width: number): { mean: number[]; std: number[] } {
  const mean = new Array<number>(width).fill(0);
  const sq = new Array<number>(width).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < width; j++) mean[j] += values[i * width + j];
  for (let j = 0; j < width; j++) mean[j] = n ? mean[j] / n : 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < width; j++) {
      const d = values[i * width + j] - mean[j];
      sq[j] += d * d;
    }
  }
  // A constant column carries no information; dividing by 1 keeps it at 0 instead of NaN.
  const std = sq.map((s) => (n && s > 0 ? Math.sqrt(s / n) : 1));
  return { mean, std };
}
