// Training any model: a Trainer holds what training adds to a model (a loss, an optimizer and its
// state, where training stands) and runs `fit`, `evaluate`, `predict` and single steps. Each step
// goes through a TrainStep (src/train/step.ts): one submission, the loss read back only every
// `logEvery` steps and at epoch ends.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { clipFactor, scaleByFactor, sumSquares } from '../kernels/clip.ts';
import { Batcher } from '../data/batcher.ts';
import type { AugmentOptions } from '../data/augment.ts';
import { sampleSize, type Dataset, type Split } from '../data/dataset.ts';
import type { Model } from '../nn/model.ts';
import type { Param } from '../nn/op.ts';
import { Optimizer, type OptimizerConfig } from '../optim/optimizer.ts';
import { DivergenceError, DivergenceGuard, type DivergenceOptions } from './divergence.ts';
import { planLoss, targetWidth, type LossKind, type LossPlan } from './loss.ts';
import { epochData, resumeMismatch, describePosition } from './resume.ts';
import type { StatsOptions, StatsRecorder } from './stats.ts';
import { TrainStep, type StepOptions, type TrainState } from './step.ts';

export type { TrainState } from './step.ts';
export { DivergenceError, type DivergenceOptions } from './divergence.ts';

export interface CompileOptions {
  loss: LossKind;
  optimizer: OptimizerConfig;
  /** Softmax cross-entropy: the target is (1 - e) onehot + e / C. Default 0. */
  labelSmoothing?: number;
  /** Clip the gradients to this global L2 norm before each update (on the GPU). Default: no clipping. */
  clipNorm?: number;
}

export interface StepEvent {
  epoch: number;
  /** Batch index within the epoch. */
  batch: number;
  batches: number;
  step: number;
  /** Mean loss over the steps since the last report. */
  loss: number;
  accuracy: number | null;
  samplesPerSecond: number;
  lr: number;
}

export interface EpochEvent {
  epoch: number;
  loss: number;
  accuracy: number | null;
  valLoss?: number;
  valAccuracy?: number | null;
  seconds: number;
  samplesPerSecond: number;
  step: number;
}

export interface FitOptions {
  epochs: number;
  batchSize?: number;
  /** Data order seed (default: the model seed). Ignored when resuming: the saved one is used. */
  seed?: number;
  /** Shuffle the training data each epoch (default true). */
  shuffle?: boolean;
  /** Evaluated at the end of each epoch. */
  validation?: Split;
  /** Read the loss back every this many steps (default 25). */
  logEvery?: number;
  augment?: AugmentOptions;
  onStep?(ev: StepEvent): void | Promise<void>;
  /** Called after each epoch; an async callback (e.g. a checkpoint save) is awaited before the next. */
  onEpochEnd?(ev: EpochEvent): void | Promise<void>;
  /**
   * Checked after every step; when it returns true training stops after that step. Within an
   * epoch, `state` then says where (`state.batch`), and a checkpoint of the trainer taken now
   * resumes there exactly.
   */
  shouldStop?(): boolean;
  /**
   * When `onCheckpoint` is called within an epoch: every `steps` optimizer steps (when the step
   * count is a multiple of it, so a resumed run keeps the same cadence), and/or once `seconds` of
   * wall time have passed since the last call or epoch end. Never at an epoch's last batch: the
   * epoch end (onEpochEnd) comes right after it.
   */
  checkpointEvery?: { steps?: number; seconds?: number };
  /**
   * Called between steps within an epoch when a checkpoint is due (see checkpointEvery), after
   * the losses so far were read and found sound; `state` is then mid-epoch. Awaited.
   */
  onCheckpoint?(ev: CheckpointEvent): void | Promise<void>;
  /** Also stop (DivergenceError) on a finite loss that grows (see DivergenceGuard). */
  divergence?: DivergenceOptions;
  /**
   * Per-layer statistics every `stats.every` steps (src/train/stats.ts), delivered to
   * `stats.onSnapshot` while training runs; all of them are delivered before fit returns.
   */
  stats?: StatsOptions;
}

/** Where training stands when a checkpoint within an epoch is due. */
export interface CheckpointEvent {
  /** The epoch in progress, 0-based (as StepEvent). */
  epoch: number;
  /** Batches of it trained. */
  batch: number;
  batches: number;
  step: number;
}

export interface EvalResult {
  loss: number;
  accuracy: number | null;
  n: number;
  /** The model's outputs for every sample, in split order ([n * outputSize]), when asked for. */
  outputs?: Float32Array;
}

