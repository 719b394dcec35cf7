// Watching training per layer, on the GPU. On every Nth step a StatsRecorder adds its work to the
// step's own submission: a copy of each parameter before the step (buffer copies, nearly free),
// the statistics of each ReLU-like activation right after the op that computes it, of each
// gradient after backward, and of each parameter after the optimizer's update (with the update's
// size, against the copy). Everything lands in a small results buffer, which the same submission
// copies into a staging buffer from a ring; the staging buffer is mapped without waiting, and when
// the GPU has got there the snapshot (plain data: see src/train/stats-series.ts) goes to a
// callback. The step itself never waits for it.
import { GPUBufferUsageFlags } from '../gpu/buffers.ts';
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { STAT_PARTIALS_SIZE, tensorStats, type StatsOut } from '../kernels/stats.ts';
import type { Node } from '../nn/graph.ts';
import type { Param } from '../nn/op.ts';
import type { ModelPlan } from '../nn/planner.ts';
import type { OpSpec } from '../ops/graph.ts';
import { checkBins, STAT_RECORD, STAT_SLOTS } from '../ops/stats.ts';
import type { ActivationStats, ParamStats, StatsSnapshot, TensorSummary } from './stats-series.ts';
import type { PhasedDispatch } from './step.ts';

export type { ActivationStats, Histogram, ParamStats, StatsSnapshot, TensorSummary } from './stats-series.ts';

export interface StatsOptions {
  /** Take statistics on steps 0, every, 2·every, ... (0-based step numbers). */
  every: number;
  /** Histogram bins per tensor (1..256); default 32. */
  bins?: number;
  /** Also the share of zeros of every ReLU-like activation (default true). */
  activations?: boolean;
  /**
   * Called with each snapshot once it is read back: a few steps after its own, never inside a
   * step. Without it, snapshots are collected in `StatsRecorder.snapshots`.
   */
  onSnapshot?(snapshot: StatsSnapshot): void;
  /**
   * Readbacks that may be in flight at once (default 3). A statistics step that finds every
   * staging buffer still waiting is recorded without statistics and counted in `skipped`.
   */
  inFlight?: number;
}

/** The step's training pieces a recorder is made for. */
export interface StatsTarget {
  engine: Engine;
  net: ModelPlan;
  /** The parameters the step updates (the model's). */
  params: Param[];
}

/** A ReLU-like activation computed by `node`: its kind and module paths (see ActivationStats). */
function reluLike(node: Node): { kind: 'relu' | 'leaky_relu'; name: string; producer: string } | null {
  const ep = node.epilogue;
  if (ep) return { kind: ep.activation, name: node.fused[0]?.path ?? node.path, producer: node.path };
  let s: OpSpec | undefined;
  try {
    s = node.op.spec?.(node);
  } catch {
    return null; // an op that cannot describe itself is not a known activation
  }
  if (!s) return null;
  if (s.kind === 'activation' && (s.activation.kind === 'relu' || s.activation.kind === 'leaky_relu')) {
    const input = node.inputs[0];
    return { kind: s.activation.kind, name: node.path, producer: input?.producer?.path ?? input?.name ?? node.path };
  }
  if (s.kind === 'dense' && (s.activation?.kind === 'relu' || s.activation?.kind === 'leaky_relu')) return { kind: s.activation.kind, name: node.path, producer: node.path };
  if ((s.kind === 'conv2d' || s.kind === 'batchnorm2d') && s.relu) return { kind: 'relu', name: node.path, producer: node.path };
  return null;
}

interface WatchedParam {
  param: Param;
  /** Record of the value (after its update); the gradient's is the next one. */
  record: number;
  /** The value before the step's update, copied at the start of a statistics step. */
  before: Tensor;
}

interface WatchedActivation {
  info: NonNullable<ReturnType<typeof reluLike>>;
  /** [batch, ...shape]: the node's output. */
  output: Tensor;
  /** The forward position its statistics go before: the end of its node's span. */
  at: number;
  record: number;
}

export class StatsRecorder {
  /** Snapshots read back so far, when no onSnapshot callback was given (oldest first). */
  readonly snapshots: StatsSnapshot[] = [];
  /** Statistics steps recorded without statistics because no staging buffer was free. */
  skipped = 0;
  private pending = new Set<Promise<void>>();
  private error: unknown = null;
  private disposed = false;

  private constructor(
    readonly engine: Engine,
    readonly net: ModelPlan,
    readonly every: number,
    readonly bins: number,
    private readonly onSnapshot: ((s: StatsSnapshot) => void) | null,
    private readonly params: WatchedParam[],
    private readonly activations: WatchedActivation[],
    private readonly placed: {
      /** Activation statistics, by the forward position they go before (a span's end). */
      forward: Map<number, Dispatch[]>;
      /** After backward, before any clipping. */
      gradients: Dispatch[];
      /** After the optimizer's updates: each value against its copy from before the step. */
      values: Dispatch[];
    },
    private readonly made: Dispatch[],
    private readonly out: StatsOut,
    private readonly free: GPUBuffer[],
  ) {}

