// The demo page: wires the controls, charts, pictures and drawing pad to the training worker
// (worker.ts), which owns the GPU, the data and the training loop; this thread only sends commands
// and draws what comes back, so the page stays responsive while training. Page state for people
// is the DOM; for tests it is `window.__demo`, a read-only snapshot (see DemoStatus).
import * as Comlink from 'comlink';
import { BROWSER_CACHE_KEY } from '../src/kernels/tune.ts';
import { presetNames } from '../src/nn/presets.ts';
import { MetricChart } from './charts.ts';
import { MNIST_IMAGES_FILE, MNIST_LABELS_FILE } from './data.ts';
import { attachDrawPad, drawingToInput } from './draw.ts';
import { pickedFolder, droppedFolder, type Folder } from './folder.ts';
import { LayerPanels } from './layer-panels.ts';
import { LayerStatsBook, type LayerLast } from './layer-stats.ts';
import { className, confusionMatrix, renderConfusion, renderExplanations, renderTestGrid, weightImages } from './pictures.ts';
import type { EpochEvent, StepEvent } from '../src/train/trainer.ts';
import type { StatsSnapshot, StatsWarning } from '../src/train/stats-series.ts';
import type { AdapterInfo, DatasetSummary, Explanations, ModelConfig, TestPictures, WorkerApi, WorkerEvent } from './protocol.ts';

type Phase = 'starting' | 'no-webgpu' | 'ready' | 'training' | 'paused' | 'done' | 'error';

/** What `window.__demo` shows (a copy, taken when read). */
export interface DemoStatus {
  status: Phase;
  step: number;
  epoch: number;
  lastLoss: number | null;
  lastAccuracy: number | null;
  valLoss: number | null;
  valAccuracy: number | null;
  samplesPerSecond: number | null;
  adapter: { name: string; description: string; isSoftware: boolean; runtime: string } | null;
  dataset: { name: string; train: number; test: number; inputShape: number[] } | null;
  error: string | null;
  /** Training loss of every read-back window, in order. */
  losses: number[];
  /** Points drawn on the loss and accuracy charts. */
  chartPoints: number;
  /** Changes made to the drawing pad so far. */
  drawing: number;
  /** The latest prediction for the drawing pad (`drawing`: the change it saw), and how many have been made. */
  prediction: { label: string; index: number; probabilities: number[]; drawing: number } | null;
  predictions: number;
  /** How many times the weight images, test grid and confusion matrix were redrawn. */
  picturesUpdated: number;
  /** The image folder read last: its report (skipped files with reasons, notes) and how many files were skipped. */
  folder: { root: string; report: string[]; skipped: number } | null;
  /** Saliency (and attention) pictures shown: test images right and wrong; how many times they were drawn. */
  explained: { right: number; wrong: number; attention: boolean } | null;
  explainUpdates: number;
  /** The last message about a lost device and how training went on; how many were lost. */
  notice: string | null;
  deviceLosses: number;
  /**
   * Per-layer statistics (the "Inside the layers" panels): every how many steps they are taken (0:
   * off), snapshots received for this model, the step of the last one and the step the panels
   * show (the oldest any panel shows), the latest figures per layer, the warnings.
   */
  layerStats: {
    every: number;
    snapshots: number;
    lastStep: number | null;
    drawnStep: number | null;
    panels: number;
    layers: LayerLast[];
    warnings: StatsWarning[];
  };
}

declare global {
  interface Window {
    readonly __demo: DemoStatus;
  }
}