export interface EvaluateOptions {
  /** Samples per evaluation batch (default 500). */
  batchSize?: number;
  /** Also return every sample's output (logits, probabilities or predictions): one readback per batch. */
  outputs?: boolean;
}

/** Samples per evaluation batch (evaluate, predict): also what a pre-flight check plans for. */
export const EVAL_BATCH = 500;
const SYNC_EVERY = 8;

/** A state taken within an epoch, and data or batching that would cut other batches than it was trained on. */
export class ResumeMismatchError extends Error {
  constructor(
    readonly state: TrainState,
    /** What differs, saved value first. */
    readonly differences: string[],
  ) {
    super(`Cannot continue within the epoch (${describePosition(state)}): it was cut from ${differences.join('; ')}. Continue on the same data and batching, or from a checkpoint at an epoch end.`);
    this.name = 'ResumeMismatchError';
  }
}

/** Check that a dataset's samples and classes fit a model's input and output. */
function checkData(model: Model, data: Dataset, loss: LossKind | null): void {
  if (model.inputShapes.length !== 1) throw new Error(`The model has ${model.inputShapes.length} inputs; datasets feed one. Feed it with TrainStep.write or trainer.step.`);
  if (data.inputShape.join('x') !== model.inputShape.join('x')) {
    throw new Error(`Dataset "${data.name}" has samples of shape [${data.inputShape.join(', ')}], but the model was built for [${model.inputShape.join(', ')}].`);
  }
  const out = model.outputShape.reduce((a, b) => a * b, 1);
  if (loss === 'softmax_cross_entropy' && data.numClasses !== out) {
    throw new Error(`Dataset "${data.name}" has ${data.numClasses} classes, but the model outputs ${out} values.`);
  }
}

export class Trainer {
  private readonly current: TrainState = { epoch: 0, step: 0, dataSeed: 0 };

  /** Where training stands. Its planned steps hold this same object: assigning one copies it in. */
  get state(): TrainState {
    return this.current;
  }

  set state(s: TrainState) {
    for (const k of Object.keys(this.current) as (keyof TrainState)[]) delete this.current[k];
    Object.assign(this.current, structuredClone(s));
  }
  private steps = new Map<string, TrainStep>();
  private evalLosses = new Map<number, LossPlan>();
  private last: TrainStep | null = null;
  /** The statistics recorder of the fit in progress (freed when it ends, or by dispose after a failure). */
  private fitStats: StatsRecorder | null = null;

  private constructor(
    readonly model: Model,
    readonly lossKind: LossKind,
    readonly optimizer: Optimizer,
    /** Label smoothing and gradient clipping, as given (saved in checkpoints). */
    readonly settings: { labelSmoothing: number; clipNorm: number | null },
    private readonly clip: GradientClip | null,
  ) {
    this.state.dataSeed = model.seed;
  }

  /** A trainer for a built model: allocates the optimizer's state (and the clipping's) on the GPU. */
  static async create(model: Model, opts: CompileOptions): Promise<Trainer> {
    const e = model.engine;
    if (!e) throw new Error('Build the model before making a Trainer for it (model.build(engine, inputShape)).');
    const labelSmoothing = opts.labelSmoothing ?? 0;
    if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new Error(`Label smoothing must be in [0, 1), got ${opts.labelSmoothing}.`);
    if (labelSmoothing && opts.loss !== 'softmax_cross_entropy') throw new Error(`Label smoothing applies to softmax cross-entropy, not to ${opts.loss}.`);
    if (opts.clipNorm !== undefined && !(opts.clipNorm > 0 && Number.isFinite(opts.clipNorm))) throw new Error(`The gradient clipping norm must be a positive number, got ${opts.clipNorm}.`);
    const optimizer = new Optimizer(opts.optimizer);
    await optimizer.attach(e, model.params(), model.stepValues);
    const clip = opts.clipNorm ? await GradientClip.create(e, model.params(), opts.clipNorm) : null;
    return new Trainer(model, opts.loss, optimizer, { labelSmoothing, clipNorm: opts.clipNorm ?? null }, clip);
  }

  /** The global gradient norm of the last step before clipping (only with clipNorm; a readback). */
  async gradientNorm(): Promise<number> {
    if (!this.clip) throw new Error('gradientNorm() needs gradient clipping (clipNorm), which measures it.');
    return (await this.clip.factor.read())[1];
  }

  private get engine(): Engine {
    const e = this.model.engine;
    if (!e) throw new Error('The model was disposed.');
    return e;
  }

  /** Targets per sample expected by the loss. */
  get targetWidth(): number {
    return targetWidth(
      this.lossKind,
      this.model.outputShape.reduce((a, b) => a * b, 1),
    );
  }

