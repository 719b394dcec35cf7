// The user-facing model: a Sequential network plus a loss and an optimizer, with fit / evaluate /
// predict. A training step records forward, loss, backward and the optimizer update into one
// submission; the loss and accuracy are read back only every `logEvery` steps and at epoch ends.
import type { Engine } from '../gpu/engine.ts';
import type { Shape } from '../gpu/tensor.ts';
import { Batcher } from '../data/batcher.ts';
import type { AugmentOptions } from '../data/augment.ts';
import { sampleSize, type Dataset, type Split } from '../data/dataset.ts';
import type { Layer } from '../nn/layer.ts';
import { Network, type NetworkPlan } from '../nn/sequential.ts';
import { Optimizer, type OptimizerConfig } from '../optim/optimizer.ts';
import { planLoss, targetWidth, type LossKind, type LossPlan } from './loss.ts';

export interface CompileOptions {
  loss: LossKind;
  optimizer: OptimizerConfig;
}

/** Where training stands: saved in checkpoints so that a resumed run continues exactly. */
export interface TrainState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** Seed of the data order (shuffling and augmentation). */
  dataSeed: number;
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
  /** Evaluated at the end of each epoch. */
  validation?: Split;
  /** Read the loss back every this many steps (default 25). */
  logEvery?: number;
  augment?: AugmentOptions;
  onStep?(ev: StepEvent): void | Promise<void>;
  /** Called after each epoch; an async callback (e.g. a checkpoint save) is awaited before the next. */
  onEpochEnd?(ev: EpochEvent): void | Promise<void>;
  /** Checked between steps; when it returns true training stops after the current step. */
  shouldStop?(): boolean;
}

export interface EvalResult {
  loss: number;
  accuracy: number | null;
  n: number;
}

/** A non-finite loss: training stopped at `step`. */
export class DivergenceError extends Error {
  constructor(
    readonly step: number,
    readonly loss: number,
  ) {
    super(`Training diverged: the loss became ${loss} at step ${step}. Try a lower learning rate; the last checkpoint (if any) is untouched.`);
    this.name = 'DivergenceError';
  }
}

const EVAL_BATCH = 500;
const SYNC_EVERY = 8;

export class Sequential extends Network {
  private compiled: { loss: LossKind; optimizer: Optimizer } | null = null;
  private lossPlans = new Map<string, LossPlan>();
  state: TrainState = { epoch: 0, step: 0, dataSeed: 0 };

  constructor(layers: Layer[]) {
    super(layers);
  }

  async build(e: Engine, inputShape: Shape, opts: { seed?: number } = {}): Promise<this> {
    await super.build(e, inputShape, opts);
    this.state.dataSeed = this.seed;
    return this;
  }

  get optimizer(): Optimizer | null {
    return this.compiled?.optimizer ?? null;
  }

  get lossKind(): LossKind | null {
    return this.compiled?.loss ?? null;
  }

  /** Choose the loss and optimizer; allocates optimizer state on the GPU. */
  async compile(opts: CompileOptions): Promise<this> {
    if (!this.engine) throw new Error('Build the model before compile().');
    this.compiled?.optimizer.dispose();
    const optimizer = new Optimizer(opts.optimizer);
    await optimizer.attach(this.engine, this.params());
    this.compiled = { loss: opts.loss, optimizer };
    for (const p of this.lossPlans.values()) p.dispose();
    this.lossPlans.clear();
    return this;
  }

  private async plansFor(batch: number, window: number): Promise<{ net: NetworkPlan; loss: LossPlan }> {
    if (!this.compiled) throw new Error('compile() the model before training or evaluating it.');
    const net = await this.plan(batch);
    let loss = this.lossPlans.get(`${batch}:${window}`);
    if (!loss) {
      loss = await planLoss(this.engine!, this.compiled.loss, net, window);
      this.lossPlans.set(`${batch}:${window}`, loss);
    }
    return { net, loss };
  }

  private checkData(data: Dataset): void {
    const want = this.inputShape.join('x');
    if (data.inputShape.join('x') !== want) {
      throw new Error(`Dataset "${data.name}" has samples of shape [${data.inputShape.join(', ')}], but the model was built for [${this.inputShape.join(', ')}].`);
    }
    const out = this.outputShape.reduce((a, b) => a * b, 1);
    if (this.compiled?.loss === 'softmax_cross_entropy' && data.numClasses !== out) {
      throw new Error(`Dataset "${data.name}" has ${data.numClasses} classes, but the model outputs ${out} values.`);
    }
  }

