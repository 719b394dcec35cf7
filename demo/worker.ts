// The training worker: the GPU engine, the dataset, the model and the training loop live here, off
// the page's main thread, so that the page stays responsive while the GPU (or, on a software
// adapter, the CPU) works. The page calls this API through Comlink (protocol.ts); progress, epoch
// ends and device losses come back through the event callback given to start(). Image folders are
// decoded here too, with createImageBitmap and an OffscreenCanvas.
import * as Comlink from 'comlink';
import { Batcher } from '../src/data/batcher.ts';
import { sampleSize, type Dataset, type Split } from '../src/data/dataset.ts';
import type { ImageHeader, RgbaImage } from '../src/data/image-file.ts';
import { formatImageFolderReport, ImageFolderReader, inputLimitProblem, sortImageFolder } from '../src/data/image-folder.ts';
import { setTuneStorage } from '../src/kernels/tune.ts';
import { attentionMaps, attentionValues, saliency } from '../src/train/explain.ts';
import { cifarFromFiles, idxFromFiles, loadBundledMnist } from './data.ts';
import type { AdapterInfo, DatasetSummary, Explanation, Explanations, ImageFolderSettings, ModelConfig, PickedFile, TestPictures, WorkerApi, WorkerEvent } from './protocol.ts';
import { TrainingSession } from './trainer.ts';
import { Rng } from '../src/util/random.ts';

/** Copy the model to the worker's memory at least this often while training (seconds). */
const SNAPSHOT_SECONDS = 5;

let emit: (e: WorkerEvent) => void = () => {};
let dataset: Dataset | null = null;
let config: ModelConfig | null = null;
let stopRequested = false;
let recovering: Promise<void> | null = null;
const session = new TrainingSession(() => void recoverFromLoss());

function adapterInfo(): AdapterInfo {
  const a = session.adapter;
  if (!a) throw new Error('No GPU device.');
  return { name: a.name, description: a.description, isSoftware: a.isSoftware, runtime: a.runtime, limits: { ...a.limits } };
}

function summarize(ds: Dataset): DatasetSummary {
  return {
    name: ds.name,
    train: ds.train.n,
    test: ds.test.n,
    inputShape: [...ds.inputShape],
    numClasses: ds.numClasses,
    classNames: ds.classNames ?? null,
    source: ds.source ?? null,
    scale255: ds.normalization.kind === 'scale255',
  };
}

/** Bumped when a dataset read starts: a read that ends after a later one started is not used. */
let reads = 0;

/** Read a dataset and use it, unless another read started meanwhile (its summary is still returned). */
async function readDataset<T extends { dataset: Dataset }>(read: () => Promise<T>): Promise<T> {
  const mine = ++reads;
  const r = await read();
  if (mine === reads) dataset = r.dataset;
  return r;
}

const useDataset = async (read: () => Promise<Dataset>) => summarize((await readDataset(async () => ({ dataset: await read() }))).dataset);

function requireData(): Dataset {
  if (!dataset) throw new Error('No dataset yet.');
  return dataset;
}

/**
 * The device is gone: make a new one and put the model back as it was last copied to memory. A
 * training run in progress notices on its next GPU call and continues (see train).
 */
function recoverFromLoss(): Promise<void> {
  recovering ??= (async () => {
    const lostInfo = await session.engine?.lost;
    const why = `${lostInfo?.reason ?? 'unknown'}${lostInfo?.message ? `: ${lostInfo.message}` : ''}`;
    const wasTraining = session.isTraining;
    try {
      const snap = await session.replaceLostDevice(dataset, config ?? fallbackConfig());
      const what = snap
        ? `Training state restored on a new device from the copy kept in the worker at step ${snap.step} (epoch ${snap.epoch})${wasTraining ? '; training goes on from there' : ''}.`
        : 'A new device is ready; there was no model to restore.';
      emit({ kind: 'recovered', message: `The GPU device was lost (${why}). ${what}`, step: snap?.step ?? null, adapter: adapterInfo() });
    } catch (err) {
      emit({ kind: 'lost', message: `The GPU device was lost (${why}) and no new one could be made: ${(err as Error).message}. Press Reset to try again.` });
      throw err;
    } finally {
      recovering = null;
    }
  })();
  return recovering;
}

function fallbackConfig(): ModelConfig {
  return { preset: 'mlp', hidden: [], optimizer: 'adam', lr: 0.001, seed: 0 };
}

