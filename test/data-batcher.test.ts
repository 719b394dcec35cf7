// Batching and augmentation: seeded epoch orders that a resume can recreate, batches that cover
// every sample once with the right normalisation, label validation, and augmentation that is a
// pure function of (seed, epoch, sample) and does what it says on small hand-checked images.
import { describe, expect, it } from 'vitest';
import { augmentChoice, augmentImage, cropWithPadding, flipHorizontal } from '../src/data/augment.ts';
import { Batcher } from '../src/data/batcher.ts';
import type { Dataset } from '../src/data/dataset.ts';
import { Rng } from '../src/util/random.ts';

/** A small uint8 image dataset: n samples of shape [C, H, W], labels i % classes. */
function imageDataset(n: number, shape: number[], classes = 10, seed = 1): Dataset {
  const size = shape.reduce((a, b) => a * b, 1);
  const r = new Rng(seed);
  const split = (m: number) => ({
    n: m,
    x: Uint8Array.from({ length: m * size }, () => r.int(256)),
    y: Uint8Array.from({ length: m }, (_, i) => i % classes),
  });
  return { name: 'tiny', task: 'classification', inputShape: shape, numClasses: classes, train: split(n), test: split(3), normalization: { kind: 'scale255' } };
}

/** Every batch of an epoch, concatenated. */
function epoch(b: Batcher, e: number): { x: number[]; y: number[]; counts: number[] } {
  const xb = new Float32Array(b.batchSize * b.sampleSize);
  const yb = new Float32Array(b.batchSize * b.targetSize);
  const out = { x: [] as number[], y: [] as number[], counts: [] as number[] };
  for (let k = 0; k < b.numBatches; k++) {
    const c = b.fill(e, k, xb, yb);
    out.counts.push(c);
    out.x.push(...xb.subarray(0, c * b.sampleSize));
    out.y.push(...yb.subarray(0, c * b.targetSize));
  }
  return out;
}

