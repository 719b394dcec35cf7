// Per-layer training statistics as plain data: the snapshot the GPU recorder delivers
// (src/train/stats.ts), its series over time (what the metrics JSON holds and pictures draw), and
// the warnings a series raises. Nothing here touches the GPU: a snapshot can be posted from a
// worker to a page, and the same rules judge it there.

/** A fixed-bin histogram over [lo, hi] (the tensor's min and max); bins of equal width. */
export interface Histogram {
  lo: number;
  hi: number;
  counts: number[];
}

/** Figures over a tensor's finite values; NaN and ±Inf are counted apart (nonFinite). */
export interface TensorSummary {
  /** Finite values. */
  count: number;
  mean: number;
  /** Population standard deviation. */
  std: number;
  min: number;
  max: number;
  /** L2 norm. */
  norm: number;
  nonFinite: number;
  histogram: Histogram;
}

/** One parameter tensor at a step. */
export interface ParamStats {
  /** Module path, as in checkpoints: `layers.0.weight`, `blocks.1.conv2.weight`. */
  name: string;
  shape: number[];
  /** Whether weight decay applies: a weight (Dense, Conv2d), not a bias or a norm's scale or shift. */
  decay: boolean;
  /** The parameter after the step's update. */
  value: TensorSummary;
  /** The step's gradient, as backward left it (before any clipping). */
  grad: TensorSummary;
  /** The step's update: ||Δw||, and ||Δw|| / ||w|| with w before the update (null when that norm is 0). */
  update: { norm: number; ratio: number | null };
}

/** The output of a ReLU-like activation at a step, over the whole batch. */
export interface ActivationStats {
  /** Module path of the activation (`layers.1`, `blocks.0.relu`), also when fused into its producer. */
  name: string;
  /** Module path of the op that computes it: the producer it is fused into, or the op before it. */
  producer: string;
  kind: 'relu' | 'leaky_relu';
  /** Per sample. */
  shape: number[];
  /** Share of outputs <= 0: zeros of a ReLU, the leaky side of a LeakyReLU. */
  deadFraction: number;
  mean: number;
  nonFinite: number;
}

/** Statistics of one training step: plain data (structured-clone and JSON safe, but for NaN). */
export interface StatsSnapshot {
  /** The 0-based index of the training step (as TrainState.step was when it was recorded). */
  step: number;
  batch: number;
  params: ParamStats[];
  activations: ActivationStats[];
}

/** The bands the warnings use, and why. */
export const STATS_BANDS = {
  /**
   * ||Δw|| / ||w|| per step for weights (parameters with weight decay). Around 1e-3 is the usual
   * rule of thumb: below 1e-4 the layer barely moves (learning rate too low for it, or a
   * vanishing gradient), above 1e-1 each step rewrites a tenth of the weight (too high: training
   * is unstable). Biases are left out: they start at 0, where a ratio says little.
   */
  updateRatio: [1e-4, 1e-1] as [number, number],
  /** A gradient norm over this is exploding, whatever its history. */
  gradNormMax: 1e3,
  /** ... or over this many times the norm at the first snapshot. */
  gradGrowth: 1e2,
  /** An activation with at least this share of outputs <= 0 is dead. */
  deadFraction: 0.99,
};

export type StatsWarningKind = 'zero-gradient' | 'exploding-gradient' | 'update-ratio' | 'dead-activation';

export interface StatsWarning {
  step: number;
  /** The parameter's or activation's module path. */
  name: string;
  kind: StatsWarningKind;
  message: string;
}

const g = (v: number) => (v === 0 ? '0' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? String(Number(v.toPrecision(3))) : v.toExponential(1));

/**
 * Judges snapshots one after another and says what looks wrong, once per parameter or activation
 * and kind of trouble (the first step it shows): a gradient that is exactly zero everywhere (no
 * gradient reaches the parameter: a dead layer after it, or a disconnected one), a gradient that
 * explodes (non-finite values, a norm over 1e3, or over 100 times its first), a weight's update
 * ratio outside 1e-4..1e-1 per step, a ReLU whose outputs are 99% or more at or below zero.
 */
export class StatsWatch {
  readonly warnings: StatsWarning[] = [];
  private seen = new Set<string>();
  private firstGradNorm = new Map<string, number>();