const state: DemoStatus = {
  status: 'starting',
  step: 0,
  epoch: 0,
  lastLoss: null,
  lastAccuracy: null,
  valLoss: null,
  valAccuracy: null,
  samplesPerSecond: null,
  adapter: null,
  dataset: null,
  error: null,
  losses: [],
  chartPoints: 0,
  drawing: 0,
  prediction: null,
  predictions: 0,
  picturesUpdated: 0,
  folder: null,
  explained: null,
  explainUpdates: 0,
  notice: null,
  deviceLosses: 0,
  layerStats: { every: 0, snapshots: 0, lastStep: null, drawnStep: null, panels: 0, layers: [], warnings: [] },
};
Object.defineProperty(window, '__demo', { get: () => structuredClone(state), enumerable: true });

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  adapter: $('adapter'),
  noWebgpu: $('no-webgpu'),
  noWebgpuReason: $('no-webgpu-reason'),
  error: $('error'),
  errorMessage: $('error-message'),
  errorHint: $('error-hint'),
  dataset: $<HTMLSelectElement>('dataset'),
  idxRow: $('idx-files-row'),
  idxFiles: $<HTMLInputElement>('idx-files'),
  cifarRow: $('cifar-files-row'),
  cifarFiles: $<HTMLInputElement>('cifar-files'),
  imagesRow: $('images-row'),
  imageFolder: $<HTMLInputElement>('image-folder'),
  dropZone: $('drop-zone'),
  imageSize: $<HTMLInputElement>('image-size'),
  channels: $<HTMLSelectElement>('channels'),
  valSplit: $<HTMLInputElement>('val-split'),
  folderReport: $('folder-report'),
  datasetInfo: $('dataset-info'),
  preset: $<HTMLSelectElement>('preset'),
  hiddenRow: $('hidden-row'),
  hidden: $<HTMLInputElement>('hidden'),
  archRow: $('arch-row'),
  depth: $<HTMLInputElement>('depth'),
  vitRow: $('vit-row'),
  width: $<HTMLInputElement>('width'),
  heads: $<HTMLInputElement>('heads'),
  patch: $<HTMLInputElement>('patch'),
  optimizer: $<HTMLSelectElement>('optimizer'),
  lr: $<HTMLInputElement>('lr'),
  batch: $<HTMLInputElement>('batch'),
  epochs: $<HTMLInputElement>('epochs'),
  seed: $<HTMLInputElement>('seed'),
  statsEvery: $<HTMLInputElement>('stats-every'),
  layerStatsInfo: $('layer-stats-info'),
  lockedHint: $('locked-hint'),
  start: $<HTMLButtonElement>('start'),
  pause: $<HTMLButtonElement>('pause'),
  reset: $<HTMLButtonElement>('reset'),
  save: $<HTMLButtonElement>('save'),
  saveOnnx: $<HTMLButtonElement>('save-onnx'),
  notice: $('notice'),
  noticeMessage: $('notice-message'),
  explain: $('explain'),
  load: $<HTMLInputElement>('load'),
  loadLabel: $('load-label'),
  summary: $('model-summary'),
  pad: $<HTMLCanvasElement>('pad'),
  padPreview: $<HTMLCanvasElement>('pad-preview'),
  prediction: $('prediction'),
  probs: $('probs'),
  weights: $('weights'),
  testGrid: $('test-grid'),
  confusion: $('confusion'),
};

const layerBook = new LayerStatsBook();
const layerPanels = new LayerPanels($('layer-panels'), $('layer-warnings'), layerBook);
const lossChart = new MetricChart($<HTMLCanvasElement>('loss-chart'), 'Loss (cross-entropy)');
const accChart = new MetricChart($<HTMLCanvasElement>('acc-chart'), 'Accuracy', 1);
const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
const remote = Comlink.wrap<WorkerApi>(worker);
let adapter: AdapterInfo | null = null;
let dataset: DatasetSummary | null = null;
let haveModel = false;
/** The image folder last picked or dropped: read again when its settings change. */
let folder: Folder | null = null;
/** Bumped by Reset: work started before it (on the old device) reports nothing afterwards. */
let generation = 0;

// ---- main-thread work in small pieces --------------------------------------------------------

/**
 * Run `fn` in a task of its own, soon: pieces of drawing (a chart, the test grid, the saliency
 * pictures) each get one, so that no single task of the main thread grows long, even on a
 * machine whose cores are busy training. Calls with the same key before it runs are merged (the
 * last `fn` runs once). Resolves when it has run.
 */
const chores = new Map<string, { fn: () => void; done: Promise<void> }>();
function chore(key: string, fn: () => void, delayMs = 0): Promise<void> {
  const pending = chores.get(key);
  if (pending) {
    pending.fn = fn;
    return pending.done;
  }
  const entry = { fn, done: Promise.resolve() };
  entry.done = new Promise<void>((resolve) =>
    setTimeout(() => {
      chores.delete(key);
      try {
        entry.fn();
      } finally {
        resolve();
      }
    }, delayMs),
  );
  chores.set(key, entry);
  return entry.done;
}

/** Charts are redrawn at most this often (ms): drawing one is the page's costliest piece of work. */
const CHART_EVERY_MS = 250;
let chartsDrawn = 0;

/** Redraw the charts and the status, each in its own task. */
function drawSoon(): void {
  const wait = Math.max(0, chartsDrawn + CHART_EVERY_MS - performance.now());
  void chore('loss-chart', () => lossChart.draw(), wait);
  void chore(
    'acc-chart',
    () => {
      accChart.draw();
      chartsDrawn = performance.now();
    },
    wait,
  );
  void chore('render', render);
}

// ---- status and errors ---------------------------------------------------------------------

const fmt = (v: number | null, digits = 4) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const pct = (v: number | null) => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);

