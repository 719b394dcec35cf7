// A split's model outputs, for the reports that need every prediction (confusion matrices,
// errors in the target's units). The Batcher turns stored samples into model inputs exactly as
// training does (normalisation, no augmentation, file order), and predict() runs the model in
// evaluation mode. This is the one place the CLI gets outputs for a split: an evaluate that
// returns its outputs can take its place.
import { Batcher } from '../data/batcher.ts';
import type { Dataset, Split } from '../data/dataset.ts';
import type { Model } from '../nn/model.ts';
import { predict } from './trainer.ts';

/** Samples normalised and run per chunk, so that a large split never needs its inputs all at once. */
export const OUTPUT_CHUNK = 2048;

/**
 * Model outputs for every sample of `split`, in split order: [split.n * outputSize] (logits for a
 * classifier, standardised values for a regression trained on standardised targets).
 */
export async function splitOutputs(model: Model, split: Split, data: Dataset): Promise<Float32Array> {
  const bs = Math.min(OUTPUT_CHUNK, split.n);
  if (bs === 0) throw new Error(`splitOutputs: the split of "${data.name}" is empty.`);
  const batcher = new Batcher(split, data, { batchSize: bs, shuffle: false, seed: 0 });
  const x = new Float32Array(bs * batcher.sampleSize);
  const y = new Float32Array(bs * batcher.targetSize);
  let out: Float32Array | null = null;
  for (let b = 0; b < batcher.numBatches; b++) {
    const m = batcher.fill(0, b, x, y);
    const o = await predict(model, x.subarray(0, m * batcher.sampleSize), m);
    out ??= new Float32Array(split.n * (o.length / m));
    out.set(o, b * bs * (o.length / m));
  }
  return out!;
}