  /** The step object for a batch size and loss window (made once, then reused). */
  async trainStep(batch: number, window = 25): Promise<TrainStep> {
    const key = `${batch}:${window}`;
    let s = this.steps.get(key);
    if (!s) {
      s = await TrainStep.create(this.model, this.optimizer, this.lossKind, this.state, batch, window, { labelSmoothing: this.settings.labelSmoothing, clip: this.clip?.dispatches });
      this.steps.set(key, s);
    }
    return s;
  }

  /**
   * One training step on a given batch (x: [batch, ...inputShape] per model input; targets as the
   * loss wants them: class indices for softmax cross-entropy). Returns the step's mean loss when
   * `readLoss` (a wait for the GPU), else null. `dropout: false` trains this step with dropout off.
   */
  async step(x: Float32Array | Float32Array[], targets: Float32Array, opts: StepOptions & { readLoss?: boolean } = {}): Promise<number | null> {
    const first = Array.isArray(x) ? x[0] : x;
    const batch = first.length / sampleSize({ inputShape: [...this.model.inputShape] });
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`Trainer.step: ${first.length} input values are not a whole number of samples of [${this.model.inputShape.join(', ')}].`);
    const s = await this.trainStep(batch, 1);
    if (s.pending) await s.readLosses();
    s.write(x, targets);
    s.record(opts);
    this.last = s;
    if (!opts.readLoss) return null;
    const r = await s.readLosses();
    return r.losses[0];
  }

  /** The gradient of a parameter (by name, e.g. `layers.0.weight`) after the last step. */
  async gradient(name: string): Promise<Float32Array> {
    return (await this.param(name).grad.read()) as Float32Array;
  }

  private param(name: string): Param {
    const p = this.model.params().find((q) => q.name === name);
    if (!p)
      throw new Error(
        `The model has no parameter "${name}" (it has: ${this.model
          .params()
          .map((q) => q.name)
          .join(', ')}).`,
      );
    return p;
  }

  /** The model's output (what the loss read: the logits) of the last training step. */
  async lastOutput(): Promise<Float32Array> {
    if (!this.last) throw new Error('No training step has run yet.');
    return this.last.net.lossInput.read();
  }

  /**
   * Train for `epochs` more epochs, continuing from `state` when resumed: an epoch stopped within
   * (`state.batch` > 0) counts as the first of them and continues at its next batch, on the same
   * batches (see src/train/resume.ts). Returns the events of the epochs completed.
   */
  async fit(data: Dataset, opts: FitOptions): Promise<EpochEvent[]> {
    const e = this.engine;
    checkData(this.model, data, this.lossKind);
    const batchSize = opts.batchSize ?? 64;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`fit: batchSize must be a positive integer, got ${batchSize}.`);
    if (!Number.isInteger(opts.epochs) || opts.epochs < 0) throw new Error(`fit: epochs must be a non-negative integer, got ${opts.epochs}.`);
    if (opts.stats && !opts.stats.onSnapshot) throw new Error('fit: stats needs an onSnapshot callback: the snapshots go there (fit frees its recorder when it returns).');
    if (this.state.step === 0 && opts.seed !== undefined) this.state.dataSeed = opts.seed;
    const window = Math.max(1, opts.logEvery ?? 25);
    const bs = Math.min(batchSize, data.train.n);
    const shuffle = opts.shuffle ?? true;
    const cut = epochData(data, bs, shuffle, opts.augment);
    const mismatch = resumeMismatch(this.state, cut);
    if (mismatch.length) throw new ResumeMismatchError(this.state, mismatch);
    const batcher = new Batcher(data.train, data, { batchSize: bs, shuffle, seed: this.state.dataSeed, dropLast: true, augment: opts.augment });
    const step = await this.trainStep(bs, window);
    if (step.pending) await step.readLosses();
    this.last = step;
    this.fitStats?.dispose();
    this.fitStats = opts.stats ? await step.statsRecorder(opts.stats) : null;
    const recordOpts: StepOptions = this.fitStats ? { stats: this.fitStats } : {};
    const xHost = new Float32Array(step.net.input.size);
    const yHost = new Float32Array(step.loss.targets.size);
    const guard = opts.divergence ? new DivergenceGuard(opts.divergence) : null;
    const every = opts.checkpointEvery ?? {};
    const events: EpochEvent[] = [];
    const endEpoch = this.state.epoch + opts.epochs;
    for (let epoch = this.state.epoch; epoch < endEpoch; epoch++) {
      const t0 = performance.now();
      let tWindow = t0;
      let tCheckpoint = t0;
      const firstBatch = this.state.batch ?? 0;
      // A resumed epoch reports all of its batches: those before the checkpoint come from it.
      const carried = firstBatch > 0 ? this.state.epochSoFar : undefined;
      const before = carried ?? { loss: 0, correct: 0, seconds: 0 };
      let sumLoss = before.loss;
      let sumCorrect = before.correct;
      let seen = carried ? firstBatch * bs : 0;
      this.state.data = cut;
      const soFar = () => {
        this.state.epochSoFar = { loss: sumLoss, correct: sumCorrect, seconds: before.seconds + (performance.now() - t0) / 1000 };
      };
      const readWindow = async (batchIdx: number) => {
        const steps = step.pending;
        if (steps === 0) return;
        const first = this.state.step - steps;
        const r = await step.readLosses();
        r.losses.forEach((l, i) => {
          if (!Number.isFinite(l)) throw new DivergenceError(first + i, l);
        });
        const l = r.losses.reduce((a, b) => a + b, 0);
        const c = r.accuracies.reduce<number>((a, b) => a + (b ?? 0), 0);
        guard?.check(this.state.step, l / steps);
        sumLoss += l * bs;
        sumCorrect += c * bs;
        seen += steps * bs;
        soFar();
        const now = performance.now();
        const ev: StepEvent = {
          epoch,
          batch: batchIdx,
          batches: batcher.numBatches,
          step: this.state.step,
          loss: l / steps,
          accuracy: step.loss.hasAccuracy ? c / steps : null,
          samplesPerSecond: (steps * bs) / ((now - tWindow) / 1000),
          lr: this.optimizer.lrAt(this.state.step - 1),
        };
        tWindow = now;
        await opts.onStep?.(ev);
      };
      const checkpointDue = (b: number) => {
        if (!opts.onCheckpoint || b >= batcher.numBatches) return false;
        if (every.steps && this.state.step % every.steps === 0) return true;
        return every.seconds !== undefined && performance.now() - tCheckpoint >= every.seconds * 1000;
      };
      let stopped = false;
      for (let b = firstBatch; b < batcher.numBatches; b++) {
        batcher.fill(epoch, b, xHost, yHost);
        step.write(xHost, yHost);
        step.record(recordOpts);
        this.state.batch = b + 1;
        // Every few steps, wait for the queue to drain: the queue stays bounded, GPU errors and
        // device loss surface, and the event loop gets a turn. Waiting every step costs more (a
        // completion callback has latency of its own).
        if (this.state.step % SYNC_EVERY === 0) await e.sync();
        if (step.pending >= window) await readWindow(b + 1);
        if (checkpointDue(b + 1)) {
          // The losses up to here are read (and checked) first: a diverged state is never handed out.
          await readWindow(b + 1);
          soFar();
          await opts.onCheckpoint!({ epoch, batch: b + 1, batches: batcher.numBatches, step: this.state.step });
          tCheckpoint = performance.now();
        }
        if (opts.shouldStop?.()) {
          stopped = true;
          break;
        }
      }
      await readWindow(this.state.batch ?? 0);
      if (stopped && (this.state.batch ?? 0) < batcher.numBatches) {
        soFar();
        break; // stopped within the epoch: state says where, and the epoch is not counted yet
      }
      const seconds = before.seconds + (performance.now() - t0) / 1000;
      this.state.epoch = epoch + 1;
      this.state.batch = 0;
      delete this.state.epochSoFar;
      const ev: EpochEvent = {
        epoch: epoch + 1,
        loss: sumLoss / seen,
        accuracy: step.loss.hasAccuracy ? sumCorrect / seen : null,
        seconds,
        samplesPerSecond: seen / seconds,
        step: this.state.step,
      };
      if (opts.validation) {
        const v = await this.evaluate(opts.validation, data);
        ev.valLoss = v.loss;
        ev.valAccuracy = v.accuracy;
      }
      events.push(ev);
      await opts.onEpochEnd?.(ev);
      if (stopped) break;
    }
    await e.sync();
    const stats = this.fitStats;
    this.fitStats = null;
    if (stats) await stats.drain().finally(() => stats.dispose());
    return events;
  }

  /**
   * Mean loss and accuracy over a split, in evaluation mode (dropout off, running statistics);
   * with `outputs`, also the model's output for every sample.
   */
  async evaluate(split: Split, data: Dataset, opts: EvaluateOptions | number = {}): Promise<EvalResult> {
    const { batchSize = EVAL_BATCH, outputs: keep = false } = typeof opts === 'number' ? { batchSize: opts } : opts;
    const e = this.engine;
    checkData(this.model, data, this.lossKind);
    if (split.n === 0) throw new Error(`evaluate: the split of "${data.name}" is empty.`);
    const bs = Math.min(batchSize, split.n);
    const batcher = new Batcher(split, data, { batchSize: bs, shuffle: false, seed: 0 });
    let sumLoss = 0;
    let sumCorrect = 0;
    let hasAcc = false;
    const outSize = this.model.outputShape.reduce((a, b) => a * b, 1);
    const outputs = keep ? new Float32Array(split.n * outSize) : undefined;
    for (let b = 0; b < batcher.numBatches; b++) {
      const n = Math.min(bs, split.n - b * bs);
      const net = await this.model.plan(n, { softmaxInLoss: this.lossKind === 'softmax_cross_entropy' });
      let loss = this.evalLosses.get(n);
      if (!loss) {
        loss = await planLoss(e, this.lossKind, { batch: n, prediction: net.lossInput, dPrediction: net.dOutput }, 1, this.model.stepValues, { labelSmoothing: this.settings.labelSmoothing });
        this.evalLosses.set(n, loss);
      }
      const xHost = new Float32Array(net.input.size);
      const yHost = new Float32Array(loss.targets.size);
      batcher.fill(0, b, xHost, yHost);
      e.write(net.input, xHost);
      e.write(loss.targets, yHost);
      e.fill(loss.acc, 0);
      e.run(...net.forwardEval, ...loss.dispatches);
      if (outputs) outputs.set(await net.output.read(), b * bs * outSize);
      const acc = await loss.acc.read();
      sumLoss += acc[0];
      sumCorrect += acc[1];
      hasAcc = loss.hasAccuracy;
    }
    return { loss: sumLoss / split.n, accuracy: hasAcc ? sumCorrect / split.n : null, n: split.n, ...(outputs ? { outputs } : {}) };
  }

  /** Model outputs for `n` samples in evaluation mode (see `predict`). */
  predict(x: Float32Array, n: number, batchSize = EVAL_BATCH): Promise<Float32Array> {
    return predict(this.model, x, n, batchSize);
  }

  /** Free the trainer's plans and the optimizer's state (the model stays). */
  dispose(): void {
    for (const s of this.steps.values()) s.dispose();
    this.steps.clear();
    for (const l of this.evalLosses.values()) l.dispose();
    this.evalLosses.clear();
    this.optimizer.dispose();
    this.clip?.dispose();
    this.fitStats?.dispose();
  }
}