function render(): void {
  const s = state;
  $('st-status').textContent = s.status;
  $('st-epoch').textContent = haveModel ? String(s.epoch) : '–';
  $('st-step').textContent = haveModel ? String(s.step) : '–';
  $('st-loss').textContent = fmt(s.lastLoss);
  $('st-acc').textContent = pct(s.lastAccuracy);
  $('st-val').textContent = s.valLoss === null ? '–' : `loss ${fmt(s.valLoss)}, accuracy ${pct(s.valAccuracy)}`;
  $('st-sps').textContent = s.samplesPerSecond === null ? '–' : Math.round(s.samplesPerSecond).toLocaleString('en-US');
  document.body.dataset.status = s.status;
  const haveEngine = adapter !== null;
  const busy = s.status === 'training' || s.status === 'paused';
  const locked = haveModel || busy;
  ui.start.disabled = !haveEngine || !dataset || busy || s.status === 'error' || s.status === 'starting';
  ui.start.textContent = haveModel ? `Train ${ui.epochs.value || '?'} more epoch(s)` : 'Start';
  ui.pause.disabled = !busy;
  ui.pause.textContent = s.status === 'paused' ? 'Resume' : 'Pause';
  ui.reset.disabled = s.status === 'starting' || s.status === 'no-webgpu';
  ui.save.disabled = !haveModel || s.status === 'training' || s.status === 'error';
  ui.saveOnnx.disabled = ui.save.disabled;
  const canLoad = haveEngine && !!dataset && !busy && s.status !== 'error';
  ui.load.disabled = !canLoad;
  ui.loadLabel.classList.toggle('disabled', !canLoad);
  const inputs = [ui.dataset, ui.idxFiles, ui.cifarFiles, ui.imageFolder, ui.imageSize, ui.channels, ui.valSplit, ui.preset, ui.hidden, ui.depth, ui.width, ui.heads, ui.patch, ui.optimizer, ui.lr, ui.seed];
  for (const el of inputs) el.disabled = locked;
  ui.dropZone.classList.toggle('disabled', locked);
  ui.batch.disabled = ui.epochs.disabled = ui.statsEvery.disabled = busy;
  ui.lockedHint.hidden = !locked;
  ui.hiddenRow.hidden = ui.preset.value !== 'mlp';
  ui.archRow.hidden = ui.preset.value !== 'resnet' && ui.preset.value !== 'vit';
  ui.vitRow.hidden = ui.preset.value !== 'vit';
}

/**
 * Show an error. A fatal one (GPU error, lost device, failed training) puts the page in the error
 * state, from which Reset recovers; a bad input or file only needs correcting.
 */
function showError(message: string, fatal = true): void {
  console.error(message);
  state.error = message;
  if (fatal) state.status = 'error';
  ui.errorMessage.textContent = message;
  ui.errorHint.textContent = fatal ? 'Press Reset to start again on a new GPU device.' : 'Correct it and try again.';
  ui.error.hidden = false;
  render();
}

function clearError(): void {
  state.error = null;
  ui.error.hidden = true;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Run an action from a button; its failure is shown, never swallowed (fatal unless said otherwise). */
function guarded(fn: () => Promise<void>, fatal = true): () => void {
  return () => {
    fn().catch((err) => showError(errorText(err), fatal));
  };
}

/** Coalesce calls: at most one run at a time, and one more after it if asked for meanwhile. */
function latest(fn: () => Promise<void>): () => void {
  let running = false;
  let again = false;
  const go = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    const gen = generation;
    try {
      do {
        again = false;
        await fn();
      } while (again && gen === generation);
    } catch (err) {
      if (gen === generation) showError(errorText(err));
    } finally {
      running = false;
    }
  };
  return () => void go();
}

// ---- the GPU (in the worker) ----------------------------------------------------------------

function showAdapter(a: AdapterInfo): void {
  adapter = a;
  state.adapter = { name: a.name, description: a.description, isSoftware: a.isSoftware, runtime: a.runtime };
  ui.adapter.dataset.state = a.isSoftware ? 'software' : 'hardware';
  ui.adapter.replaceChildren();
  const name = document.createElement('strong');
  name.textContent = `GPU: ${a.name}${a.description ? ` (${a.description})` : ''}`;
  ui.adapter.append(name);
  if (a.isSoftware) {
    const warn = document.createElement('p');
    warn.textContent = 'This is a SOFTWARE adapter: WebGPU is running on the CPU, not on a graphics card. Training works but is much slower, and the speed shown is not a GPU speed.';
    ui.adapter.append(warn);
  }
}

function noWebgpu(reason: string, short: string): void {
  state.status = 'no-webgpu';
  ui.noWebgpuReason.textContent = reason;
  ui.noWebgpu.hidden = false;
  ui.adapter.dataset.state = 'none';
  ui.adapter.textContent = short;
  render();
}

