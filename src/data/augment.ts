// Image augmentation on the way to the GPU: a random crop of the zero-padded image (a shift by up
// to `pad` pixels each way, the uncovered border filled with zeros) and a random horizontal flip.
// The choice for a sample depends only on (seed, epoch, sample index), so a resumed run sees the
// same augmented images. Training only; evaluation batches are never augmented.
import { Rng } from '../util/random.ts';
import { mixSeed } from './seed.ts';

/** Augmentation settings for image datasets. */
export interface AugmentOptions {
  /** Zero padding for the random crop: shifts of -pad..pad pixels in each direction (0: no crop). */
  pad?: number;
  /** Mirror left-right with probability 1/2. */
  flip?: boolean;
}

/** What was done to one sample. */
export interface AugmentChoice {
  /** Row shift: output row y shows input row y + dy. */
  dy: number;
  /** Column shift: output column x shows input column x + dx. */
  dx: number;
  flip: boolean;
}

type Pixels = ArrayLike<number>;
type Out = { [i: number]: number; length: number };

/**
 * Crop an H x W window from the image zero-padded by |offset|: out[c, y, x] = src[c, y + dy, x + dx],
 * 0 where that falls outside. Offsets (0, 0) give the original image. `src` and `out` are one
 * sample, CHW; `out` must not alias `src`.
 */
export function cropWithPadding(src: Pixels, out: Out, shape: readonly number[], dy: number, dx: number): void {
  const [C, H, W] = shape;
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const sy = y + dy;
      const row = (c * H + y) * W;
      const srcRow = (c * H + sy) * W;
      for (let x = 0; x < W; x++) {
        const sx = x + dx;
        out[row + x] = sy >= 0 && sy < H && sx >= 0 && sx < W ? src[srcRow + sx] : 0;
      }
    }
  }
}

/** Mirror an image left-right: out[c, y, x] = src[c, y, W - 1 - x]. `out` must not alias `src`. */
export function flipHorizontal(src: Pixels, out: Out, shape: readonly number[]): void {
  const [C, H, W] = shape;
  for (let r = 0; r < C * H; r++) {
    const row = r * W;
    for (let x = 0; x < W; x++) out[row + x] = src[row + W - 1 - x];
  }
}

/** The augmentation drawn for sample `index` in `epoch`: a pure function of its arguments. */
export function augmentChoice(opts: AugmentOptions, seed: number, epoch: number, index: number): AugmentChoice {
  const rng = new Rng(mixSeed(seed, epoch, index, 0x61756721));
  const pad = opts.pad ?? 0;
  const dy = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
  const dx = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
  const flip = opts.flip ? rng.next() < 0.5 : false;
  return { dy, dx, flip };
}

/**
 * Write the augmented image into `out` (crop, then flip). `scratch` holds at least one sample and
 * is used when both apply. Returns the choice made, for logging and tests.
 */
export function augmentImage(src: Pixels, out: Out, shape: readonly number[], choice: AugmentChoice, scratch: Out): AugmentChoice {
  const crop = choice.dy !== 0 || choice.dx !== 0;
  if (crop && choice.flip) {
    cropWithPadding(src, scratch, shape, choice.dy, choice.dx);
    flipHorizontal(scratch, out, shape);
  } else if (crop) {
    cropWithPadding(src, out, shape, choice.dy, choice.dx);
  } else if (choice.flip) {
    flipHorizontal(src, out, shape);
  } else {
    const size = shape[0] * shape[1] * shape[2];
    for (let i = 0; i < size; i++) out[i] = src[i];
  }
  return choice;
}

/** Check augmentation settings against a per-sample shape: images [C, H, W] only, 0 <= pad < min(H, W). */
export function validateAugment(opts: AugmentOptions, inputShape: readonly number[]): void {
  if (inputShape.length !== 3) throw new Error(`augmentation needs image inputs [C, H, W], got shape [${inputShape.join(', ')}]`);
  const pad = opts.pad ?? 0;
  if (!Number.isInteger(pad) || pad < 0 || pad >= Math.min(inputShape[1], inputShape[2])) {
    throw new Error(`augmentation pad must be an integer in [0, ${Math.min(inputShape[1], inputShape[2])}), got ${pad}`);
  }
}