// ---- image folders ---------------------------------------------------------------------------

/** Decode with the browser's decoders: an ImageBitmap drawn, unscaled, on an OffscreenCanvas. */
async function decodeInBrowser(bytes: Uint8Array, header: ImageHeader): Promise<RgbaImage> {
  const blob = new Blob([bytes as Uint8Array<ArrayBuffer>], { type: header.format === 'png' ? 'image/png' : 'image/jpeg' });
  // 'none': keep the stored pixels (no colour-space conversion, no premultiplication), as Node's decoders do.
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2D context on an OffscreenCanvas');
    ctx.drawImage(bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    return { width: bitmap.width, height: bitmap.height, rgba: data };
  } finally {
    bitmap.close();
  }
}

async function loadImageFolder(root: string, files: PickedFile[], dirs: string[], s: ImageFolderSettings) {
  const listing = sortImageFolder(root, { files: files.map((f) => f.path), dirs });
  // One sample must fit the adapter's buffers; said before any file is decoded.
  const limits = session.adapter?.limits;
  const sample = [s.channels === 1 ? 1 : 3, s.imageSize, s.imageSize];
  const tooBig = limits ? inputLimitProblem(sample, 1, limits) : null;
  if (tooBig) throw new Error(`${root}: ${tooBig}.`);
  const reader = new ImageFolderReader(root, listing, { imageSize: s.imageSize, channels: s.channels, valSplit: s.valSplit, seed: s.seed });
  const byPath = new Map(files.map((f) => [f.path, f.file]));
  let lastReport = 0;
  for (const [i, { file }] of reader.files.entries()) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await byPath.get(file)!.arrayBuffer());
    } catch (err) {
      reader.reject(i, `cannot read the file (${(err as Error).message})`);
      continue;
    }
    await reader.read(i, bytes, decodeInBrowser);
    if (performance.now() - lastReport > 200 || i === reader.files.length - 1) {
      lastReport = performance.now();
      emit({ kind: 'progress', what: 'Reading images', done: i + 1, total: reader.files.length });
    }
  }
  const { dataset: ds, report } = reader.finish();
  return { dataset: ds, report: formatImageFolderReport(report), skipped: report.corrupt.length };
}

// ---- pictures --------------------------------------------------------------------------------

/** Model inputs of chosen test samples, normalised as in training. */
function testInputs(ds: Dataset, indices: number[]): Float32Array {
  const S = sampleSize(ds);
  const X = ds.test.x;
  const sub: Split = { n: indices.length, x: X instanceof Uint8Array ? new Uint8Array(indices.length * S) : new Float32Array(indices.length * S), y: new Int32Array(indices.length) };
  indices.forEach((t, k) => {
    sub.x.set(X.subarray(t * S, (t + 1) * S), k * S);
    sub.y[k] = ds.test.y[t];
  });
  const x = new Float32Array(indices.length * S);
  new Batcher(sub, ds, { batchSize: indices.length, shuffle: false, seed: 0 }).fill(0, 0, x, new Float32Array(indices.length));
  return x;
}

/** |gradient| maximised over channels, scaled so that the image's largest is 1: [H, W]. */
function saliencyMap(grad: Float32Array, [C, H, W]: number[]): Float32Array {
  const out = new Float32Array(H * W);
  for (let c = 0; c < C; c++) for (let p = 0; p < H * W; p++) out[p] = Math.max(out[p], Math.abs(grad[c * H * W + p]));
  const top = out.reduce((m, v) => Math.max(m, v), 0);
  if (top > 0) for (let p = 0; p < out.length; p++) out[p] /= top;
  return out;
}

/**
 * Where the last attention looks, per image position: the attention each patch token receives,
 * averaged over heads, from the class token (class-token pooling) or over all tokens (mean
 * pooling); nearest-upsampled from the patch grid to [H, W] and scaled from its least (0) to its
 * most (1): attention is a share, and what matters is where it goes more than elsewhere.
 */
function attentionMap(w: Float32Array, [heads, T]: number[], [, H, W]: number[], patch: number, cls: boolean): Float32Array {
  const gh = H / patch;
  const gw = W / patch;
  const first = cls ? 1 : 0;
  const received = new Float32Array(gh * gw);
  for (let h = 0; h < heads; h++) {
    for (let q = 0; q < (cls ? 1 : T); q++) {
      for (let k = first; k < T; k++) received[k - first] += w[(h * T + q) * T + k];
    }
  }
  const top = received.reduce((m, v) => Math.max(m, v), -Infinity);
  const low = received.reduce((m, v) => Math.min(m, v), Infinity);
  const span = top - low;
  const out = new Float32Array(H * W);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[y * W + x] = span > 0 ? (received[Math.floor(y / patch) * gw + Math.floor(x / patch)] - low) / span : 0;
  return out;
}