/** What the worker reports while it works: progress, epoch ends with their pictures, device losses. */
function onWorkerEvent(e: WorkerEvent): void {
  if (e.kind === 'tune') {
    try {
      localStorage.setItem(e.key, e.value);
    } catch (err) {
      console.warn(`could not keep the tuning choices in localStorage: ${errorText(err)}`);
    }
  } else if (e.kind === 'progress') {
    ui.datasetInfo.textContent = `${e.what}: ${e.done.toLocaleString('en-US')} of ${e.total.toLocaleString('en-US')}…`;
  } else if (e.kind === 'step') onStep(e.ev);
  else if (e.kind === 'stats') onStats(e.snapshot);
  else if (e.kind === 'epoch') onEpochEnd(e.ev, e.pictures, e.explanations);
  else if (e.kind === 'recovered') {
    showAdapter(e.adapter);
    state.deviceLosses++;
    state.notice = e.message;
    ui.noticeMessage.textContent = e.message;
    ui.notice.hidden = false;
    console.warn(e.message);
    render();
  } else if (e.kind === 'lost') showError(e.message);
}

async function startEngine(): Promise<void> {
  if (!('gpu' in navigator) || !navigator.gpu) {
    const reason = window.isSecureContext ? 'This browser has no WebGPU (navigator.gpu is missing).' : 'This page is not in a secure context (it is not served over https:// or from localhost), so the browser hides WebGPU.';
    return noWebgpu(reason, 'No WebGPU in this browser.');
  }
  let tune: string | null = null;
  try {
    tune = localStorage.getItem(BROWSER_CACHE_KEY);
  } catch {
    // storage disabled: the tuner measures again
  }
  try {
    showAdapter(await remote.start(tune, Comlink.proxy(onWorkerEvent)));
  } catch (err) {
    const msg = errorText(err);
    if (/no adapter|navigator\.gpu|no WebGPU/i.test(msg)) return noWebgpu(msg, 'WebGPU has no adapter here.');
    throw err;
  }
  if (state.status === 'starting') state.status = 'ready';
  render();
}

// ---- data and model settings -----------------------------------------------------------------

/** Bumped by every dataset choice: a slower earlier read that ends later is dropped. */
let datasetChoice = 0;

function setDataset(ds: DatasetSummary, choice = datasetChoice): void {
  if (choice !== datasetChoice) return;
  dataset = ds;
  state.dataset = { name: ds.name, train: ds.train, test: ds.test, inputShape: [...ds.inputShape] };
  ui.datasetInfo.textContent = `${ds.name}: ${ds.train.toLocaleString('en-US')} train, ${ds.test.toLocaleString('en-US')} test, ${ds.numClasses} classes, inputs [${ds.inputShape.join(', ')}]${ds.source ? ` (${ds.source})` : ''}`;
  const [c, h, w] = ds.inputShape;
  const drawable = ds.inputShape.length === 3 && c === 1 && ds.scale255;
  ui.padPreview.width = drawable ? w : 28;
  ui.padPreview.height = drawable ? h : 28;
  ui.pad.classList.toggle('disabled', !drawable);
  ui.prediction.textContent = drawable ? (haveModel ? 'Draw in the box.' : 'Train or load a model, then draw.') : 'Drawing needs a single-channel image dataset.';
  render();
}

function showFolderReport(root: string, report: string[], skipped: number): void {
  state.folder = { root, report, skipped };
  ui.folderReport.textContent = report.join('\n');
  ui.folderReport.hidden = false;
  ui.folderReport.classList.toggle('has-skipped', skipped > 0);
}

function folderSettings() {
  const imageSize = Number(ui.imageSize.value);
  if (!Number.isInteger(imageSize) || imageSize < 1) throw new Error(`The image size must be a positive whole number of pixels, got "${ui.imageSize.value}".`);
  const valSplit = Number(ui.valSplit.value);
  if (!(valSplit > 0 && valSplit < 1)) throw new Error(`The validation share must be between 0 and 1, got "${ui.valSplit.value}".`);
  const channels = ui.channels.value === 'auto' ? 'auto' : (Number(ui.channels.value) as 1 | 3);
  return { imageSize, channels, valSplit, seed: 0 } as const;
}

/** Read the current image folder in the worker; its problems (file and reason) are shown, not thrown away. */
async function readFolder(): Promise<void> {
  if (!folder) {
    ui.datasetInfo.textContent = 'Pick a folder with one subfolder of images per class, or drop one here.';
    return;
  }
  ui.folderReport.hidden = true;
  state.folder = null;
  ui.datasetInfo.textContent = `Reading ${folder.files.length.toLocaleString('en-US')} files from ${folder.root}…`;
  const choice = datasetChoice;
  const r = await remote.loadImageFolder(folder.root, folder.files, folder.dirs, folderSettings());
  if (choice !== datasetChoice) return;
  showFolderReport(folder.root, r.report, r.skipped);
  setDataset(r.summary, choice);
}

