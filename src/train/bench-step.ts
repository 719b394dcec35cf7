// Training steps on one fixed batch, for benchmarks and profiling: each step records exactly what
// Sequential.fit records per step once its batch is filled on the host (upload of inputs and
// targets, per-step parameters, forward, loss, backward, optimizer update, one submission), so a
// timing of these steps is a timing of fit() without the data pipeline.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { NetworkPlan } from '../nn/sequential.ts';
import { planLoss, type LossPlan } from './loss.ts';
import type { Sequential } from './model.ts';

/** Which part of a training step a dispatch belongs to. */
export type StepPhase = 'forward' | 'loss' | 'backward' | 'optimizer';

export interface PhasedDispatch {
  phase: StepPhase;
  /** Position within its phase. */
  index: number;
  dispatch: Dispatch;
}

export interface StepRecorderOptions {
  /** Upload the inputs and targets before every step, as fit() does (default true). */
  uploadEachStep?: boolean;
  /** Steps whose losses the GPU keeps before they must be read (default 25, fit's default logEvery). */
  window?: number;
}

/** Records training steps of a compiled Sequential on a fixed batch of inputs and targets. */
export class StepRecorder {
  private sinceRead = 0;
  private inflight: Promise<unknown>[] = [];

  private constructor(
    readonly model: Sequential,
    readonly engine: Engine,
    readonly net: NetworkPlan,
    readonly loss: LossPlan,
    private x: Float32Array,
    private targets: Float32Array,
    private upload: boolean,
  ) {}

  /**
   * Plan a built and compiled model for `batch` samples. `x` is [batch, ...inputShape] flattened;
   * `targets` is what fit() would upload (class indices as floats for softmax cross-entropy).
   */
  static async create(model: Sequential, batch: number, x: Float32Array, targets: Float32Array, opts: StepRecorderOptions = {}): Promise<StepRecorder> {
    const e = model.engine;
    if (!e || !model.optimizer || !model.lossKind) throw new Error('StepRecorder: build() and compile() the model first.');
    const net = await model.plan(batch);
    const loss = await planLoss(e, model.lossKind, net, Math.max(1, opts.window ?? 25));
    if (x.length !== net.input.size) throw new Error(`StepRecorder: x has ${x.length} values; a batch of ${batch} needs ${net.input.size}.`);
    if (targets.length !== loss.targets.size) throw new Error(`StepRecorder: targets have ${targets.length} values; the loss needs ${loss.targets.size}.`);
    const r = new StepRecorder(model, e, net, loss, x, targets, opts.uploadEachStep ?? true);
    if (!r.upload) r.writeBatch();
    return r;
  }

  private writeBatch(): void {
    this.engine.write(this.net.input, this.x);
    this.engine.write(this.loss.targets, this.targets);
  }

  /** The next step's dispatches in order, labelled by phase; sets that step's per-step parameters. */
  dispatches(): PhasedDispatch[] {
    const step = this.model.state.step;
    if (this.upload) this.writeBatch();
    this.net.beforeStep(step);
    this.loss.beforeStep(step);
    const phases: [StepPhase, Dispatch[]][] = [
      ['forward', this.net.forward],
      ['loss', this.loss.dispatches],
      ['backward', this.net.backward],
      ['optimizer', this.model.optimizer!.record(step)],
    ];
    return phases.flatMap(([phase, ds]) => ds.map((dispatch, index) => ({ phase, index, dispatch })));
  }

  /** Record and submit one training step (does not wait for it). */
  record(): void {
    if (this.sinceRead >= this.loss.window) {
      throw new Error(`StepRecorder: ${this.sinceRead} steps recorded since the losses were last read; read them (readLosses) every ${this.loss.window} steps.`);
    }
    this.engine.run(...this.dispatches().map((d) => d.dispatch));
    this.engine.flush();
    this.model.state.step++;
    this.sinceRead++;
  }

  /** Record `n` steps as fit() paces them (at most two in flight, losses read every window), then wait. */
  async run(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      this.record();
      this.inflight.push(this.engine.device.queue.onSubmittedWorkDone());
      if (this.inflight.length > 2) await this.inflight.shift();
      if (this.sinceRead >= this.loss.window) await this.readLosses();
    }
    await Promise.all(this.inflight.splice(0));
    await this.engine.sync();
  }

  /** Mean loss of each step since the last read, oldest first; clears the window. */
  async readLosses(): Promise<number[]> {
    const n = this.sinceRead;
    if (n === 0) return [];
    const acc = await this.loss.acc.read();
    const w = this.loss.window;
    const first = this.model.state.step - n;
    const out: number[] = [];
    for (let s = first; s < this.model.state.step; s++) out.push(acc[s % w] / this.net.batch);
    this.engine.fill(this.loss.acc, 0);
    this.sinceRead = 0;
    return out;
  }

  /** Free the loss plan made here (the network plan stays cached on the model). */
  dispose(): void {
    this.loss.dispose();
  }
}
