// What every benchmark child shares: the row format it reports, its command-line options, the
// benchmark definitions (matmul shapes, the MLP), seeded inputs that are identical across
// libraries, and the timing loop (warm-up excluded, median over repetitions, adaptive counts so
// that slow software adapters still finish in minutes).
import { Rng } from '../src/util/random.ts';

/** Which library produced a row. */
export type Library = 'ours' | 'tfjs' | 'jax-js';
export type Backend = 'webgpu' | 'wasm';
export type Unit = 'GFLOP/s' | 'ms' | 'samples/s' | 'bytes';

/** One measurement (or one failure: `error` set, `value` absent). */
export interface BenchRow {
  library: Library;
  backend: Backend;
  benchmark: string;
  value?: number;
  unit: Unit;
  extra?: Record<string, unknown>;
  error?: string;
}

/** What a child knows about the adapter it ran on (absent for CPU-only children). */
export interface AdapterInfo {
  name: string;
  vendor?: string;
  architecture?: string;
  description: string;
  isSoftware: boolean;
  features?: string[];
  [key: string]: unknown;
}

/** The single JSON line a child prints on stdout. */
export interface ChildResult {
  rows: BenchRow[];
  adapter?: AdapterInfo;
}

/** The peers and ours, by the names `--only` takes. */
export const TARGETS = ['ours', 'tfjs-webgpu', 'tfjs-wasm', 'jax-js'] as const;
export type Target = (typeof TARGETS)[number];

export const TARGET_OF: Record<Target, { library: Library; backend: Backend }> = {
  ours: { library: 'ours', backend: 'webgpu' },
  'tfjs-webgpu': { library: 'tfjs', backend: 'webgpu' },
  'tfjs-wasm': { library: 'tfjs', backend: 'wasm' },
  'jax-js': { library: 'jax-js', backend: 'webgpu' },
};

/** Options a child receives on its command line (the orchestrator passes them through). */
export interface ChildOptions {
  quick: boolean;
  /** Square matmul sizes. */
  sizes: number[];
  /** Whether the sizes were asked for (--sizes): then none is skipped for being slow. */
  sizesGiven: boolean;
  /** Timed training steps. */
  steps: number;
  /** Warm-up training steps (not timed). */
  warmup: number;
  /** Whether --steps was given: then every step runs, however long it takes. */
  stepsGiven: boolean;
  /** Which benchmark groups to run. */
  groups: Set<BenchGroup>;
  /** Run the CNN step too (the orchestrator sets this when our conv layer exists). */
  cnn: boolean;
  /** Ours: also time every matmul variant the kernel module offers. */
  variants: boolean;
}

export const BENCH_GROUPS = ['matmul', 'mlp'] as const;
export type BenchGroup = (typeof BENCH_GROUPS)[number];

export const DEFAULT_SIZES = [256, 512, 1024, 2048];
export const QUICK_SIZES = [256];

/** Parse the options a child was started with (same flags as the orchestrator's). */
export function parseChildArgs(argv: string[]): ChildOptions {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const sizes = get('--sizes')?.split(',').map(Number) ?? (quick ? QUICK_SIZES : DEFAULT_SIZES);
  for (const s of sizes) if (!Number.isInteger(s) || s < 1) throw new Error(`--sizes: "${get('--sizes')}" is not a list of positive integers.`);
  const steps = Number(get('--steps') ?? (quick ? 3 : 30));
  const warmup = Number(get('--warmup') ?? (quick ? 1 : 5));
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got ${get('--steps')}.`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup must be a non-negative integer, got ${get('--warmup')}.`);
  const groupArg = get('--groups');
  const groups = new Set<BenchGroup>(groupArg ? (groupArg.split(',') as BenchGroup[]) : BENCH_GROUPS);
  for (const g of groups) if (!BENCH_GROUPS.includes(g)) throw new Error(`--groups: unknown group "${g}" (known: ${BENCH_GROUPS.join(', ')}).`);
  return { quick, sizes, sizesGiven: get('--sizes') !== undefined, steps, warmup, stepsGiven: get('--steps') !== undefined, groups, cnn: argv.includes('--cnn'), variants: argv.includes('--variants') };
}

// ---- benchmark definitions --------------------------------------------------------------------