const chooseDataset = guarded(async () => {
  const kind = ui.dataset.value;
  const choice = ++datasetChoice;
  ui.idxRow.hidden = kind !== 'idx';
  ui.cifarRow.hidden = kind !== 'cifar';
  ui.imagesRow.hidden = kind !== 'images';
  dataset = null;
  state.dataset = null;
  render();
  clearError();
  if (kind === 'mnist') {
    ui.datasetInfo.textContent = 'Loading the bundled MNIST digits…';
    const at = (f: string) => new URL(f, document.baseURI).href;
    setDataset(await remote.loadBundledMnist(at(MNIST_IMAGES_FILE), at(MNIST_LABELS_FILE)), choice);
  } else if (kind === 'idx') {
    const files = Array.from(ui.idxFiles.files ?? []);
    ui.datasetInfo.textContent = files.length ? 'Reading…' : 'Pick the IDX files.';
    if (files.length) setDataset(await remote.loadIdx(files), choice);
  } else if (kind === 'cifar') {
    const files = Array.from(ui.cifarFiles.files ?? []);
    ui.datasetInfo.textContent = files.length ? 'Reading…' : 'Pick the CIFAR-10 .bin files.';
    if (files.length) setDataset(await remote.loadCifar(files), choice);
  } else await readFolder();
}, false);

const pickFolder = guarded(async () => {
  folder = pickedFolder(Array.from(ui.imageFolder.files ?? []));
  ui.imageFolder.value = '';
  await chooseDataset();
}, false);

const dropFolder = async (ev: DragEvent) => {
  ev.preventDefault();
  ui.dropZone.classList.remove('over');
  if (haveModel || state.status === 'training' || state.status === 'paused') return;
  try {
    folder = await droppedFolder(ev.dataTransfer);
    ui.dataset.value = 'images';
    await chooseDataset();
  } catch (err) {
    showError(errorText(err), false);
  }
};

function fillPresets(): void {
  const labels: Record<string, string> = {
    mlp: 'MLP (fully connected)',
    cnn: 'CNN for 28×28 grey images (2 conv blocks)',
    'cnn-cifar': 'CNN for 32×32 colour images (3 conv blocks)',
    resnet: 'ResNet (CIFAR style: 3 stages of residual blocks)',
    vit: 'Vision transformer (patches, self-attention)',
  };
  ui.preset.replaceChildren(
    ...presetNames().map((name) => {
      const o = document.createElement('option');
      o.value = name;
      o.textContent = labels[name] ?? name;
      return o;
    }),
  );
  ui.preset.value = 'mlp';
}