  private get stagingBytes(): number {
    return this.out.values.byteLength + this.out.counts.byteLength;
  }

  /**
   * A recorder for one training step's plan (a TrainStep: `TrainStep.create` or
   * `trainer.trainStep(batch)`); pass it to `record({ stats })` on every step, and `drain` it
   * before reading the last snapshots.
   */
  static async create(target: StatsTarget, opts: StatsOptions): Promise<StatsRecorder> {
    const { engine: e, net } = target;
    if (!Number.isInteger(opts.every) || opts.every < 1) throw new Error(`Statistics: every must be a whole number of steps >= 1, got ${opts.every}.`);
    const bins = opts.bins ?? 32;
    checkBins('Statistics', bins);
    const inFlight = opts.inFlight ?? 3;
    if (!Number.isInteger(inFlight) || inFlight < 1) throw new Error(`Statistics: inFlight must be a whole number >= 1, got ${opts.inFlight}.`);
    const activations: WatchedActivation[] = [];
    if (opts.activations !== false) {
      for (const span of net.forwardSpans) {
        const info = reluLike(span.node);
        if (info) activations.push({ info, output: span.outputs[0], at: span.end, record: 2 * target.params.length + activations.length });
      }
    }
    const params: WatchedParam[] = [];
    const records = 2 * target.params.length + activations.length;
    const out: StatsOut = {
      partials: e.zeros([STAT_PARTIALS_SIZE], 'stats.partials'),
      values: e.zeros([Math.max(1, records) * STAT_RECORD], 'stats.values'),
      counts: e.zeros([Math.max(1, 2 * target.params.length * bins)], 'stats.counts'),
    };
    const placed = { forward: new Map<number, Dispatch[]>(), gradients: [] as Dispatch[], values: [] as Dispatch[] };
    const made: Dispatch[] = [];
    const keep = (ds: Dispatch[]) => {
      made.push(...ds);
      return ds;
    };
    const free: GPUBuffer[] = [];
    try {
      for (const [i, param] of target.params.entries()) {
        const w = { param, record: 2 * i, before: e.zeros(param.value.shape, `${param.name} before the update`) };
        params.push(w);
        placed.gradients.push(...keep(await tensorStats(e, param.grad, out, { record: w.record + 1, bins, hist: (2 * i + 1) * bins })));
        placed.values.push(...keep(await tensorStats(e, param.value, out, { record: w.record, bins, hist: 2 * i * bins, prev: w.before })));
      }
      for (const a of activations) {
        const list = placed.forward.get(a.at) ?? [];
        list.push(...keep(await tensorStats(e, a.output, out, { record: a.record, bins: 0 })));
        placed.forward.set(a.at, list);
      }
      const stagingBytes = out.values.byteLength + out.counts.byteLength;
      for (let i = 0; i < inFlight; i++) free.push(e.pool.acquire(stagingBytes, GPUBufferUsageFlags.readback, 'stats readback'));
    } catch (err) {
      made.forEach((d) => d.dispose());
      free.forEach((b) => e.pool.release(b));
      [out.partials, out.values, out.counts, ...params.map((p) => p.before)].forEach((t) => t.dispose());
      throw err;
    }
    return new StatsRecorder(e, net, opts.every, bins, opts.onSnapshot ?? null, params, activations, placed, made, out, free);
  }

  /** Whether statistics are due at a (0-based) step. */
  due(step: number): boolean {
    return step % this.every === 0;
  }

  /** Readbacks in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  private checkPlan(net: ModelPlan): void {
    if (this.disposed) throw new Error('This StatsRecorder was disposed.');
    if (net !== this.net) throw new Error(`This StatsRecorder was made for the training step of batch ${this.net.batch}; it cannot watch another step (batch ${net.batch}). Make one per TrainStep.`);
  }

  /**
   * A step's dispatches (TrainStep.dispatches, in order and by phase) with this recorder's placed
   * among them, as phase 'stats': activation statistics at the end of their node's forward
   * dispatches, gradient statistics after backward (before any clipping), and the parameters'
   * statistics after the optimizer's updates (against the copies `StatsReadback.before` takes).
   */
  weave(net: ModelPlan, list: PhasedDispatch[]): PhasedDispatch[] {
    this.checkPlan(net);
    const out: PhasedDispatch[] = [];
    let index = 0;
    const put = (ds: Dispatch[] | undefined) => ds?.forEach((dispatch) => out.push({ phase: 'stats', index: index++, dispatch }));
    let forwardDone = false;
    let gradientsDone = false;
    for (const item of list) {
      if (item.phase === 'forward') put(this.placed.forward.get(item.index));
      else if (!forwardDone) {
        put(this.placed.forward.get(this.net.forward.length));
        forwardDone = true;
      }
      if (!gradientsDone && (item.phase === 'clip' || item.phase === 'optimizer')) {
        put(this.placed.gradients);
        gradientsDone = true;
      }
      out.push(item);
    }
    if (!forwardDone) put(this.placed.forward.get(this.net.forward.length));
    if (!gradientsDone) put(this.placed.gradients);
    put(this.placed.values);
    return out;
  }

