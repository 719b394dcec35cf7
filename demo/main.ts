// The demo page: wires the controls, charts, pictures and drawing pad to a Trainer. Page state
// for people is the DOM; for tests it is `window.__demo`, a read-only snapshot (see DemoStatus).
import type { Dataset } from '../src/data/dataset.ts';
import { LayerShapeError } from '../src/nn/layer.ts';
import { exportOnnx } from '../src/export/onnx.ts';
import { presetNames } from '../src/nn/presets.ts';
import { MetricChart } from './charts.ts';
import { cifarFromFiles, idxFromFiles, loadBundledMnist } from './data.ts';
import { attachDrawPad, drawingToInput } from './draw.ts';
import { className, confusionMatrix, renderConfusion, renderTestGrid, weightImages } from './pictures.ts';
import { TrainingSession, type ModelConfig } from './trainer.ts';

// Load every layer module: those beyond the core (convolution, pooling...) register their layer
// kinds (for loading checkpoints) and their model presets (the CNN) when they are imported.
import.meta.glob('../src/nn/*.ts', { eager: true });

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
  datasetInfo: $('dataset-info'),
  preset: $<HTMLSelectElement>('preset'),
  hiddenRow: $('hidden-row'),
  hidden: $<HTMLInputElement>('hidden'),
  optimizer: $<HTMLSelectElement>('optimizer'),
  lr: $<HTMLInputElement>('lr'),
  batch: $<HTMLInputElement>('batch'),
  epochs: $<HTMLInputElement>('epochs'),
  seed: $<HTMLInputElement>('seed'),
  lockedHint: $('locked-hint'),
  start: $<HTMLButtonElement>('start'),
  pause: $<HTMLButtonElement>('pause'),
  reset: $<HTMLButtonElement>('reset'),
  save: $<HTMLButtonElement>('save'),
  saveOnnx: $<HTMLButtonElement>('save-onnx'),
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

const lossChart = new MetricChart($<HTMLCanvasElement>('loss-chart'), 'Loss (cross-entropy)');
const accChart = new MetricChart($<HTMLCanvasElement>('acc-chart'), 'Accuracy', 1);
const trainer = new TrainingSession((message) => showError(message));
let dataset: Dataset | null = null;
/** Bumped by Reset: work started before it (on the old device) reports nothing afterwards. */
let generation = 0;

// ---- status and errors ---------------------------------------------------------------------

const fmt = (v: number | null, digits = 4) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const pct = (v: number | null) => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);

