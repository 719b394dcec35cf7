// Batches from a split: a seeded order per epoch, and each batch written into caller-owned f32
// arrays ready to upload, with normalisation (uint8 / 255, or per-feature standardisation),
// optional augmentation, labels as f32 class indices and regression targets standardised. Any
// batch of any epoch can be produced on its own, so a resumed run continues exactly.
import { Rng } from '../util/random.ts';
import { augmentChoice, augmentImage, validateAugment, type AugmentOptions } from './augment.ts';
import { sampleSize, targetSize, type Dataset, type Split } from './dataset.ts';
import { mixSeed } from './seed.ts';

/** Options for a Batcher. */
export interface BatcherOptions {
  batchSize: number;
  /** Shuffle every epoch (training); false keeps file order (evaluation). */
  shuffle: boolean;
  /** Seed of the epoch orders and of augmentation. */
  seed: number;
  /** Skip the last batch when it would be short. */
  dropLast?: boolean;
  /** Image augmentation (training only). */
  augment?: AugmentOptions | false;
}

/** Produces the batches of one split of a dataset. */
export class Batcher {
  readonly batchSize: number;
  readonly sampleSize: number;
  readonly targetSize: number;
  private cachedEpoch = -1;
  private cachedOrder: Uint32Array | null = null;
  private readonly scratch: Float32Array;

  constructor(
    readonly split: Split,
    readonly dataset: Dataset,
    readonly opts: BatcherOptions,
  ) {
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) throw new Error(`batchSize must be a positive integer, got ${opts.batchSize}`);
    this.batchSize = opts.batchSize;
    this.sampleSize = sampleSize(dataset);
    this.targetSize = targetSize(dataset);
    this.scratch = new Float32Array(this.sampleSize);
    if (opts.augment) validateAugment(opts.augment, dataset.inputShape);
    this.validate();
  }

  private get splitName(): string {
    const which = this.split === this.dataset.train ? 'train' : this.split === this.dataset.test ? 'test' : 'split';
    return `${this.dataset.name} ${which}`;
  }

  /** Sizes match the dataset, and every class label is an integer in [0, numClasses). */
  private validate(): void {
    const { split, dataset } = this;
    if (split.x.length !== split.n * this.sampleSize) {
      throw new Error(`${this.splitName}: x has ${split.x.length} values, expected n * sampleSize = ${split.n} * ${this.sampleSize}`);
    }
    if (split.y.length !== split.n * this.targetSize) {
      throw new Error(`${this.splitName}: y has ${split.y.length} values, expected n * targetSize = ${split.n} * ${this.targetSize}`);
    }
    const norm = dataset.normalization;
    if (norm.kind === 'scale255' && !(split.x instanceof Uint8Array)) throw new Error(`${this.splitName}: scale255 normalisation needs uint8 pixels`);
    if (norm.kind === 'standardize' && (norm.mean.length !== this.sampleSize || norm.std.length !== this.sampleSize)) {
      throw new Error(`${this.splitName}: standardisation has ${norm.mean.length} means and ${norm.std.length} stds for ${this.sampleSize} features`);
    }
    if (dataset.task === 'classification') {
      for (let i = 0; i < split.n; i++) {
        const c = split.y[i];
        if (!(Number.isInteger(c) && c >= 0 && c < dataset.numClasses)) {
          throw new Error(`${this.splitName}: label ${c} of sample ${i} is out of range [0, ${dataset.numClasses})`);
        }
      }
    }
  }

  /** Batches per epoch: the last one may be short unless dropLast. */
  get numBatches(): number {
    const n = this.split.n;
    return this.opts.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The sample order of an epoch: a function of (seed, epoch) only, so a resume can recreate it. */
  epochOrder(epoch: number): Uint32Array {
    return this.order(epoch).slice();
  }

  private order(epoch: number): Uint32Array {
    if (this.cachedEpoch !== epoch || !this.cachedOrder) {
      const order = new Uint32Array(this.split.n);
      for (let i = 0; i < order.length; i++) order[i] = i;
      if (this.opts.shuffle) new Rng(mixSeed(this.opts.seed, epoch)).shuffle(order);
      this.cachedOrder = order;
      this.cachedEpoch = epoch;
    }
    return this.cachedOrder;
  }

  /** Sample indices of one batch (a view into the epoch order; do not modify). */
  batchIndices(epoch: number, batchIndex: number): Uint32Array {
    if (!(Number.isInteger(batchIndex) && batchIndex >= 0 && batchIndex < this.numBatches)) {
      throw new Error(`${this.splitName}: batch ${batchIndex} out of range [0, ${this.numBatches})`);
    }
    const start = batchIndex * this.batchSize;
    return this.order(epoch).subarray(start, Math.min(start + this.batchSize, this.split.n));
  }

  /**
   * Write batch `batchIndex` of `epoch` into xOut (count * sampleSize model inputs) and yOut
   * (count class indices, or count * targetSize standardised targets). Returns count, the actual
   * batch size; entries past it are left as they were.
   */
  fill(epoch: number, batchIndex: number, xOut: Float32Array, yOut: Float32Array): number {
    const idx = this.batchIndices(epoch, batchIndex);
    const S = this.sampleSize;
    const T = this.targetSize;
    if (xOut.length < idx.length * S) throw new Error(`xOut holds ${xOut.length} values, batch needs ${idx.length} * ${S}`);
    if (yOut.length < idx.length * T) throw new Error(`yOut holds ${yOut.length} values, batch needs ${idx.length} * ${T}`);
    for (let b = 0; b < idx.length; b++) {
      this.fillSample(epoch, idx[b], xOut.subarray(b * S, (b + 1) * S));
      this.fillTarget(idx[b], yOut.subarray(b * T, (b + 1) * T));
    }
    return idx.length;
  }

  private fillSample(epoch: number, i: number, out: Float32Array): void {
    const S = this.sampleSize;
    const src = this.split.x.subarray(i * S, (i + 1) * S);
    const norm = this.dataset.normalization;
    if (this.opts.augment) {
      const choice = augmentChoice(this.opts.augment, this.opts.seed, epoch, i);
      augmentImage(src, out, this.dataset.inputShape, choice, this.scratch);
    } else {
      out.set(src);
    }
    // Normalising after the crop keeps its zero padding at 0 (black for scale255 images).
    if (norm.kind === 'scale255') {
      for (let k = 0; k < S; k++) out[k] = out[k] / 255;
    } else {
      for (let k = 0; k < S; k++) out[k] = (out[k] - norm.mean[k]) / norm.std[k];
    }
  }

  private fillTarget(i: number, out: Float32Array): void {
    const T = this.targetSize;
    const tn = this.dataset.targetNormalization;
    for (let t = 0; t < T; t++) {
      const v = this.split.y[i * T + t];
      out[t] = this.dataset.task === 'regression' && tn ? (v - tn.mean[t]) / tn.std[t] : v;
    }
  }
}
