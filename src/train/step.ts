// One training step, as one object: for a model, a loss, an optimizer and a batch size, it writes
// a batch, writes the step's values (step number, dropout flag, learning rate, the optimizer's
// values) into the per-step uniform once, records forward, loss, backward and the optimizer
// update into one submission, and keeps a window of per-step losses on the GPU that the host
// reads when it asks. `fit`, the benchmarks, the demo and a user's own loop all step through it.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import { packStepValues } from '../kernels/step.ts';
import type { Model, ModelPlan } from '../nn/model.ts';
import type { Optimizer } from '../optim/optimizer.ts';
import { planLoss, type LossKind, type LossOptions, type LossPlan } from './loss.ts';
import { StatsRecorder, type StatsOptions } from './stats.ts';

/** Where training stands: saved in checkpoints so that a resumed run continues exactly. */
export interface TrainState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** Seed of the data order (shuffling and augmentation). */
  dataSeed: number;
  /**
   * Batches of the epoch in progress (number `epoch`, 0-based) already trained: 0 (or absent) at
   * an epoch boundary. A checkpoint taken within an epoch resumes at this batch of the same
   * epoch order.
   */
  batch?: number;
  /** The data the batches were cut from: a mid-epoch resume continues only on the same cut. */
  data?: EpochData;
  /** Sums over the batches of the epoch in progress, so that a resumed epoch reports all of it. */
  epochSoFar?: EpochSums;
}

/** How the training batches are cut: what must match for a mid-epoch resume to continue exactly. */
export interface EpochData {
  /** Training samples. */
  samples: number;
  /** Samples per batch (the batch size, at most `samples`); a short last batch is dropped. */
  batchSize: number;
  shuffle: boolean;
  /** Augmentation settings, null for none. */
  augment: { pad?: number; flip?: boolean } | null;
  /** A hash of the training split's stored samples and targets (src/train/resume.ts). */
  fingerprint: string;
}

/** Per-sample loss and correct-prediction sums and seconds, over the batches trained so far in an epoch. */
export interface EpochSums {
  loss: number;
  correct: number;
  seconds: number;
}

/** Which part of a training step a dispatch belongs to ('stats': a StatsRecorder's, on the steps it watches). */
export type StepPhase = 'forward' | 'loss' | 'backward' | 'clip' | 'optimizer' | 'stats';

export interface PhasedDispatch {
  phase: StepPhase;
  /** Position within its phase. */
  index: number;
  dispatch: Dispatch;
}

export interface StepOptions {
  /** Dropout active in this step (default true); false trains this step with dropout off. */
  dropout?: boolean;
  /**
   * Per-layer statistics, taken on the steps this recorder is due (made by `statsRecorder` for
   * this step): recorded in the step's own submission and read back later, without waiting.
   */
  stats?: StatsRecorder;
}

/** The window of per-step losses read back: mean loss and accuracy (null without one) per step, oldest first. */
export interface StepResults {
  losses: number[];
  accuracies: (number | null)[];
}

export class TrainStep {
  private sinceRead = 0;

  private constructor(
    readonly engine: Engine,
    readonly model: Model,
    readonly optimizer: Optimizer,
    readonly state: TrainState,
    readonly net: ModelPlan,
    readonly loss: LossPlan,
    private readonly clip: Dispatch[],
  ) {}

  /**
   * Plan a built model for `batch` samples, with a loss window of `window` steps. `clip` are the
   * dispatches that clip the gradients between backward and the update (none: no clipping).
   */
  static async create(model: Model, optimizer: Optimizer, lossKind: LossKind, state: TrainState, batch: number, window: number, opts: LossOptions & { clip?: Dispatch[] } = {}): Promise<TrainStep> {
    const e = model.engine;
    if (!e) throw new Error('TrainStep: build the model first.');
    const net = await model.plan(batch, { softmaxInLoss: lossKind === 'softmax_cross_entropy' });
    const loss = await planLoss(e, lossKind, { batch, prediction: net.lossInput, dPrediction: net.dOutput }, Math.max(1, window), model.stepValues, opts);
    return new TrainStep(e, model, optimizer, state, net, loss, opts.clip ?? []);
  }

