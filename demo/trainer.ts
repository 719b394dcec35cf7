// The demo's training session, run inside the training worker (worker.ts): one engine (GPU device)
// and at most one model at a time, training with pause/resume and stop, the reads the page shows
// (predictions, weights, saliency and attention, checkpoints), and the last state copied to the
// worker's memory, from which training resumes when the device is lost. Reset destroys the device
// and makes a new one. No DOM here.
import { Engine } from '../src/gpu/engine.ts';
import type { AdapterReport } from '../src/gpu/device.ts';
import { Batcher } from '../src/data/batcher.ts';
import { sampleSize, type Dataset } from '../src/data/dataset.ts';
import type { Model } from '../src/nn/model.ts';
import { predict, Trainer, type EpochEvent, type StepEvent } from '../src/train/trainer.ts';
import { checkpointBytes, datasetInfo, loadWeights, modelFromCheckpoint, readCheckpoint, trainerFromCheckpoint, type CheckpointMeta } from '../src/train/checkpoint.ts';
import { makePreset } from '../src/nn/presets.ts';
import type { StatsSnapshot } from '../src/train/stats-series.ts';
import { softmaxRows } from '../src/train/metrics.ts';
import type { ModelConfig } from './protocol.ts';

export type { ModelConfig } from './protocol.ts';

/** Test predictions, index-aligned with the test split. */
export interface TestPredictions {
  predicted: Int32Array;
  /** Probabilities of the predicted class. */
  confidence: Float32Array;
}

/** The last state copied from the GPU to the worker's memory: a checkpoint, and where training stood. */
export interface Snapshot {
  bytes: Uint8Array;
  step: number;
  epoch: number;
}

export interface TrainCallbacks {
  onStep(ev: StepEvent): Promise<void> | void;
  onEpochEnd(ev: EpochEvent): Promise<void> | void;
  /** Per-layer statistics, when asked for (delivered a few steps after their own, never inside a step). */
  onStats?(snapshot: StatsSnapshot): void;
}

/** Read the loss back every this many steps: the chart's resolution and the pause latency. */
export const LOG_EVERY = 5;

/** Histogram bins of the per-layer statistics (the rows of the page's heat strips come from them). */
export const STATS_BINS = 32;

export class TrainingSession {
  engine: Engine | null = null;
  model: Model | null = null;
  trainer: Trainer | null = null;
  private stopRequested = false;
  /** Pause asked for: the loop holds at its next read-back. */
  pauseRequested = false;
  private release: (() => void) | null = null;
  private running: Promise<unknown> | null = null;
  /** The last state copied to memory (see snapshot()); training resumes from it after a device loss. */
  last: Snapshot | null = null;

  /** Called when the current device is lost (not when Reset destroys it). */
  constructor(private onLost: (message: string) => void) {}

  get adapter(): AdapterReport | null {
    return this.engine?.adapter ?? null;
  }

  get isTraining(): boolean {
    return this.running !== null;
  }

  get isPaused(): boolean {
    return this.release !== null;
  }

  /** Create the engine on navigator.gpu; throws a message that says what the browser lacks. */
  async start(): Promise<Engine> {
    const e = await Engine.create({ log: (line) => console.info(line) });
    this.engine = e;
    e.lost.then((info) => {
      if (this.engine === e) this.onLost(`The GPU device was lost (${info.reason ?? 'unknown'}): ${info.message || 'no message'}. Press Reset to start again on a new device.`);
    });
    return e;
  }