/** C[M,N] = op(A)·op(B), with op a transpose when the flag is set (A is [K,M] under transA, B is [N,K] under transB). */
export interface MatmulShape {
  benchmark: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

/** The MLP every library trains: 784-512-256-10, ReLU, batch 128, plain SGD. */
export const MLP = { layers: [784, 512, 256, 10], batch: 128, lr: 0.01, seed: 1234 } as const;

/**
 * The CNN every library trains, as our 'cnn' preset builds it: two blocks of Conv(3x3, pad 1,
 * bias) - ReLU - MaxPool(2) - BatchNorm (batch statistics) with 16 and 32 channels, then
 * Flatten - Dense(128) - ReLU - Dense(10); [1, 28, 28] inputs, batch 64, plain SGD.
 */
export const CNN = { preset: 'cnn', inputShape: [1, 28, 28] as number[], channels: [16, 32], hidden: 128, classes: 10, batch: 64, lr: 0.01, seed: 4321 } as const;

/** One synthetic CNN batch: pixels in [0, 1) ([batch, 1, 28, 28], the same values in NHWC since C = 1), labels in [0, 10). */
export function cnnBatch(): { x: Float32Array; labels: Int32Array } {
  const x = uniform(CNN.batch * 28 * 28, CNN.seed + 1, 0, 1);
  const r = new Rng(CNN.seed + 2);
  const labels = Int32Array.from({ length: CNN.batch }, () => r.int(CNN.classes));
  return { x, labels };
}

/** Fewer steps for the CNN (a step costs several MLP steps), unless --steps asks. */
export function cnnStepPlan(opts: ChildOptions): StepPlan {
  const plan = stepPlan(opts);
  return opts.stepsGiven ? plan : { ...plan, steps: Math.min(plan.steps, 10), warmup: Math.min(plan.warmup, 2) };
}

/**
 * Square matmuls for the given sizes, then the MLP's own products as that library's MLP issues
 * them: our Dense stores W as [out, in] (forward x·Wᵀ); TF.js and jax-js users store [in, out]
 * (forward x·W), which moves the transposes into their backward pass. Same shapes and FLOPs.
 */
export function matmulShapes(sizes: number[], library: Library): MatmulShape[] {
  const [d0, d1, d2, d3] = MLP.layers;
  const B = MLP.batch;
  const ours = library === 'ours';
  const mm = (benchmark: string, M: number, N: number, K: number, transA = false, transB = false): MatmulShape => ({ benchmark, M, N, K, transA, transB });
  return [
    ...sizes.map((n) => mm(`matmul-${n}`, n, n, n)),
    mm('matmul-mlp-fwd1', B, d1, d0, false, ours),
    mm('matmul-mlp-fwd2', B, d2, d1, false, ours),
    mm('matmul-mlp-fwd3', B, d3, d2, false, ours),
    // Backward of layer 2: dx = dz·W (ours) or dz·Wᵀ (peers).
    mm('matmul-mlp-bwd2-dx', B, d1, d2, false, !ours),
    // Backward of layer 1: dW = dzᵀ·x (ours, [out, in]) or xᵀ·dz (peers, [in, out]): the largest backward product.
    ours ? mm('matmul-mlp-bwd1-dw', d1, d0, B, true) : mm('matmul-mlp-bwd1-dw', d0, d1, B, true),
  ];
}

/** How a shape reads, for the JSON (e.g. "128x784 · (512x784)ᵀ"). */
export function describeShape(s: MatmulShape): string {
  const { a, b } = operandShapes(s);
  return `${s.transA ? `(${a.join('x')})ᵀ` : a.join('x')} · ${s.transB ? `(${b.join('x')})ᵀ` : b.join('x')}`;
}

export function matmulFlops(s: MatmulShape): number {
  return 2 * s.M * s.N * s.K;
}

/** Shapes of A and B as stored for a matmul shape. */
export function operandShapes(s: MatmulShape): { a: [number, number]; b: [number, number] } {
  return { a: s.transA ? [s.K, s.M] : [s.M, s.K], b: s.transB ? [s.N, s.K] : [s.K, s.N] };
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

// ---- seeded inputs, the same in every library ---------------------------------------------------

export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r.uniform(lo, hi);
  return out;
}

/** MLP weights in [in, out] layout (TF.js and jax-js); Glorot uniform, zero biases. */
export interface MlpWeights {
  /** w[i]: [layers[i], layers[i+1]] row-major. */
  w: Float32Array[];
  b: Float32Array[];
}

export function mlpWeights(): MlpWeights {
  const w: Float32Array[] = [];
  const b: Float32Array[] = [];
  for (let i = 0; i + 1 < MLP.layers.length; i++) {
    const nIn = MLP.layers[i];
    const nOut = MLP.layers[i + 1];
    const lim = Math.sqrt(6 / (nIn + nOut));
    w.push(uniform(nIn * nOut, MLP.seed + i, -lim, lim));
    b.push(new Float32Array(nOut));
  }
  return { w, b };
}

/** [in, out] row-major to [out, in] row-major (our Dense layout). */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** One synthetic batch: pixels in [0, 1), labels in [0, 10). */
export function mlpBatch(): { x: Float32Array; labels: Int32Array } {
  const x = uniform(MLP.batch * MLP.layers[0], MLP.seed + 100, 0, 1);
  const r = new Rng(MLP.seed + 200);
  const labels = new Int32Array(MLP.batch);
  for (let i = 0; i < labels.length; i++) labels[i] = r.int(MLP.layers[MLP.layers.length - 1]);
  return { x, labels };
}

// ---- timing -----------------------------------------------------------------------------------

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

// ---- child plumbing ---------------------------------------------------------------------------

/** Run one benchmark; a failure becomes an error row instead of ending the child. */
export async function attempt(rows: BenchRow[], base: Omit<BenchRow, 'value' | 'error'>, f: () => Promise<BenchRow[] | BenchRow>): Promise<void> {
  try {
    const out = await f();
    rows.push(...(Array.isArray(out) ? out : [out]));
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${base.library}/${base.backend} ${base.benchmark}: FAILED: ${msg}\n`);
    rows.push({ ...base, error: msg.split('\n')[0].slice(0, 500) });
  }
}

/**
 * Start a child: stdout is reserved for the one result line, so console.log goes to stderr; a
 * SIGTERM (the orchestrator's timeout) still prints what was measured so far.
 */
export function startChild(rows: BenchRow[], info: { adapter?: AdapterInfo }, who: Omit<BenchRow, 'benchmark' | 'unit'>): void {
  console.log = console.error;
  console.info = console.error;
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  process.on('SIGTERM', () => {
    rows.push({ ...who, benchmark: 'timeout', unit: 'ms', error: 'stopped by the orchestrator (timeout); rows above were measured' });
    emit({ rows, adapter: info.adapter }, 124);
  });
}

/** Print the result line and exit (a process holding a GPU device may not exit by itself). */
export function emit(result: ChildResult, code = 0): void {
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code));
}

/** A short log line on stderr (the orchestrator shows it as progress). */
export function log(line: string): void {
  process.stderr.write(line + '\n');
}

// ---- training steps ---------------------------------------------------------------------------

export interface TimedSteps {
  /** Per-step milliseconds of the timed steps. */
  samples: number[];
  /** Loss after the first warm-up step and after the last timed step (same data every step). */
  firstLoss: number;
  lastLoss: number;
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
  let firstLoss = NaN;
  const w0 = performance.now();
  for (let i = 0; i < Math.max(1, plan.warmup); i++) {
    if (i > 0 && performance.now() - w0 > budget / 4) break;
    const l = await step();
    if (i === 0) firstLoss = l ?? NaN;
  }
  const samples: number[] = [];
  let lastLoss = NaN;
  const t0 = performance.now();
  for (let i = 0; i < plan.steps; i++) {
    if (i >= 3 && performance.now() - t0 > budget) break;
    const s0 = performance.now();
    lastLoss = (await step()) ?? NaN;
    samples.push(performance.now() - s0);
  }
  return { samples, firstLoss, lastLoss };
}

/** The two MLP rows (median step time, and the samples/s that median implies) from timed steps. */
export function trainRows(
  who: { library: Library; backend: Backend },
  benchmark: 'mlp' | 'cnn',
  batch: number,
  t: TimedSteps,
  extra: Record<string, unknown> = {},
): BenchRow[] {
  if (!Number.isFinite(t.lastLoss)) throw new Error(`training gave a non-finite loss (${t.lastLoss})`);
  const ms = median(t.samples);
  const common = {
    steps: t.samples.length,
    minMs: sig(Math.min(...t.samples)),
    maxMs: sig(Math.max(...t.samples)),
    firstLoss: sig(t.firstLoss, 6),
    lastLoss: sig(t.lastLoss, 6),
  };
  return [
    { ...who, benchmark: `${benchmark}-train-step`, value: sig(ms), unit: 'ms', extra: { ...common, batch, ...extra } },
    { ...who, benchmark: `${benchmark}-samples-per-s`, value: sig((batch * 1000) / ms), unit: 'samples/s', extra: { batch, basis: 'batch / median step time' } },
  ];
}