/**
 * Gradient clipping by global norm within the step: the sum of squares of every gradient, the
 * factor min(1, max / norm), every gradient scaled by it (shaders/clip.wgsl). One dispatch per
 * parameter twice, plus one: small next to a step, and nothing read back.
 */
class GradientClip {
  private constructor(
    readonly dispatches: Dispatch[],
    private readonly acc: Tensor,
    /** [factor, norm] of the last step. */
    readonly factor: Tensor,
  ) {}

  static async create(e: Engine, params: Param[], maxNorm: number): Promise<GradientClip> {
    const acc = e.zeros([1], 'clip.sum-of-squares');
    const factor = e.zeros([2], 'clip.factor');
    const ds: Dispatch[] = [];
    for (const p of params) ds.push(await sumSquares(e, p.grad, acc));
    ds.push(await clipFactor(e, acc, factor, maxNorm));
    for (const p of params) ds.push(await scaleByFactor(e, p.grad, factor));
    return new GradientClip(ds, acc, factor);
  }

  dispose(): void {
    this.dispatches.forEach((d) => d.dispose());
    this.acc.dispose();
    this.factor.dispose();
  }
}

/**
 * Model outputs for `n` samples given as model inputs (already normalised), [n * outputSize], in
 * evaluation mode (dropout off, running statistics). For a classifier ending with logits these
 * are logits; apply softmax for probabilities.
 */
export async function predict(model: Model, x: Float32Array, n: number, batchSize = EVAL_BATCH): Promise<Float32Array> {
  const e = model.engine;
  if (!e) throw new Error('Build the model before predict().');
  const inSize = sampleSize({ inputShape: [...model.inputShape] });
  if (x.length !== n * inSize) throw new Error(`predict: ${n} samples of shape [${model.inputShape.join(', ')}] need ${n * inSize} values, got ${x.length}.`);
  const outSize = model.outputShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * outSize);
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const net = await model.plan(m);
    e.write(net.input, x.subarray(start * inSize, (start + m) * inSize));
    e.run(...net.forwardEval);
    out.set(await net.output.read(), start * outSize);
  }
  return out;
}
