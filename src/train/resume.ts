// What a mid-epoch resume must find unchanged. A checkpoint taken within an epoch holds the batch
// to continue from; the batches themselves are recreated from the data seed (order and
// augmentation are functions of seed, epoch and sample index). That gives the same batches only if
// they are cut from the same samples, in batches of the same size, with the same shuffling and
// augmentation: this file describes that cut and names what differs.
import type { AugmentOptions } from '../data/augment.ts';
import type { Dataset, Split } from '../data/dataset.ts';
import type { EpochData, TrainState } from './step.ts';

/**
 * A hash of a split's stored values (samples and targets) and size: two 32-bit FNV-1a-style
 * hashes, as hex. Cheap next to an epoch (one pass over the bytes, four at a time), and any change
 * in the data (rows added, removed, edited or reordered) changes it with near certainty.
 */
export function fingerprintSplit(split: Split): string {
  return `${split.n}:${hashBytes(split.x).toString(16).padStart(8, '0')}${hashBytes(split.y).toString(16).padStart(8, '0')}`;
}

function hashBytes(a: ArrayBufferView): number {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let h = 0x811c9dc5;
  const words = Math.floor(bytes.byteOffset % 4 === 0 ? bytes.length / 4 : 0);
  if (words > 0) {
    const w = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w[i], 0x01000193);
  }
  for (let i = words * 4; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  // A final mix, so that the last words affect every bit.
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/** How `fit` cuts the training split of `data` into batches of `batchSize` (capped at the sample count). */
export function epochData(data: Dataset, batchSize: number, shuffle: boolean, augment: AugmentOptions | undefined): EpochData {
  return {
    samples: data.train.n,
    batchSize: Math.min(batchSize, data.train.n),
    shuffle,
    augment: augment && (augment.pad || augment.flip) ? { pad: augment.pad ?? 0, flip: augment.flip ?? false } : null,
    fingerprint: fingerprintSplit(data.train),
  };
}

const augmentText = (a: EpochData['augment']) => (a ? [a.pad ? `shift by up to ${a.pad}` : '', a.flip ? 'flip' : ''].filter(Boolean).join(' + ') : 'none');

/**
 * Why a training state taken within an epoch cannot continue on `now`: each difference in words,
 * saved value first (`1920 training samples, this data has 1800`). Empty when it can, or when the
 * state is at an epoch boundary (any data and batch size can start a new epoch).
 */
export function resumeMismatch(state: TrainState, now: EpochData): string[] {
  if (!state.batch) return [];
  const was = state.data;
  const out: string[] = [];
  if (!was) {
    // A state made by hand (no record of its data): only the batch position can be checked.
    const batches = Math.floor(now.samples / now.batchSize);
    if (state.batch >= batches) out.push(`batch ${state.batch} is past the ${batches} batches of an epoch here`);
    return out;
  }
  if (was.samples !== now.samples) out.push(`${was.samples} training samples, this data has ${now.samples}`);
  else if (was.fingerprint !== now.fingerprint) out.push(`other training data of the same size (fingerprint ${was.fingerprint}, this data ${now.fingerprint})`);
  if (was.batchSize !== now.batchSize) out.push(`batches of ${was.batchSize}, this run's are of ${now.batchSize}`);
  if (was.shuffle !== now.shuffle) out.push(`${was.shuffle ? 'shuffled' : 'unshuffled'} batches, this run's are ${now.shuffle ? 'shuffled' : 'not'}`);
  if (augmentText(was.augment) !== augmentText(now.augment)) out.push(`augmentation ${augmentText(was.augment)}, this run's is ${augmentText(now.augment)}`);
  return out;
}

/** `epoch 3, batch 37 of 480`: where a state stands, for messages (epochs counted from 1). */
export function describePosition(state: TrainState): string {
  const batches = state.data ? ` of ${Math.floor(state.data.samples / state.data.batchSize)}` : '';
  return state.batch ? `epoch ${state.epoch + 1}, batch ${state.batch}${batches}` : `the end of epoch ${state.epoch}`;
}
