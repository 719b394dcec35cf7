// Timing: warm-up excluded, medians over repetitions, and counts that adapt so that a default run
// stays within minutes on a slow software adapter (slow sizes skipped, slow training stopped
// after about a minute) unless the options ask for more.
import type { Backend, BenchRow, ChildOptions, Library } from './common.ts';
import { matmulFlops, type MatmulShape } from './workloads.ts';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface TimingPlan {
  /** Aim for this much timed work per benchmark (ms). */
  budgetMs: number;
  /** Aim for at least this long per sample, batching calls back to back (ms). */
  sampleMs: number;
  maxReps: number;
  maxCalls: number;
}

export function timingPlan(quick: boolean): TimingPlan {
  return quick ? { budgetMs: 600, sampleMs: 20, maxReps: 3, maxCalls: 8 } : { budgetMs: 5000, sampleMs: 100, maxReps: 7, maxCalls: 32 };
}

export interface Timed {
  /** Median milliseconds per call. */
  ms: number;
  /** Calls back to back per sample, and samples taken. */
  calls: number;
  reps: number;
  samples: number[];
}

/**
 * Time `run(calls)` (which issues `calls` back-to-back calls and waits for them all): one warm-up
 * call for compilation, a second to size the batch (skipped when the first took over 3 s), then
 * repetitions; returns the median per-call time.
 */
export async function timeCalls(run: (calls: number) => Promise<void>, plan: TimingPlan): Promise<Timed> {
  let t = await clock(() => run(1));
  if (t < 3000) t = await clock(() => run(1));
  const calls = Math.max(1, Math.min(plan.maxCalls, Math.round(plan.sampleMs / Math.max(t, 1e-3))));
  const reps = Math.max(1, Math.min(plan.maxReps, Math.floor(plan.budgetMs / (t * calls))));
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) samples.push((await clock(() => run(calls))) / calls);
  return { ms: median(samples), calls, reps, samples };
}

export async function clock(f: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/** GFLOP/s for `flops` done in `ms`. */
export function gflops(flops: number, ms: number): number {
  return flops / ms / 1e6;
}

/** Round to a few significant digits for the JSON (the measurement noise is far larger). */
export function sig(x: number, digits = 4): number {
  return Number(x.toPrecision(digits));
}
/**
 * Keeps a default run to minutes on slow adapters: after each matmul, predicts the next one's time
 * per call from FLOPs, and skips it (an error row saying why) when that is over `maxCallMs`;
 * sizes given with --sizes always run.
 */
export class SlowSizeGuard {
  private msPerFlop = 0;

  constructor(private opts: ChildOptions) {}

  private get maxCallMs(): number {
    return this.opts.quick ? 5_000 : 20_000;
  }

  /** Why `s` should be skipped, or null to run it. */
  skipReason(s: MatmulShape): string | null {
    if (this.opts.sizesGiven || !this.msPerFlop) return null;
    const predicted = this.msPerFlop * matmulFlops(s);
    if (predicted <= this.maxCallMs) return null;
    return `skipped: one call would take about ${(predicted / 1000).toFixed(0)} s at the rate measured so far (pass --sizes to run it anyway)`;
  }

  /** Record a measured call (the latest, largest size predicts the next best). */
  measured(s: MatmulShape, msPerCall: number): void {
    this.msPerFlop = msPerCall / matmulFlops(s);
  }
}
// ---- training steps ---------------------------------------------------------------------------

export interface TimedSteps {
  /** Per-step milliseconds of the timed steps. */
  samples: number[];
  /** Loss after the first warm-up step and after the last timed step (same data every step). */
  firstLoss: number;
  lastLoss: number;
  /** Every step's loss in order, warm-up steps included (NaN where a step did not say). */
  losses: number[];
}

/** How many training steps to time, and how long a benchmark may take before it stops early. */
export interface StepPlan {
  warmup: number;
  steps: number;
  /** Stop warming up after this long (at least one warm-up step runs), and stop timing after it (at least 3 timed steps); null: no limit. */
  budgetMs: number | null;
}

/** Steps from the options; unless --steps was given, slow libraries stop after about a minute (quick: 10 s). */
export function stepPlan(opts: ChildOptions): StepPlan {
  return { warmup: opts.warmup, steps: opts.steps, budgetMs: opts.stepsGiven ? null : opts.quick ? 10_000 : 60_000 };
}

/**
 * Time training steps: warm-up steps untimed, then timed ones. `step` must return only once the
 * step has finished on the device (each library's way of reading the loss back) and may return
 * the loss; `lastLoss` can be given afterwards by the caller instead.
 */
export async function timeSteps(step: () => Promise<number | undefined>, plan: StepPlan): Promise<TimedSteps> {
  const budget = plan.budgetMs ?? Infinity;
  const losses: number[] = [];
  const w0 = performance.now();
  for (let i = 0; i < Math.max(1, plan.warmup); i++) {
    if (i > 0 && performance.now() - w0 > budget / 4) break;
    losses.push((await step()) ?? NaN);
  }
  const samples: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < plan.steps; i++) {
    if (i >= 3 && performance.now() - t0 > budget) break;
    const s0 = performance.now();
    losses.push((await step()) ?? NaN);
    samples.push(performance.now() - s0);
  }
  return { samples, firstLoss: losses[0], lastLoss: losses[losses.length - 1], losses };
}

/** The two rows of a trained network (median step time, and the samples/s that median implies) from timed steps. */
export function trainRows(who: { library: Library; backend: Backend }, benchmark: string, batch: number, t: TimedSteps, extra: Record<string, unknown> = {}): BenchRow[] {
  if (!Number.isFinite(t.lastLoss)) throw new Error(`training gave a non-finite loss (${t.lastLoss})`);
  const ms = median(t.samples);
  const common = {
    steps: t.samples.length,
    minMs: sig(Math.min(...t.samples)),
    maxMs: sig(Math.max(...t.samples)),
    firstLoss: sig(t.firstLoss, 6),
    lastLoss: sig(t.lastLoss, 6),
    // The first steps' losses, to compare libraries step by step (the first checks the forward
    // pass, the second the gradients and the update).
    losses: t.losses.slice(0, 3).map((l) => sig(l, 6)),
  };
  return [
    { ...who, benchmark: `${benchmark}-train-step`, value: sig(ms), unit: 'ms', extra: { ...common, batch, ...extra } },
    { ...who, benchmark: `${benchmark}-samples-per-s`, value: sig((batch * 1000) / ms), unit: 'samples/s', extra: { batch, basis: 'batch / median step time' } },
  ];
}

/** Fewer steps for the convolutional and transformer networks (a step costs several MLP steps), unless --steps asks. */
export function netStepPlan(opts: ChildOptions): StepPlan {
  const plan = stepPlan(opts);
  return opts.stepsGiven ? plan : { ...plan, steps: Math.min(plan.steps, 10), warmup: Math.min(plan.warmup, 2) };
}