function render(): void {
  const s = state;
  $('st-status').textContent = s.status;
  $('st-epoch').textContent = trainer.model ? String(s.epoch) : '–';
  $('st-step').textContent = trainer.model ? String(s.step) : '–';
  $('st-loss').textContent = fmt(s.lastLoss);
  $('st-acc').textContent = pct(s.lastAccuracy);
  $('st-val').textContent = s.valLoss === null ? '–' : `loss ${fmt(s.valLoss)}, accuracy ${pct(s.valAccuracy)}`;
  $('st-sps').textContent = s.samplesPerSecond === null ? '–' : Math.round(s.samplesPerSecond).toLocaleString('en-US');
  document.body.dataset.status = s.status;
  const haveEngine = trainer.engine !== null;
  const busy = s.status === 'training' || s.status === 'paused';
  const locked = trainer.model !== null || busy;
  ui.start.disabled = !haveEngine || !dataset || busy || s.status === 'error' || s.status === 'starting';
  ui.start.textContent = trainer.model ? `Train ${ui.epochs.value || '?'} more epoch(s)` : 'Start';
  ui.pause.disabled = !busy;
  ui.pause.textContent = s.status === 'paused' ? 'Resume' : 'Pause';
  ui.reset.disabled = s.status === 'starting' || s.status === 'no-webgpu';
  ui.save.disabled = !trainer.model || s.status === 'training' || s.status === 'error';
  ui.saveOnnx.disabled = ui.save.disabled;
  const canLoad = haveEngine && !!dataset && !busy && s.status !== 'error';
  ui.load.disabled = !canLoad;
  ui.loadLabel.classList.toggle('disabled', !canLoad);
  for (const el of [ui.dataset, ui.idxFiles, ui.cifarFiles, ui.preset, ui.hidden, ui.optimizer, ui.lr, ui.seed]) el.disabled = locked;
  ui.batch.disabled = ui.epochs.disabled = busy;
  ui.lockedHint.hidden = !locked;
  ui.hiddenRow.hidden = ui.preset.value !== 'mlp';
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

// ---- the GPU ---------------------------------------------------------------------------------

function showAdapter(): void {
  const a = trainer.adapter;
  if (!a) return;
  state.adapter = { name: a.name, description: a.description, isSoftware: a.isSoftware, runtime: a.runtime };
  ui.adapter.dataset.state = a.isSoftware ? 'software' : 'hardware';
  ui.adapter.replaceChildren();
  const name = document.createElement('strong');
  name.textContent = `GPU: ${a.name}${a.description ? ` (${a.description})` : ''}`;
  ui.adapter.append(name);
  if (a.isSoftware) {
    const warn = document.createElement('p');
    warn.textContent =
      'This is a SOFTWARE adapter: WebGPU is running on the CPU, not on a graphics card. Training works but is much slower, and the speed shown is not a GPU speed.';
    ui.adapter.append(warn);
  }
}

async function startEngine(): Promise<void> {
  if (!('gpu' in navigator) || !navigator.gpu) {
    state.status = 'no-webgpu';
    ui.noWebgpuReason.textContent = window.isSecureContext
      ? 'This browser has no WebGPU (navigator.gpu is missing).'
      : 'This page is not in a secure context (it is not served over https:// or from localhost), so the browser hides WebGPU.';
    ui.noWebgpu.hidden = false;
    ui.adapter.dataset.state = 'none';
    ui.adapter.textContent = 'No WebGPU in this browser.';
    render();
    return;
  }
  try {
    await trainer.start();
  } catch (err) {
    const msg = errorText(err);
    if (/no adapter|navigator\.gpu/i.test(msg)) {
      state.status = 'no-webgpu';
      ui.noWebgpuReason.textContent = msg;
      ui.noWebgpu.hidden = false;
      ui.adapter.dataset.state = 'none';
      ui.adapter.textContent = 'WebGPU has no adapter here.';
      render();
      return;
    }
    throw err;
  }
  showAdapter();
  if (state.status === 'starting') state.status = 'ready';
  render();
}

// ---- data and model settings -----------------------------------------------------------------

function setDataset(ds: Dataset): void {
  dataset = ds;
  state.dataset = { name: ds.name, train: ds.train.n, test: ds.test.n, inputShape: [...ds.inputShape] };
  ui.datasetInfo.textContent = `${ds.name}: ${ds.train.n.toLocaleString('en-US')} train, ${ds.test.n.toLocaleString('en-US')} test, ${ds.numClasses} classes, inputs [${ds.inputShape.join(', ')}]${ds.source ? ` (${ds.source})` : ''}`;
  const [c, h, w] = ds.inputShape;
  const drawable = ds.inputShape.length === 3 && c === 1 && ds.normalization.kind === 'scale255';
  ui.padPreview.width = drawable ? w : 28;
  ui.padPreview.height = drawable ? h : 28;
  ui.pad.classList.toggle('disabled', !drawable);
  ui.prediction.textContent = drawable ? (trainer.model ? 'Draw in the box.' : 'Train or load a model, then draw.') : 'Drawing needs a single-channel image dataset.';
  render();
}

const chooseDataset = guarded(async () => {
  const kind = ui.dataset.value;
  ui.idxRow.hidden = kind !== 'idx';
  ui.cifarRow.hidden = kind !== 'cifar';
  dataset = null;
  state.dataset = null;
  render();
  if (kind === 'mnist') {
    ui.datasetInfo.textContent = 'Loading the bundled MNIST digits…';
    setDataset(await loadBundledMnist());
  } else if (kind === 'idx') {
    const files = Array.from(ui.idxFiles.files ?? []);
    ui.datasetInfo.textContent = files.length ? 'Reading…' : 'Pick the IDX files.';
    if (files.length) setDataset(await idxFromFiles(files));
  } else {
    const files = Array.from(ui.cifarFiles.files ?? []);
    ui.datasetInfo.textContent = files.length ? 'Reading…' : 'Pick the CIFAR-10 .bin files.';
    if (files.length) setDataset(await cifarFromFiles(files));
  }
  clearError();
}, false);

function fillPresets(): void {
  const labels: Record<string, string> = {
    mlp: 'MLP (fully connected)',
    cnn: 'CNN for 28×28 grey images (2 conv blocks)',
    'cnn-cifar': 'CNN for 32×32 colour images (3 conv blocks)',
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

function modelConfig(): ModelConfig {
  const text = ui.hidden.value.trim();
  const hidden = text ? text.split(/[\s,]+/).map(Number) : [];
  if (hidden.some((h) => !Number.isInteger(h) || h < 1)) throw new Error(`Hidden layer sizes must be positive whole numbers separated by commas, got "${ui.hidden.value}".`);
  const lr = Number(ui.lr.value);
  if (!(lr > 0) || !Number.isFinite(lr)) throw new Error(`The learning rate must be a positive number, got "${ui.lr.value}".`);
  const seed = Number(ui.seed.value);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`The seed must be a whole number >= 0, got "${ui.seed.value}".`);
  return { preset: ui.preset.value, hidden, optimizer: ui.optimizer.value as ModelConfig['optimizer'], lr, seed };
}

// ---- training --------------------------------------------------------------------------------

function clearResults(): void {
  Object.assign(state, { step: 0, epoch: 0, lastLoss: null, lastAccuracy: null, valLoss: null, valAccuracy: null, samplesPerSecond: null, losses: [], chartPoints: 0, prediction: null });
  lossChart.clear();
  accChart.clear();
  ui.weights.replaceChildren();
  ui.testGrid.replaceChildren();
  ui.confusion.replaceChildren();
  ui.probs.replaceChildren();
  ui.summary.textContent = '';
}

async function refreshWeights(): Promise<void> {
  const ds = dataset;
  if (!trainer.model || !ds) return;
  const w = await trainer.firstWeights();
  const imgs = w ? weightImages(w.data, w.shape, ds.inputShape, 32) : null;
  if (imgs) ui.weights.replaceChildren(...imgs);
  else ui.weights.textContent = 'The first layer\u2019s weights do not have the shape of an image.';
}
/** Cheap enough to run every few seconds during training. */
const refreshWeightsSoon = latest(refreshWeights);

/** Weights, and predictions over the whole test split (at epoch ends, on pause, when done). */
async function refreshPictures(): Promise<void> {
  const ds = dataset;
  if (!trainer.model || !ds) return;
  await refreshWeights();
  if (ds.test.n > 0) {
    const preds = await trainer.testPredictions(ds);
    renderTestGrid(ui.testGrid, ds, preds);
    renderConfusion(ui.confusion, ds, confusionMatrix(ds, preds));
  }
  state.picturesUpdated++;
}
const refreshPicturesSoon = latest(refreshPictures);

function start(): void {
  let inputs: { batchSize: number; epochs: number; cfg: ModelConfig };
  try {
    if (!dataset) throw new Error('No dataset yet.');
    inputs = { batchSize: positiveInt(ui.batch, 'The batch size'), epochs: positiveInt(ui.epochs, 'The number of epochs'), cfg: modelConfig() };
  } catch (err) {
    showError(errorText(err), false);
    return;
  }
  const gen = generation;
  train(dataset!, inputs, gen).catch((err) => {
    if (gen === generation) showError(errorText(err));
  });
}

async function train(ds: Dataset, { batchSize, epochs, cfg }: { batchSize: number; epochs: number; cfg: ModelConfig }, gen: number): Promise<void> {
  clearError();
  pausing = false;
  if (!trainer.model) {
    clearResults();
    state.status = 'training';
    render();
    try {
      ui.summary.textContent = (await trainer.build(ds, cfg)).summary();
    } catch (err) {
      // A model that does not fit the data (e.g. a CIFAR CNN on MNIST) is a settings problem.
      if (!(err instanceof LayerShapeError)) throw err;
      state.status = 'ready';
      showError(errorText(err), false);
      return;
    }
  }
  state.status = 'training';
  render();
  let lastPictures = performance.now();
  await trainer.train(ds, { epochs, batchSize, seed: cfg.seed }, {
    onStep: (ev) => {
      if (gen !== generation) return;
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
      if (trainer.isTraining && state.status !== 'error') state.status = trainer.isPaused || pausing ? 'paused' : 'training';
      render();
    },
    onEpochEnd: async (ev) => {
      if (gen !== generation) return;
      state.epoch = ev.epoch;
      if (ev.valLoss !== undefined) {
        state.valLoss = ev.valLoss;
        state.valAccuracy = ev.valAccuracy ?? null;
        lossChart.add('validation', ev.step, ev.valLoss);
        if (ev.valAccuracy != null) accChart.add('validation', ev.step, ev.valAccuracy);
        state.chartPoints = lossChart.points + accChart.points;
      }
      render();
      await refreshPictures();
    },
  });
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
    trainer.resume();
    state.status = 'training';
  } else {
    // The loop stops at its next read-back (a few steps); the status says paused from now on.
    pausing = true;
    trainer.pause();
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
  await trainer.reset();
  showAdapter();
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
  download(await trainer.save(dataset), `${dataset.name}-${ui.preset.value}-step${state.step}.safetensors`);
});

// The model for onnxruntime and other runtimes: inference semantics, inputs normalised as in training.
const saveOnnx = guarded(async () => {
  if (!dataset || !trainer.model) return;
  download(await exportOnnx(trainer.model), `${dataset.name}-${ui.preset.value}-step${state.step}.onnx`);
});

const load = guarded(async () => {
  const file = ui.load.files?.[0];
  ui.load.value = '';
  if (!file || !dataset) return;
  clearError();
  const meta = await trainer.load(new Uint8Array(await file.arrayBuffer()), file.name, dataset, modelConfig());
  clearResults();
  state.step = meta.state.step;
  state.epoch = meta.state.epoch;
  state.status = 'done';
  ui.summary.textContent = `Loaded ${file.name} (trained ${meta.state.epoch} epoch(s), ${meta.state.step} steps${meta.dataset ? ` on ${meta.dataset.name}` : ''}).\n${trainer.model!.summary()}`;
  render();
  await refreshPictures();
  predictDrawingSoon();
}, false);

// ---- drawing pad -----------------------------------------------------------------------------

async function predictDrawing(): Promise<void> {
  const ds = dataset;
  if (!ds || ds.inputShape.length !== 3 || ds.inputShape[0] !== 1) return;
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
    ui.prediction.textContent = trainer.model ? 'Draw in the box.' : 'Train or load a model, then draw.';
    return;
  }
  if (!trainer.model || state.status === 'error') return;
  const probs = await trainer.probabilities(x, 1);
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
ui.preset.addEventListener('change', render);
ui.epochs.addEventListener('input', render);
ui.start.addEventListener('click', start);
ui.pause.addEventListener('click', togglePause);
ui.reset.addEventListener('click', reset);
ui.save.addEventListener('click', save);
ui.saveOnnx.addEventListener('click', saveOnnx);
ui.load.addEventListener('change', load);
window.addEventListener('unhandledrejection', (ev) => showError(errorText(ev.reason)));

fillPresets();
render();
chooseDataset();
guarded(startEngine)();