let lastPredictions: { predicted: Int32Array; confidence: Float32Array } | null = null;

/** Predictions over the test split, and the grid of `gridCount` test images spread over it. */
async function testPictures(gridCount: number): Promise<TestPictures | null> {
  const ds = requireData();
  if (!session.model || ds.test.n === 0) return null;
  const preds = await session.testPredictions(ds);
  lastPredictions = preds;
  const S = sampleSize(ds);
  const m = Math.min(ds.test.n, gridCount);
  const grid = Array.from({ length: m }, (_, i) => Math.floor((i * ds.test.n) / m));
  const X = ds.test.x;
  const gridValues = X instanceof Uint8Array ? new Uint8Array(grid.length * S) : new Float32Array(grid.length * S);
  grid.forEach((t, k) => gridValues.set(X.subarray(t * S, (t + 1) * S), k * S));
  // Copies: the predictions stay here for explain(); what is sent is transferred.
  return { predicted: preds.predicted.slice(), confidence: preds.confidence.slice(), truth: Int32Array.from(ds.test.y), grid, gridValues };
}

async function explain(perKind: number): Promise<Explanations | null> {
  const ds = requireData();
  const model = session.model;
  if (!model || ds.inputShape.length !== 3 || ds.test.n === 0) return null;
  const preds = lastPredictions ?? (await session.testPredictions(ds));
  const right: number[] = [];
  const wrong: number[] = [];
  // Test splits are often grouped by class: look through them in a fixed shuffled order, so that
  // the examples come from several classes (and the same ones each time).
  const order = new Rng(0).shuffle(Array.from({ length: ds.test.n }, (_, i) => i));
  for (const i of order) {
    if (right.length >= perKind && wrong.length >= perKind) break;
    const list = preds.predicted[i] === ds.test.y[i] ? right : wrong;
    if (list.length < perKind) list.push(i);
  }
  const indices = [...right, ...wrong];
  const x = testInputs(ds, indices);
  const sal = await saliency(
    model,
    x,
    indices.length,
    indices.map((i) => preds.predicted[i]),
  );
  const S = sampleSize(ds);
  const [, H, W] = ds.inputShape;
  let attention: { maps: Float32Array[]; path: string } | null = null;
  const atts = attentionValues(model);
  const vit = (model.config() as { options?: { patch?: number; pool?: string } }).options;
  if (atts.length && vit?.patch) {
    const a = await attentionMaps(model, x, indices.length);
    const k = a.weights.length - 1;
    const [heads, T] = a.shapes[k];
    const per = heads * T * T;
    attention = { path: a.paths[k], maps: indices.map((_, j) => attentionMap(a.weights[k].subarray(j * per, (j + 1) * per), [heads, T], ds.inputShape, vit.patch!, vit.pool === 'cls')) };
  }
  const one = (i: number, j: number): Explanation => ({
    index: i,
    truth: ds.test.y[i],
    predicted: preds.predicted[i],
    confidence: preds.confidence[i],
    image: ds.test.x.slice(i * S, (i + 1) * S),
    saliency: saliencyMap(sal.gradients.subarray(j * S, (j + 1) * S), ds.inputShape),
    attention: attention?.maps[j] ?? null,
  });
  return {
    height: H,
    width: W,
    channels: ds.inputShape[0],
    right: right.map((i, j) => one(i, j)),
    wrong: wrong.map((i, j) => one(i, right.length + j)),
    attentionPath: attention?.path ?? null,
  };
}

// ---- the API ---------------------------------------------------------------------------------