  /** Train for `epochs` more epochs (continuing from `state` when resumed). Returns the epoch events. */
  async fit(data: Dataset, opts: FitOptions): Promise<EpochEvent[]> {
    const e = this.engine!;
    this.checkData(data);
    const batchSize = opts.batchSize ?? 64;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`fit: batchSize must be a positive integer, got ${batchSize}.`);
    if (!Number.isInteger(opts.epochs) || opts.epochs < 0) throw new Error(`fit: epochs must be a non-negative integer, got ${opts.epochs}.`);
    if (this.state.step === 0 && opts.seed !== undefined) this.state.dataSeed = opts.seed;
    const window = Math.max(1, opts.logEvery ?? 25);
    const bs = Math.min(batchSize, data.train.n);
    const batcher = new Batcher(data.train, data, { batchSize: bs, shuffle: true, seed: this.state.dataSeed, dropLast: true, augment: opts.augment });
    const { net, loss } = await this.plansFor(bs, window);
    const opt = this.compiled!.optimizer;
    const xHost = new Float32Array(net.input.size);
    const yHost = new Float32Array(loss.targets.size);
    const events: EpochEvent[] = [];
    const endEpoch = this.state.epoch + opts.epochs;
    for (let epoch = this.state.epoch; epoch < endEpoch; epoch++) {
      const t0 = performance.now();
      let windowStart = this.state.step;
      let tWindow = t0;
      let sumLoss = 0;
      let sumCorrect = 0;
      let seen = 0;
      const readWindow = async (batchIdx: number) => {
        const steps = this.state.step - windowStart;
        if (steps === 0) return;
        const acc = await loss.acc.read();
        let l = 0;
        let c = 0;
        for (let s = windowStart; s < this.state.step; s++) {
          const li = acc[s % window];
          if (!Number.isFinite(li)) throw new DivergenceError(s, li / bs);
          l += li;
          c += acc[window + (s % window)];
        }
        e.fill(loss.acc, 0);
        sumLoss += l;
        sumCorrect += c;
        seen += steps * bs;
        const now = performance.now();
        const ev: StepEvent = {
          epoch,
          batch: batchIdx,
          batches: batcher.numBatches,
          step: this.state.step,
          loss: l / (steps * bs),
          accuracy: loss.hasAccuracy ? c / (steps * bs) : null,
          samplesPerSecond: (steps * bs) / ((now - tWindow) / 1000),
          lr: opt.lrAt(this.state.step - 1),
        };
        windowStart = this.state.step;
        tWindow = now;
        await opts.onStep?.(ev);
      };
      for (let b = 0; b < batcher.numBatches; b++) {
        batcher.fill(epoch, b, xHost, yHost);
        e.write(net.input, xHost);
        e.write(loss.targets, yHost);
        net.beforeStep(this.state.step);
        loss.beforeStep(this.state.step);
        e.run(...net.forward, ...loss.dispatches, ...net.backward, ...opt.record(this.state.step));
        e.flush();
        this.state.step++;
        // Every few steps, wait for the queue to drain: the queue stays bounded, GPU errors and
        // device loss surface, and the event loop gets a turn. Waiting every step costs more (a
        // completion callback has latency of its own).
        if (this.state.step % SYNC_EVERY === 0) await e.sync();
        if (this.state.step - windowStart >= window) await readWindow(b + 1);
        if (opts.shouldStop?.()) break;
      }
      await readWindow(batcher.numBatches);
      const seconds = (performance.now() - t0) / 1000;
      const stopped = opts.shouldStop?.() ?? false;
      if (stopped && seen < batcher.numBatches * bs) break; // a partial epoch is not counted
      this.state.epoch = epoch + 1;
      const ev: EpochEvent = {
        epoch: epoch + 1,
        loss: sumLoss / seen,
        accuracy: loss.hasAccuracy ? sumCorrect / seen : null,
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
    return events;
  }

  /** Mean loss and accuracy over a split, in evaluation mode (dropout off). */
  async evaluate(split: Split, data: Dataset, batchSize = EVAL_BATCH): Promise<EvalResult> {
    const e = this.engine!;
    this.checkData(data);
    if (split.n === 0) throw new Error(`evaluate: the split of "${data.name}" is empty.`);
    const bs = Math.min(batchSize, split.n);
    const batcher = new Batcher(split, data, { batchSize: bs, shuffle: false, seed: 0 });
    let sumLoss = 0;
    let sumCorrect = 0;
    let hasAcc = false;
    for (let b = 0; b < batcher.numBatches; b++) {
      const n = Math.min(bs, split.n - b * bs);
      const { net, loss } = await this.plansFor(n, 1);
      const xHost = new Float32Array(net.input.size);
      const yHost = new Float32Array(loss.targets.size);
      batcher.fill(0, b, xHost, yHost);
      e.write(net.input, xHost);
      e.write(loss.targets, yHost);
      e.fill(loss.acc, 0);
      loss.beforeStep(0);
      e.run(...net.forwardEval, ...loss.dispatches);
      const acc = await loss.acc.read();
      sumLoss += acc[0];
      sumCorrect += acc[1];
      hasAcc = loss.hasAccuracy;
    }
    return { loss: sumLoss / split.n, accuracy: hasAcc ? sumCorrect / split.n : null, n: split.n };
  }

  /**
   * Model outputs for `n` samples given as model inputs (already normalised), [n * outputSize].
   * For classification these are logits; apply softmax for probabilities.
   */
  async predict(x: Float32Array, n: number, batchSize = EVAL_BATCH): Promise<Float32Array> {
    const e = this.engine!;
    const inSize = sampleSize({ inputShape: [...this.inputShape] });
    if (x.length !== n * inSize) throw new Error(`predict: ${n} samples of shape [${this.inputShape.join(', ')}] need ${n * inSize} values, got ${x.length}.`);
    const outSize = this.outputShape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n * outSize);
    for (let start = 0; start < n; start += batchSize) {
      const m = Math.min(batchSize, n - start);
      const net = await this.plan(m);
      e.write(net.input, x.subarray(start * inSize, (start + m) * inSize));
      e.run(...net.forwardEval);
      out.set(await net.output.read(), start * outSize);
    }
    return out;
  }

  /** Targets per sample expected by the compiled loss. */
  get targetWidth(): number {
    return targetWidth(this.compiled?.loss ?? 'softmax_cross_entropy', this.outputShape.reduce((a, b) => a * b, 1));
  }

  clearPlans(): void {
    for (const p of this.lossPlans.values()) p.dispose();
    this.lossPlans.clear();
    super.clearPlans();
  }

  dispose(): void {
    this.compiled?.optimizer.dispose();
    super.dispose();
  }
}