function positiveInt(input: HTMLInputElement, what: string): number {
  const v = Number(input.value);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what} must be a positive whole number, got "${input.value}".`);
  return v;
}

/** An optional positive whole number: empty means the preset's default. */
function optionalInt(input: HTMLInputElement, what: string): number | undefined {
  return input.value.trim() === '' ? undefined : positiveInt(input, what);
}

function modelConfig(): ModelConfig {
  const text = ui.hidden.value.trim();
  const hidden = text ? text.split(/[\s,]+/).map(Number) : [];
  if (hidden.some((h) => !Number.isInteger(h) || h < 1)) throw new Error(`Hidden layer sizes must be positive whole numbers separated by commas, got "${ui.hidden.value}".`);
  const lr = Number(ui.lr.value);
  if (!(lr > 0) || !Number.isFinite(lr)) throw new Error(`The learning rate must be a positive number, got "${ui.lr.value}".`);
  const seed = Number(ui.seed.value);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`The seed must be a whole number >= 0, got "${ui.seed.value}".`);
  const preset = ui.preset.value;
  const arch = preset === 'resnet' || preset === 'vit' ? { depth: optionalInt(ui.depth, 'The depth') } : {};
  const vit = preset === 'vit' ? { width: optionalInt(ui.width, 'The width'), heads: optionalInt(ui.heads, 'The number of heads'), patch: optionalInt(ui.patch, 'The patch size') } : {};
  return { preset, hidden, optimizer: ui.optimizer.value as ModelConfig['optimizer'], lr, seed, ...arch, ...vit };
}

// ---- training --------------------------------------------------------------------------------

function clearResults(): void {
  Object.assign(state, { step: 0, epoch: 0, lastLoss: null, lastAccuracy: null, valLoss: null, valAccuracy: null, samplesPerSecond: null, losses: [], chartPoints: 0, prediction: null, explained: null });
  lossChart.clear();
  accChart.clear();
  drawSoon();
  ui.weights.replaceChildren();
  ui.testGrid.replaceChildren();
  ui.confusion.replaceChildren();
  ui.explain.replaceChildren();
  ui.probs.replaceChildren();
  ui.summary.textContent = '';
  clearLayerStats();
}

async function refreshWeights(): Promise<void> {
  const ds = dataset;
  if (!haveModel || !ds) return;
  const w = await remote.firstWeights();
  // A few units' pictures per task: on a machine whose cores are busy training, all of them at once can take long.
  const units = w ? Math.min(WEIGHT_UNITS, w.shape[0]) : 0;
  const made: (HTMLCanvasElement[] | null)[] = [];
  const call = ++weightCalls;
  for (let first = 0; first < Math.max(units, 1); first += 8) {
    await chore(`weights:${call}:${first}`, () => void made.push(w ? weightImages(w.data, w.shape, ds.inputShape, 8, first) : null));
  }
  await chore('weights', () => {
    if (made.every((m) => m !== null)) ui.weights.replaceChildren(...(made.flat() as HTMLCanvasElement[]));
    else ui.weights.textContent = 'The first layer\u2019s weights do not have the shape of an image.';
  });
}
/** Units whose first-layer weights are shown. */
const WEIGHT_UNITS = 32;
let weightCalls = 0;
/** Cheap enough to run every few seconds during training. */
const refreshWeightsSoon = latest(refreshWeights);

/** Draw the test grid, the confusion matrix and the explanations, each in a task of its own; resolves when all are drawn. */
async function showPictures(ds: DatasetSummary, pics: TestPictures | null, ex: Explanations | null): Promise<void> {
  const drawn: Promise<void>[] = [];
  if (pics) {
    drawn.push(chore('grid', () => renderTestGrid(ui.testGrid, ds, pics)));
    drawn.push(chore('confusion', () => renderConfusion(ui.confusion, ds, confusionMatrix(ds, pics))));
  }
  drawn.push(
    chore('explain', () => {
      if (ex) {
        renderExplanations(ui.explain, ds, ex);
        state.explained = { right: ex.right.length, wrong: ex.wrong.length, attention: ex.attentionPath !== null };
        state.explainUpdates++;
      } else if (ds.inputShape.length !== 3) ui.explain.textContent = 'Saliency maps need image data.';
    }),
  );
  await Promise.all(drawn);
}

/** Weights, predictions over the whole test split, and saliency (at pauses, when done, after loading). */
async function refreshPictures(): Promise<void> {
  const ds = dataset;
  if (!haveModel || !ds) return;
  await refreshWeights();
  const pics = ds.test > 0 ? await remote.testPictures(GRID) : null;
  await showPictures(ds, pics, await remote.explain(EXPLAIN_PER_KIND));
  state.picturesUpdated++;
}
const refreshPicturesSoon = latest(refreshPictures);

/** Test images in the grid, and right and wrong ones explained. */
const GRID = 40;
const EXPLAIN_PER_KIND = 4;

let lastPictures = 0;
let trainGeneration = 0;

function onStep(ev: StepEvent): void {
  if (trainGeneration !== generation) return;
  state.step = ev.step;
  state.epoch = ev.epoch;
  state.lastLoss = ev.loss;
  state.lastAccuracy = ev.accuracy;
  // Smoothed: a window that spans an evaluation or a kernel compile reads low.
  state.samplesPerSecond = state.samplesPerSecond === null ? ev.samplesPerSecond : 0.7 * state.samplesPerSecond + 0.3 * ev.samplesPerSecond;
  state.losses.push(ev.loss);
  lossChart.add('train', ev.step, ev.loss);
  if (ev.accuracy !== null) accChart.add('train', ev.step, ev.accuracy);
  state.chartPoints = lossChart.points + accChart.points;
  if (performance.now() - lastPictures > 2000) {
    lastPictures = performance.now();
    refreshWeightsSoon();
  }
  if (state.status === 'training' || state.status === 'paused') state.status = pausing ? 'paused' : 'training';
  drawSoon();
}

// ---- per-layer statistics ---------------------------------------------------------------------

/** The layer panels are redrawn at most this often (ms); each panel in a task of its own. */
const LAYERS_EVERY_MS = 400;
let layersDrawn = -Infinity;

function onStats(snap: StatsSnapshot): void {
  if (trainGeneration !== generation) return;
  layerBook.add(snap);
  const ls = state.layerStats;
  ls.snapshots = layerBook.received;
  ls.lastStep = layerBook.lastStep;
  ls.layers = layerBook.last();
  ls.warnings = [...layerBook.warnings];
  drawLayersSoon();
}

function drawLayersSoon(): void {
  const wait = Math.max(0, layersDrawn + LAYERS_EVERY_MS - performance.now());
  void chore(
    'layer-panels',
    () => {
      if (layerPanels.sync()) {
        // New panels: each gets its own task below, after this one.
        state.layerStats.panels = layerPanels.count;
        ui.layerStatsInfo.textContent = `${layerPanels.count} layers with parameters; statistics every ${state.layerStats.every} steps.`;
      }
      layersDrawn = performance.now();
      for (let i = 0; i < layerPanels.count; i++) {
        for (let k = 0; k < layerPanels.pieces(i); k++) void chore(`layer-panel:${i}:${k}`, () => layerPanels.drawPiece(i, k));
      }
      void chore('layer-panels-done', () => {
        layerPanels.drawWarnings(layerBook.warnings);
        const steps = layerPanels.drawnSteps;
        state.layerStats.drawnStep = steps.length && steps.every((t) => t !== null) ? Math.min(...(steps as number[])) : null;
      });
    },
    wait,
  );
}

function clearLayerStats(): void {
  layerBook.clear();
  layerPanels.clear();
  Object.assign(state.layerStats, { snapshots: 0, lastStep: null, drawnStep: null, panels: 0, layers: [], warnings: [] });
  ui.layerStatsInfo.textContent = 'Start training to see them.';
}

function onEpochEnd(ev: EpochEvent, pics: TestPictures | null, ex: Explanations | null): void {
  if (trainGeneration !== generation || !dataset) return;
  state.epoch = ev.epoch;
  if (ev.valLoss !== undefined) {
    state.valLoss = ev.valLoss;
    state.valAccuracy = ev.valAccuracy ?? null;
    lossChart.add('validation', ev.step, ev.valLoss);
    if (ev.valAccuracy != null) accChart.add('validation', ev.step, ev.valAccuracy);
    state.chartPoints = lossChart.points + accChart.points;
  }
  drawSoon();
  void showPictures(dataset, pics, ex).then(() => state.picturesUpdated++);
}

function start(): void {
  let inputs: { batchSize: number; epochs: number; cfg: ModelConfig; statsEvery: number };
  try {
    if (!dataset) throw new Error('No dataset yet.');
    const statsEvery = Number(ui.statsEvery.value || 0);
    if (!Number.isInteger(statsEvery) || statsEvery < 0) throw new Error(`Layer statistics every: a whole number of steps >= 0 (0: off), got "${ui.statsEvery.value}".`);
    inputs = { batchSize: positiveInt(ui.batch, 'The batch size'), epochs: positiveInt(ui.epochs, 'The number of epochs'), cfg: modelConfig(), statsEvery };
  } catch (err) {
    showError(errorText(err), false);
    return;
  }
  const gen = generation;
  train(inputs, gen).catch((err) => {
    if (gen === generation) showError(errorText(err));
  });
}

async function train({ batchSize, epochs, cfg, statsEvery }: { batchSize: number; epochs: number; cfg: ModelConfig; statsEvery: number }, gen: number): Promise<void> {
  clearError();
  state.layerStats.every = statsEvery;
  ui.layerStatsInfo.textContent = statsEvery ? `Statistics every ${statsEvery} steps; the panels appear after the first.` : 'Layer statistics are off (set "Layer statistics every" above 0).';
  pausing = false;
  trainGeneration = gen;
  if (!haveModel) {
    clearResults();
    state.status = 'training';
    render();
    try {
      ui.summary.textContent = await remote.build(cfg);
      haveModel = true;
    } catch (err) {
      // A model that does not fit the data (e.g. a CIFAR CNN on MNIST, a patch size that does
      // not divide the image) is a settings problem.
      if (!['LayerShapeError', 'GraphError'].includes((err as Error).name)) throw err;
      state.status = 'ready';
      showError(errorText(err), false);
      return;
    }
  }
  state.status = 'training';
  render();
  await remote.train({ epochs, batchSize, seed: cfg.seed, gridCount: GRID, explainPerKind: EXPLAIN_PER_KIND, statsEvery });
  if (gen === generation && (state.status === 'training' || state.status === 'paused')) {
    await refreshPictures();
    state.status = 'done';
    predictDrawingSoon();
  }
  render();
}

let pausing = false;
function togglePause(): void {
  if (state.status === 'paused' || pausing) {
    pausing = false;
    void remote.resume();
    state.status = 'training';
  } else {
    // The loop stops at its next read-back (a few steps); the status says paused from now on.
    pausing = true;
    void remote.pause();
    state.status = 'paused';
    refreshPicturesSoon();
  }
  render();
}

const reset = guarded(async () => {
  generation++;
  state.status = 'starting';
  pausing = false;
  render();
  clearResults();
  clearError();
  haveModel = false;
  showAdapter(await remote.reset());
  state.status = 'ready';
  render();
});

// ---- save and load ---------------------------------------------------------------------------

function download(bytes: Uint8Array, name: string): void {
  const blob = new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

const save = guarded(async () => {
  if (!dataset) return;
  download(await remote.save(), `${dataset.name}-${ui.preset.value}-step${state.step}.safetensors`);
});

// The model for onnxruntime and other runtimes: inference semantics, inputs normalised as in training.
const saveOnnx = guarded(async () => {
  if (!dataset) return;
  download(await remote.exportOnnx(), `${dataset.name}-${ui.preset.value}-step${state.step}.onnx`);
}, false);

const load = guarded(async () => {
  const file = ui.load.files?.[0];
  ui.load.value = '';
  if (!file || !dataset) return;
  clearError();
  const meta = await remote.load(new Uint8Array(await file.arrayBuffer()), file.name, modelConfig());
  generation++;
  clearResults();
  haveModel = true;
  state.step = meta.step;
  state.epoch = meta.epoch;
  state.status = 'done';
  ui.summary.textContent = `Loaded ${file.name} (trained ${meta.epoch} epoch(s), ${meta.step} steps${meta.dataset ? ` on ${meta.dataset}` : ''}).\n${meta.summary}`;
  render();
  await refreshPictures();
  predictDrawingSoon();
}, false);

// ---- drawing pad -----------------------------------------------------------------------------

async function predictDrawing(): Promise<void> {
  const ds = dataset;
  if (ds?.inputShape.length !== 3 || ds.inputShape[0] !== 1) return;
  const [, h, w] = ds.inputShape;
  const drawing = state.drawing;
  const x = drawingToInput(ui.pad, h, w);
  const pctx = ui.padPreview.getContext('2d')!;
  const img = pctx.createImageData(w, h);
  if (x) for (let p = 0; p < h * w; p++) img.data.set([x[p] * 255, x[p] * 255, x[p] * 255, 255], p * 4);
  else for (let p = 0; p < h * w; p++) img.data.set([0, 0, 0, 255], p * 4);
  pctx.putImageData(img, 0, 0);
  if (!x) {
    state.prediction = null;
    ui.probs.replaceChildren();
    ui.prediction.textContent = haveModel ? 'Draw in the box.' : 'Train or load a model, then draw.';
    return;
  }
  if (!haveModel || state.status === 'error') return;
  const probs = await remote.probabilities(x);
  let best = 0;
  for (let k = 1; k < probs.length; k++) if (probs[k] > probs[best]) best = k;
  state.prediction = { label: className(ds, best), index: best, probabilities: [...probs], drawing };
  state.predictions++;
  ui.prediction.textContent = `Prediction: ${className(ds, best)} (${(probs[best] * 100).toFixed(1)}%)`;
  ui.probs.replaceChildren(
    ...[...probs].map((p, k) => {
      const li = document.createElement('li');
      li.className = k === best ? 'best' : '';
      const label = document.createElement('span');
      label.textContent = className(ds, k);
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${(p * 100).toFixed(1)}%`;
      const value = document.createElement('span');
      value.className = 'value';
      value.textContent = `${(p * 100).toFixed(1)}%`;
      li.append(label, bar, value);
      return li;
    }),
  );
}
const predictDrawingSoon = latest(predictDrawing);

