// What the orchestrator and every benchmark child share: the row format a child reports, the
// libraries by name, a child's command-line options, and a child's plumbing (one result line on
// stdout, progress on stderr, a failure as an error row). What is measured is in workloads.ts;
// how it is timed, in timing.ts.

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

export const BENCH_GROUPS = ['matmul', 'mlp', 'resnet', 'vit'] as const;
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
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(code));
}

/** A short log line on stderr (the orchestrator shows it as progress). */
export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}