  get batch(): number {
    return this.net.batch;
  }

  get window(): number {
    return this.loss.window;
  }

  /** Upload a batch: inputs [batch, ...inputShape] (one array per model input) and the loss's targets. */
  write(x: Float32Array | Float32Array[], targets: Float32Array): void {
    const xs = Array.isArray(x) ? x : [x];
    if (xs.length !== this.net.inputs.length) throw new Error(`TrainStep: the model has ${this.net.inputs.length} inputs; ${xs.length} were given.`);
    xs.forEach((data, i) => this.engine.write(this.net.inputs[i], data));
    this.engine.write(this.loss.targets, targets);
  }

  /** Write the per-step values of the next step (state.step) and check that the plan can train. */
  private prepare(opts: StepOptions): void {
    const step = this.state.step;
    this.net.beforeStep(step);
    const lr = this.optimizer.lrAt(step);
    this.engine.writeBuffer(this.model.stepValues, packStepValues({ step, dropout: opts.dropout ?? true, lr, extra: this.optimizer.stepValues(step) }));
  }

  /** The next step's dispatches in order, labelled by phase (profiling); its per-step values are written. */
  dispatches(opts: StepOptions = {}): PhasedDispatch[] {
    this.prepare(opts);
    const phases: [StepPhase, Dispatch[]][] = [
      ['forward', this.net.forward],
      ['loss', this.loss.dispatches],
      ['backward', this.net.backward],
      ['clip', this.clip],
      ['optimizer', this.optimizer.dispatches()],
    ];
    const list = phases.flatMap(([phase, ds]) => ds.map((dispatch, index) => ({ phase, index, dispatch })));
    return opts.stats?.due(this.state.step) ? opts.stats.weave(this.net, list) : list;
  }

  /** A recorder of per-layer statistics for this step's plan (see src/train/stats.ts); pass it to `record`. */
  statsRecorder(opts: StatsOptions): Promise<StatsRecorder> {
    return StatsRecorder.create({ engine: this.engine, net: this.net, params: this.model.params() }, opts);
  }

  /**
   * Record and submit one training step on the batch last written (does not wait for it). Throws
   * when the loss window is full: read it (readLosses) at least every `window` steps.
   */
  record(opts: StepOptions = {}): void {
    if (this.sinceRead >= this.loss.window) {
      throw new Error(`TrainStep: ${this.sinceRead} steps recorded since the losses were last read; read them (readLosses) every ${this.loss.window} steps.`);
    }
    const readback = opts.stats?.start(this.net, this.state.step) ?? null;
    const dispatches = this.dispatches({ ...opts, stats: readback ? opts.stats : undefined });
    readback?.before();
    this.engine.run(...dispatches.map((d) => d.dispatch));
    readback?.copy();
    this.engine.flush();
    readback?.map();
    this.state.step++;
    this.sinceRead++;
  }

  /** Steps recorded since the losses were last read. */
  get pending(): number {
    return this.sinceRead;
  }

  /** Mean loss (and accuracy) of each step since the last read, oldest first; clears the window. */
  async readLosses(): Promise<StepResults> {
    const n = this.sinceRead;
    if (n === 0) return { losses: [], accuracies: [] };
    const acc = await this.loss.acc.read();
    const w = this.loss.window;
    const B = this.net.batch;
    const out: StepResults = { losses: [], accuracies: [] };
    for (let s = this.state.step - n; s < this.state.step; s++) {
      out.losses.push(acc[s % w] / B);
      out.accuracies.push(this.loss.hasAccuracy ? acc[w + (s % w)] / B : null);
    }
    this.engine.fill(this.loss.acc, 0);
    this.sinceRead = 0;
    return out;
  }

  /** Free the loss plan (the model's plan stays cached on the model). */
  dispose(): void {
    this.loss.dispose();
  }
}