  /** Build and compile a fresh model for a dataset. */
  async build(ds: Dataset, cfg: ModelConfig): Promise<Model> {
    const e = this.requireEngine();
    this.disposeModel();
    const model = makePreset(cfg.preset, ds.numClasses, { hidden: cfg.hidden, depth: cfg.depth, width: cfg.width, heads: cfg.heads, patch: cfg.patch });
    try {
      await model.build(e, ds.inputShape, { seed: cfg.seed });
      this.trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: cfg.optimizer, lr: cfg.lr } });
    } catch (err) {
      model.dispose();
      throw err;
    }
    this.model = model;
    return model;
  }

  /**
   * Train `epochs` more epochs; resolves when they are done or training was stopped. With
   * `statsEvery` (> 0) and `cb.onStats`, per-layer statistics every that many steps.
   */
  async train(ds: Dataset, opts: { epochs: number; batchSize: number; seed: number; statsEvery?: number }, cb: TrainCallbacks): Promise<EpochEvent[]> {
    const trainer = this.trainer;
    if (!trainer) throw new Error('Build or load a model before training.');
    if (this.running) throw new Error('Training is already running.');
    this.stopRequested = false;
    this.pauseRequested = false;
    const run = trainer.fit(ds, {
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      seed: opts.seed,
      validation: ds.test,
      logEvery: LOG_EVERY,
      onStep: async (ev) => {
        await cb.onStep(ev);
        // Pausing holds the training loop here, between steps, with no GPU work in flight.
        if (this.pauseRequested && !this.stopRequested) await new Promise<void>((r) => (this.release = r));
        this.release = null;
      },
      onEpochEnd: (ev) => cb.onEpochEnd(ev),
      shouldStop: () => this.stopRequested,
      stats: opts.statsEvery && cb.onStats ? { every: opts.statsEvery, bins: STATS_BINS, onSnapshot: cb.onStats } : undefined,
    });
    this.running = run;
    try {
      return await run;
    } finally {
      if (this.running === run) this.running = null;
    }
  }

  pause(): void {
    this.pauseRequested = true;
  }

  resume(): void {
    this.pauseRequested = false;
    this.release?.();
  }

  /** Stop training after the current step (a paused run is released first). */
  async stop(): Promise<void> {
    this.stopRequested = true;
    this.resume();
    const run = this.running;
    // A run stuck on a broken device must not keep Reset from working: wait a little, then go on.
    if (run) await Promise.race([run.catch(() => undefined), new Promise((r) => setTimeout(r, 3000))]);
  }

  /** Stop, free the model, destroy the device and create a new one. */
  async reset(): Promise<Engine> {
    await this.stop();
    this.running = null;
    const old = this.engine;
    this.engine = null;
    this.disposeModel();
    this.last = null;
    old?.destroy();
    return this.start();
  }

  /** Copy the model, its optimizer state and where training stands to memory (a checkpoint). */
  async snapshot(ds: Dataset): Promise<Snapshot> {
    const t = this.trainer;
    if (!t) throw new Error('No model to copy.');
    const snap = { bytes: await this.save(ds), step: t.state.step, epoch: t.state.epoch };
    this.last = snap;
    return snap;
  }

  /**
   * After a device loss: a new engine, and the model and trainer rebuilt from the last snapshot
   * (null when there is none). The lost device's objects are dropped, not freed.
   */
  async replaceLostDevice(ds: Dataset | null, fallback: ModelConfig): Promise<Snapshot | null> {
    const snap = this.last;
    this.model = null;
    this.trainer = null;
    this.engine = null;
    this.running = null;
    await this.start();
    if (snap && ds) await this.load(snap.bytes, `the state copied at step ${snap.step}`, ds, fallback);
    this.last = snap;
    return snap;
  }

  /** Class probabilities [n, classes] for `n` model inputs (already normalised). */
  async probabilities(x: Float32Array, n: number): Promise<Float32Array> {
    const model = this.requireModel();
    const c = model.outputShape.reduce((a, b) => a * b, 1);
    return softmaxRows(await predict(model, x, n), c);
  }

  /** Predicted class and its probability for every test sample (normalised as in training). */
  async testPredictions(ds: Dataset, batchSize = 500): Promise<TestPredictions> {
    const model = this.requireModel();
    const n = ds.test.n;
    const S = sampleSize(ds);
    const batcher = new Batcher(ds.test, ds, { batchSize, shuffle: false, seed: 0 });
    const x = new Float32Array(batchSize * S);
    const y = new Float32Array(batchSize);
    const predicted = new Int32Array(n);
    const confidence = new Float32Array(n);
    const C = model.outputShape.reduce((a, b) => a * b, 1);
    for (let b = 0; b < batcher.numBatches; b++) {
      const count = batcher.fill(0, b, x, y);
      const p = await this.probabilities(x.subarray(0, count * S), count);
      for (let i = 0; i < count; i++) {
        let best = 0;
        for (let k = 1; k < C; k++) if (p[i * C + k] > p[i * C + best]) best = k;
        predicted[b * batchSize + i] = best;
        confidence[b * batchSize + i] = p[i * C + best];
      }
    }
    return { predicted, confidence };
  }

  /** The first weight tensor of the model (the first Dense or convolution layer), read back. */
  async firstWeights(): Promise<{ data: Float32Array; shape: readonly number[] } | null> {
    const p = this.model?.params().find((q) => q.name.endsWith('.weight'));
    if (!p) return null;
    return { data: await p.value.read(), shape: p.value.shape };
  }

  /** A safetensors checkpoint of the model, its optimizer state and the dataset's description. */
  save(ds: Dataset): Promise<Uint8Array> {
    return checkpointBytes(this.trainer ?? this.requireModel(), datasetInfo(ds));
  }

  /** Replace the model with one from a checkpoint file's bytes; it must take the dataset's inputs. */
  async load(bytes: Uint8Array, label: string, ds: Dataset, fallback: ModelConfig): Promise<CheckpointMeta> {
    const e = this.requireEngine();
    const ckpt = readCheckpoint(bytes, label);
    const want = ds.inputShape.join('x');
    if (ckpt.meta.model.inputShape.join('x') !== want) {
      throw new Error(`${label}: this model takes inputs of shape [${ckpt.meta.model.inputShape.join(', ')}], but the dataset "${ds.name}" has [${ds.inputShape.join(', ')}]. Choose the dataset it was trained on first.`);
    }
    let trainer: Trainer;
    if (ckpt.meta.loss && ckpt.meta.optimizer) trainer = await trainerFromCheckpoint(e, ckpt, label);
    else {
      // A weights-only checkpoint has no optimizer: use the page's settings to continue training.
      const model = await modelFromCheckpoint(e, ckpt, label);
      trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: fallback.optimizer, lr: fallback.lr } });
      loadWeights(model, ckpt.tensors, label, trainer);
    }
    this.disposeModel();
    this.model = trainer.model;
    this.trainer = trainer;
    return ckpt.meta;
  }

  disposeModel(): void {
    try {
      this.trainer?.dispose();
      this.model?.dispose();
    } catch {
      // A lost device can make freeing fail; the model is dropped either way.
    }
    this.model = null;
    this.trainer = null;
  }

  private requireEngine(): Engine {
    if (!this.engine) throw new Error('No GPU device: press Reset to create one.');
    return this.engine;
  }

  private requireModel(): Model {
    if (!this.model) throw new Error('No model yet: train or load one.');
    return this.model;
  }
}