describe('Batcher', () => {
  const ds = imageDataset(10, [1, 2, 3]);

  it('unshuffled: file order, /255, labels as f32, a short last batch or none with dropLast', () => {
    const b = new Batcher(ds.train, ds, { batchSize: 4, shuffle: false, seed: 0 });
    expect(b.numBatches).toBe(3);
    const all = epoch(b, 0);
    expect(all.counts).toEqual([4, 4, 2]);
    expect(all.x).toEqual(Array.from(ds.train.x, (v) => Math.fround(v / 255)));
    expect(all.y).toEqual(Array.from(ds.train.y));
    const d = new Batcher(ds.train, ds, { batchSize: 4, shuffle: false, seed: 0, dropLast: true });
    expect(d.numBatches).toBe(2);
    expect(() => d.fill(0, 2, new Float32Array(24), new Float32Array(4))).toThrow(/batch 2 out of range \[0, 2\)/);
    expect(() => b.fill(0, 0, new Float32Array(23), new Float32Array(4))).toThrow(/xOut holds 23 values/);
  });

  it('shuffled: each epoch a permutation that depends only on (seed, epoch)', () => {
    const big = imageDataset(1000, [1, 1, 1]);
    const a = new Batcher(big.train, big, { batchSize: 32, shuffle: true, seed: 42 });
    const orders = [0, 1, 2].map((e) => a.epochOrder(e));
    for (const o of orders) expect(Array.from(o).sort((p, q) => p - q)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(orders[0]).not.toEqual(orders[1]);
    expect(orders[1]).not.toEqual(orders[2]);
    // A fresh batcher asked for epoch 2 first (a resume) gives the same order.
    const resumed = new Batcher(big.train, big, { batchSize: 32, shuffle: true, seed: 42 });
    expect(resumed.epochOrder(2)).toEqual(orders[2]);
    expect(resumed.epochOrder(0)).toEqual(orders[0]);
    const other = new Batcher(big.train, big, { batchSize: 32, shuffle: true, seed: 43 });
    expect(other.epochOrder(0)).not.toEqual(orders[0]);
    // The returned order is a copy: changing it does not change the batches.
    const o = a.epochOrder(1);
    o.fill(0);
    expect(a.batchIndices(1, 0)).toEqual(orders[1].subarray(0, 32));
  });

  it('shuffled batches cover every sample once, and fill is deterministic', () => {
    const b = new Batcher(ds.train, ds, { batchSize: 3, shuffle: true, seed: 7 });
    const e1 = epoch(b, 5);
    const again = epoch(new Batcher(ds.train, ds, { batchSize: 3, shuffle: true, seed: 7 }), 5);
    expect(e1).toEqual(again);
    const order = b.epochOrder(5);
    const want = Array.from(order).flatMap((i) => Array.from(ds.train.x.subarray(i * 6, (i + 1) * 6), (v) => Math.fround(v / 255)));
    expect(e1.x).toEqual(want);
    expect(e1.y).toEqual(Array.from(order, (i) => ds.train.y[i]));
  });

  it('labels out of range are rejected naming the sample index', () => {
    const bad = imageDataset(6, [1, 2, 2]);
    bad.train.y[4] = 10;
    expect(() => new Batcher(bad.train, bad, { batchSize: 2, shuffle: false, seed: 0 })).toThrow(/tiny train: label 10 of sample 4 is out of range \[0, 10\)/);
    const frac: Dataset = { ...bad, train: { ...bad.train, y: Float32Array.from([0, 1, 2, 1.5, 0, 0]) } };
    expect(() => new Batcher(frac.train, frac, { batchSize: 2, shuffle: false, seed: 0 })).toThrow(/label 1.5 of sample 3/);
  });

  it('tabular: standardised features and targets', () => {
    const tab: Dataset = {
      name: 'tab',
      task: 'regression',
      inputShape: [2],
      numClasses: 1,
      train: { n: 3, x: Float32Array.from([1, 10, 2, 20, 3, 30]), y: Float32Array.from([5, 7, 9]) },
      test: { n: 0, x: new Float32Array(0), y: new Float32Array(0) },
      normalization: { kind: 'standardize', mean: [2, 20], std: [0.5, 5] },
      targetNormalization: { mean: [7], std: [2] },
    };
    const b = new Batcher(tab.train, tab, { batchSize: 8, shuffle: false, seed: 0 });
    const x = new Float32Array(16);
    const y = new Float32Array(8);
    expect(b.fill(0, 0, x, y)).toBe(3);
    expect(Array.from(x.subarray(0, 6))).toEqual([-2, -2, 0, 0, 2, 2]);
    expect(Array.from(y.subarray(0, 3))).toEqual([-1, 0, 1]);
    expect(() => new Batcher(tab.train, tab, { batchSize: 2, shuffle: true, seed: 0, augment: { flip: true } })).toThrow(/image inputs/);
  });
});

describe('augmentation', () => {
  const shape = [3, 4, 5];
  const img = Uint8Array.from({ length: 60 }, (_, i) => i + 1);
  const at = (c: number, y: number, x: number) => (c * 4 + y) * 5 + x;

  it('a flipped image equals the mirrored original', () => {
    const out = new Uint8Array(60);
    flipHorizontal(img, out, shape);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 4; y++) for (let x = 0; x < 5; x++) expect(out[at(c, y, x)]).toBe(img[at(c, y, 4 - x)]);
  });

  it('a crop with offset 0 equals the original; other offsets shift in zeros', () => {
    const out = new Uint8Array(60);
    cropWithPadding(img, out, shape, 0, 0);
    expect(out).toEqual(img);
    cropWithPadding(img, out, shape, 1, -2);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 4; y++) {
        for (let x = 0; x < 5; x++) {
          const sy = y + 1;
          const sx = x - 2;
          const want = sy < 4 && sx >= 0 ? img[at(c, sy, sx)] : 0;
          expect(out[at(c, y, x)], `c${c} y${y} x${x}`).toBe(want);
        }
      }
    }
    expect(out[at(0, 3, 4)]).toBe(0); // the last row comes from the padding
    expect(out[at(0, 0, 2)]).toBe(img[at(0, 1, 0)]);
  });

  it('choices are a function of (seed, epoch, index), cover the range, flip about half the time', () => {
    const opts = { pad: 2, flip: true };
    expect(augmentChoice(opts, 9, 3, 17)).toEqual(augmentChoice(opts, 9, 3, 17));
    const choices = Array.from({ length: 400 }, (_, i) => augmentChoice(opts, 9, 0, i));
    const dys = new Set(choices.map((c) => c.dy));
    expect([...dys].sort()).toEqual([-1, -2, 0, 1, 2].sort());
    const flips = choices.filter((c) => c.flip).length;
    expect(flips).toBeGreaterThan(150);
    expect(flips).toBeLessThan(250);
    const otherEpoch = Array.from({ length: 400 }, (_, i) => augmentChoice(opts, 9, 1, i));
    expect(otherEpoch).not.toEqual(choices);
    expect(augmentChoice({}, 9, 0, 0)).toEqual({ dy: 0, dx: 0, flip: false });
  });

  it('augmentImage with crop and flip: crop first, then mirror', () => {
    const out = new Uint8Array(60);
    const scratch = new Uint8Array(60);
    augmentImage(img, out, shape, { dy: -1, dx: 1, flip: true }, scratch);
    const cropped = new Uint8Array(60);
    const want = new Uint8Array(60);
    cropWithPadding(img, cropped, shape, -1, 1);
    flipHorizontal(cropped, want, shape);
    expect(out).toEqual(want);
  });

  it('in the Batcher: reproducible, seed-dependent, each sample its own augmentation, off when not asked', () => {
    const ds = imageDataset(16, [3, 6, 6], 10, 4);
    const opts = { batchSize: 5, shuffle: true, seed: 11, augment: { pad: 2, flip: true } };
    const a = epoch(new Batcher(ds.train, ds, opts), 3);
    expect(epoch(new Batcher(ds.train, ds, opts), 3)).toEqual(a);
    expect(epoch(new Batcher(ds.train, ds, { ...opts, seed: 12 }), 3).x).not.toEqual(a.x);
    // Sample k of the epoch is augmentImage of the original with that sample's choice, then /255.
    const b = new Batcher(ds.train, ds, opts);
    const order = b.epochOrder(3);
    const S = 108;
    for (let k = 0; k < 16; k++) {
      const i = order[k];
      const out = new Float32Array(S);
      augmentImage(ds.train.x.subarray(i * S, (i + 1) * S), out, ds.inputShape, augmentChoice(opts.augment, 11, 3, i), new Float32Array(S));
      expect(a.x.slice(k * S, (k + 1) * S)).toEqual(Array.from(out, (v) => Math.fround(v / 255)));
    }
    const plain = epoch(new Batcher(ds.train, ds, { ...opts, augment: false }), 3);
    expect(plain.x).toEqual(Array.from(order).flatMap((i) => Array.from(ds.train.x.subarray(i * S, (i + 1) * S), (v) => Math.fround(v / 255))));
    expect(plain.x).not.toEqual(a.x);
  });
});