const api: WorkerApi = {
  async start(tuneCache, onEvent) {
    emit = onEvent;
    // The tuner keeps its choices in localStorage, which workers lack: the page's copy comes in,
    // and every new choice goes back to the page to keep.
    let cache = tuneCache;
    setTuneStorage({
      getItem: () => cache,
      setItem: (key, value) => {
        cache = value;
        emit({ kind: 'tune', key, value });
      },
    });
    await session.start();
    return adapterInfo();
  },
  loadBundledMnist: (imagesUrl, labelsUrl) => useDataset(() => loadBundledMnist(imagesUrl, labelsUrl)),
  loadIdx: (files) => useDataset(() => idxFromFiles(files)),
  loadCifar: (files) => useDataset(() => cifarFromFiles(files)),
  async loadImageFolder(root, files, dirs, settings) {
    const r = await readDataset(() => loadImageFolder(root, files, dirs, settings));
    return { summary: summarize(r.dataset), report: r.report, skipped: r.skipped };
  },
  async build(cfg) {
    await recovering;
    const ds = requireData();
    config = cfg;
    lastPredictions = null;
    const model = await session.build(ds, cfg);
    await session.snapshot(ds);
    return model.summary();
  },
  async train(opts) {
    const ds = requireData();
    const trainer = session.trainer;
    if (!trainer) throw new Error('Build or load a model before training.');
    const limits = session.adapter?.limits;
    const tooBig = limits ? inputLimitProblem(ds.inputShape, Math.min(opts.batchSize, ds.train.n), limits) : null;
    if (tooBig) throw new Error(`${ds.name}: ${tooBig}.`);
    stopRequested = false;
    const target = trainer.state.epoch + opts.epochs;
    let lastCopy = performance.now();
    for (;;) {
      const t = session.trainer!;
      try {
        await session.train(
          ds,
          { batchSize: opts.batchSize, seed: opts.seed, epochs: Math.max(0, target - t.state.epoch), statsEvery: opts.statsEvery },
          {
            onStats: (snapshot) => emit({ kind: 'stats', snapshot }),
            onStep: async (ev) => {
              emit({ kind: 'step', ev });
              if (performance.now() - lastCopy > SNAPSHOT_SECONDS * 1000 || session.pauseRequested) {
                await session.snapshot(ds);
                lastCopy = performance.now();
              }
            },
            onEpochEnd: async (ev) => {
              await session.snapshot(ds);
              lastCopy = performance.now();
              // The pictures of this epoch's model, made before the next epoch changes it.
              const pictures = await testPictures(opts.gridCount);
              emit({ kind: 'epoch', ev, pictures, explanations: await explain(opts.explainPerKind) });
            },
          },
        );
        return;
      } catch (err) {
        // A lost device shows itself as a failed GPU call; the loss event can come a moment later.
        const engine = session.engine;
        if (engine && !engine.isLost) await Promise.race([engine.lost, new Promise((r) => setTimeout(r, 1000))]);
        if (!engine?.isLost && !recovering) throw err;
        await recoverFromLoss();
        if (stopRequested) return;
      }
    }
  },
  pause: () => session.pause(),
  resume: () => session.resume(),
  async stop() {
    stopRequested = true;
    await session.stop();
  },
  async reset() {
    stopRequested = true;
    await recovering?.catch(() => undefined);
    lastPredictions = null;
    await session.reset();
    return adapterInfo();
  },
  hasModel: () => session.model !== null,
  summary: () => session.model?.summary() ?? null,
  async firstWeights() {
    const w = await session.firstWeights();
    return w ? Comlink.transfer({ data: w.data, shape: [...w.shape] }, [w.data.buffer]) : null;
  },
  testPictures: async (gridCount) => {
    const pics = await testPictures(gridCount);
    return pics ? Comlink.transfer(pics, [pics.predicted.buffer, pics.confidence.buffer, pics.truth.buffer, pics.gridValues.buffer]) : null;
  },
  async probabilities(x) {
    return session.probabilities(x, x.length / session.model!.inputSize);
  },
  explain,
  async save() {
    const bytes = await session.save(requireData());
    return Comlink.transfer(bytes, [bytes.buffer]);
  },
  async exportOnnx() {
    const model = session.model;
    if (!model) throw new Error('No model yet: train or load one.');
    // The exporter (and its protobuf schema) is loaded when first asked for.
    const { exportOnnx } = await import('../src/export/onnx.ts');
    const bytes = await exportOnnx(model);
    return Comlink.transfer(bytes, [bytes.buffer]);
  },
  async load(bytes, label, fallback) {
    await recovering;
    const ds = requireData();
    const meta = await session.load(bytes, label, ds, fallback);
    config = fallback;
    lastPredictions = null;
    await session.snapshot(ds);
    return { epoch: meta.state.epoch, step: meta.state.step, dataset: meta.dataset?.name ?? null, summary: session.model!.summary() };
  },
};

Comlink.expose(api);