  /**
   * Called by TrainStep.record before a step is recorded: a staging buffer for the step's
   * statistics when they are due and one is free (null otherwise; a due step without a free one
   * is counted in `skipped`).
   */
  start(net: ModelPlan, step: number): StatsReadback | null {
    this.checkPlan(net);
    if (!this.due(step)) return null;
    const staging = this.free.pop();
    if (!staging) {
      this.skipped++;
      return null;
    }
    return {
      before: () => {
        for (const p of this.params) this.engine.copyToBuffer(p.param.value, p.before.buffer);
      },
      copy: () => {
        this.engine.copyToBuffer(this.out.values, staging, 0);
        this.engine.copyToBuffer(this.out.counts, staging, this.out.values.byteLength);
      },
      map: () => this.map(staging, step),
    };
  }

  /** Map a submitted staging buffer without waiting; deliver its snapshot when it resolves. */
  private map(staging: GPUBuffer, step: number): void {
    const done = staging.mapAsync(GPUMapMode.READ, 0, this.stagingBytes).then(
      () => {
        const bytes = staging.getMappedRange(0, this.stagingBytes).slice(0);
        staging.unmap();
        this.giveBack(staging);
        const snap = this.parse(bytes, step);
        try {
          if (this.onSnapshot) this.onSnapshot(snap);
          else this.snapshots.push(snap);
        } catch (err) {
          this.error ??= err;
        }
      },
      (err) => {
        this.giveBack(staging);
        if (!this.disposed) this.error ??= err;
      },
    );
    const p = done.finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  private giveBack(staging: GPUBuffer): void {
    if (this.disposed) this.engine.pool.release(staging);
    else this.free.push(staging);
  }

  /**
   * Wait until every snapshot recorded so far has been delivered (submits pending work first).
   * Throws the first error of a readback or of the onSnapshot callback.
   */
  async drain(): Promise<void> {
    this.engine.flush();
    while (this.pending.size) await this.engine.settle(Promise.allSettled([...this.pending]));
    if (this.error) {
      const err = this.error;
      this.error = null;
      throw err;
    }
  }

  private parse(bytes: ArrayBuffer, step: number): StatsSnapshot {
    const values = new Float32Array(bytes, 0, this.out.values.size);
    const counts = new Uint32Array(bytes, this.out.values.byteLength, this.out.counts.size);
    const rec = (r: number) => values.subarray(r * STAT_RECORD, (r + 1) * STAT_RECORD);
    const summary = (r: number, hist: number): TensorSummary => {
      const v = rec(r);
      return {
        count: v[STAT_SLOTS.count],
        mean: v[STAT_SLOTS.mean],
        std: v[STAT_SLOTS.std],
        min: v[STAT_SLOTS.min],
        max: v[STAT_SLOTS.max],
        norm: v[STAT_SLOTS.norm],
        nonFinite: v[STAT_SLOTS.nonFinite],
        histogram: { lo: v[STAT_SLOTS.min], hi: v[STAT_SLOTS.max], counts: Array.from(counts.subarray(hist, hist + this.bins)) },
      };
    };
    const params: ParamStats[] = this.params.map(({ param, record }, i) => {
      const v = rec(record);
      const before = v[STAT_SLOTS.prevNorm];
      return {
        name: param.name,
        shape: [...param.value.shape],
        decay: param.decay,
        value: summary(record, 2 * i * this.bins),
        grad: summary(record + 1, (2 * i + 1) * this.bins),
        update: { norm: v[STAT_SLOTS.deltaNorm], ratio: before > 0 ? v[STAT_SLOTS.deltaNorm] / before : null },
      };
    });
    const activations: ActivationStats[] = this.activations.map(({ info, output, record }) => {
      const v = rec(record);
      const n = v[STAT_SLOTS.count];
      return { name: info.name, producer: info.producer, kind: info.kind, shape: [...output.shape.slice(1)], deadFraction: n > 0 ? v[STAT_SLOTS.nonPositive] / n : 0, mean: v[STAT_SLOTS.mean], nonFinite: v[STAT_SLOTS.nonFinite] };
    });
    return { step, batch: this.net.batch, params, activations };
  }

  /** Free the recorder's buffers and dispatches; readbacks still in flight are dropped. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.made.forEach((d) => d.dispose());
    this.free.splice(0).forEach((b) => this.engine.releaseBuffer(b));
    [this.out.partials, this.out.values, this.out.counts, ...this.params.map((p) => p.before)].forEach((t) => t.dispose());
  }
}

/**
 * One statistics step's work outside its dispatches, from StatsRecorder.start, for TrainStep.record:
 * `before` ahead of the step's dispatches (after its per-step writes), `copy` after them, both in
 * the step's submission; `map` after that submission.
 */
export interface StatsReadback {
  /** Copy each parameter as it is before the step (buffer copies). */
  before(): void;
  /** Copy the results into the staging buffer. */
  copy(): void;
  /** Map the staging buffer without waiting; the snapshot is delivered when it resolves. */
  map(): void;
}