  /** The new warnings of this snapshot (also appended to `warnings`). */
  check(s: StatsSnapshot): StatsWarning[] {
    const out: StatsWarning[] = [];
    const warn = (name: string, kind: StatsWarningKind, message: string) => {
      const key = `${kind}:${name}`;
      if (this.seen.has(key)) return;
      this.seen.add(key);
      out.push({ step: s.step, name, kind, message: `step ${s.step}: ${name}: ${message}` });
    };
    const [lo, hi] = STATS_BANDS.updateRatio;
    for (const p of s.params) {
      const gr = p.grad;
      const first = this.firstGradNorm.get(p.name);
      if (first === undefined && gr.nonFinite === 0) this.firstGradNorm.set(p.name, gr.norm);
      if (gr.nonFinite > 0) warn(p.name, 'exploding-gradient', `the gradient has ${gr.nonFinite} non-finite values (NaN or Inf): it exploded.`);
      else if (gr.norm > STATS_BANDS.gradNormMax) warn(p.name, 'exploding-gradient', `the gradient norm ${g(gr.norm)} is over ${g(STATS_BANDS.gradNormMax)}: it is exploding (try a lower learning rate or --clip-norm).`);
      else if (first !== undefined && first > 0 && gr.norm > STATS_BANDS.gradGrowth * first) {
        warn(p.name, 'exploding-gradient', `the gradient norm grew from ${g(first)} to ${g(gr.norm)}, over ${STATS_BANDS.gradGrowth} times: it is exploding.`);
      }
      const zero = gr.count > 0 && gr.min === 0 && gr.max === 0;
      if (zero) warn(p.name, 'zero-gradient', 'the gradient is exactly zero: this parameter does not learn (a dead ReLU layer before or after it?).');
      const r = p.update.ratio;
      if (p.decay && !zero && r !== null && Number.isFinite(r) && (r < lo || r > hi)) {
        const why = r < lo ? 'the weight barely moves: the learning rate is too low for this layer, or its gradient vanishes' : 'each step rewrites a large part of the weight: the learning rate is too high for this layer';
        warn(p.name, 'update-ratio', `the update ratio ||Δw||/||w|| is ${g(r)} per step, outside the sane band ${lo.toExponential(0)}..${hi.toExponential(0)}: ${why}.`);
      }
    }
    for (const a of s.activations) {
      if (a.deadFraction >= STATS_BANDS.deadFraction) {
        warn(
          a.name,
          'dead-activation',
          `${(100 * a.deadFraction).toFixed(a.deadFraction === 1 ? 0 : 1)}% of this ${a.kind === 'relu' ? 'ReLU' : 'LeakyReLU'}'s outputs (after ${a.producer}) are ${a.kind === 'relu' ? 'zero' : 'at or below zero'}: the layer is dead (biases too negative, or a learning rate that pushed them there).`,
        );
      }
    }
    this.warnings.push(...out);
    return out;
  }
}

/** A tensor's figures over time (one entry per step of the series). */
export interface SummarySeries {
  mean: number[];
  std: number[];
  min: number[];
  max: number[];
  norm: number[];
  nonFinite: number[];
  histogram: { lo: number[]; hi: number[]; counts: number[][] };
}

/** The statistics of a run as columns over time: what the metrics JSON holds. */
export interface StatsSeries {
  /** Steps the statistics were taken at (0-based). */
  steps: number[];
  params: { name: string; shape: number[]; decay: boolean; value: SummarySeries; grad: SummarySeries; updateNorm: number[]; updateRatio: (number | null)[] }[];
  activations: { name: string; producer: string; kind: string; shape: number[]; deadFraction: number[]; mean: number[] }[];
}

function emptySeries(): SummarySeries {
  return { mean: [], std: [], min: [], max: [], norm: [], nonFinite: [], histogram: { lo: [], hi: [], counts: [] } };
}

function pushSummary(s: SummarySeries, t: TensorSummary): void {
  s.mean.push(t.mean);
  s.std.push(t.std);
  s.min.push(t.min);
  s.max.push(t.max);
  s.norm.push(t.norm);
  s.nonFinite.push(t.nonFinite);
  s.histogram.lo.push(t.histogram.lo);
  s.histogram.hi.push(t.histogram.hi);
  s.histogram.counts.push(t.histogram.counts);
}

/** Snapshots (of one model, in step order) as columns. */
export function statsSeries(snapshots: StatsSnapshot[]): StatsSeries {
  const out: StatsSeries = { steps: [], params: [], activations: [] };
  const first = snapshots[0];
  if (!first) return out;
  out.params = first.params.map((p) => ({ name: p.name, shape: p.shape, decay: p.decay, value: emptySeries(), grad: emptySeries(), updateNorm: [], updateRatio: [] }));
  out.activations = first.activations.map((a) => ({ name: a.name, producer: a.producer, kind: a.kind, shape: a.shape, deadFraction: [], mean: [] }));
  for (const s of snapshots) {
    out.steps.push(s.step);
    s.params.forEach((p, i) => {
      const q = out.params[i];
      if (q?.name !== p.name) throw new Error(`statsSeries: the snapshot of step ${s.step} has parameter ${p.name} where the first had ${q?.name}: snapshots of different models.`);
      pushSummary(q.value, p.value);
      pushSummary(q.grad, p.grad);
      q.updateNorm.push(p.update.norm);
      q.updateRatio.push(p.update.ratio);
    });
    s.activations.forEach((a, i) => {
      out.activations[i].deadFraction.push(a.deadFraction);
      out.activations[i].mean.push(a.mean);
    });
  }
  return out;
}