// ---- wiring ----------------------------------------------------------------------------------

const pad = attachDrawPad(ui.pad, {
  onChange: () => {
    state.drawing++;
    predictDrawingSoon();
  },
});
$('clear').addEventListener('click', () => pad.clear());
ui.dataset.addEventListener('change', chooseDataset);
ui.idxFiles.addEventListener('change', chooseDataset);
ui.cifarFiles.addEventListener('change', chooseDataset);
ui.imageFolder.addEventListener('change', pickFolder);
for (const el of [ui.imageSize, ui.channels, ui.valSplit]) el.addEventListener('change', () => folder && chooseDataset());
ui.dropZone.addEventListener('dragover', (ev) => {
  ev.preventDefault();
  ui.dropZone.classList.add('over');
});
ui.dropZone.addEventListener('dragleave', () => ui.dropZone.classList.remove('over'));
ui.dropZone.addEventListener('drop', (ev) => void dropFolder(ev));
ui.preset.addEventListener('change', render);
ui.epochs.addEventListener('input', render);
ui.start.addEventListener('click', start);
ui.pause.addEventListener('click', togglePause);
ui.reset.addEventListener('click', reset);
ui.save.addEventListener('click', save);
ui.saveOnnx.addEventListener('click', saveOnnx);
ui.load.addEventListener('change', load);
window.addEventListener('unhandledrejection', (ev) => showError(errorText(ev.reason)));
worker.addEventListener('error', (ev) => showError(`The training worker failed: ${ev.message || 'no message'}`));

fillPresets();
render();
guarded(async () => {
  await startEngine();
  if (state.status === 'ready') chooseDataset();
})();
