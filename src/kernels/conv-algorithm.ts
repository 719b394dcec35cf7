// Which convolution algorithm to run, per adapter and conv shape, chosen by measurement like the
// matmul's variants (src/kernels/tune.ts): the first time a shape meets an adapter, every candidate
// of each pass (forward, input gradient, weight gradient) is built on random data of that exact
// shape, timed, and checked on sampled elements against sums computed here on the CPU; the
// fastest correct one is kept, in memory and in the tuner's disk cache. The candidates:
//   direct  src/kernels/conv2d.ts: 8x8 register blocks gathered straight from x; no scratch.
//   im2col  src/kernels/im2col.ts + src/kernels/matmul.ts: unfold x into col [B*OH*OW, IC*KH*KW],
//           one tuned matmul, a batched transpose between [B, P, OC] rows and NCHW; backward, the
//           transpose of dy, a matmul, and col2im (input gradient) or the bias sums (weight
//           gradient). Needs col (and the rows) as scratch; a candidate only when col fits the
//           adapter's maxStorageBufferBindingSize. Each pass unfolds x itself (no col kept from
//           forward), so that passes can be planned and run in any order.
//   gemm    src/kernels/conv-gemm.ts: implicit GEMM, the gather in the load stage; no scratch but
//           the weight gradient's split-K partial sums. Needs 'subgroups'. Tried with the default
//           tile for the pass's GEMM shape and with its neighbour in width.
// `buildConvPass` builds the dispatches of any algorithm for one pass, for the tuner and for the
// layer that plans with the choice. Every algorithm can add into the gradients (a value read by
// several ops gets the sum of their gradients); a spec with `accumulate` is timed adding.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { describe } from '../ops/shape.ts';
import { colShape, conv2dGeometry, type Conv2dGeometry } from '../ops/conv.ts';
import { Rng } from '../util/random.ts';
import { convGemmBackwardInput, convGemmBackwardWeight, convGemmForward, convGemmScratchBytes, convGemmShape, defaultConvGemmTile, type ConvGemmTile, type ConvPass } from './conv-gemm.ts';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward } from './conv2d.ts';
import { col2im, im2col, transposeBatched } from './im2col.ts';
import { biasGrad, matmul } from './matmul.ts';
import { timeDispatch, tuneCachePath, tuneRecord, tuningEnabled } from './tune.ts';

export type { ConvPass } from './conv-gemm.ts';

/** The algorithms, by family. */
export type ConvAlgorithm = 'direct' | 'im2col' | 'gemm';

/** A convolution as a layer knows it at plan time. */
export interface ConvSpec {
  /** x: [B, IC, H, W]. */
  input: readonly [number, number, number, number];
  /** w: [OC, IC, KH, KW]. */
  weight: readonly [number, number, number, number];
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
  /** The forward pass adds a bias (and the weight gradient computes db). */
  bias: boolean;
  /** The forward pass applies a ReLU. */
  relu: boolean;
  /** The gradients add into dx, dw and db (a value read by several ops gets the sum of their gradients). */
  accumulate?: boolean;
}

/** One pass's choice. */
export interface ConvPassChoice {
  algorithm: ConvAlgorithm;
  /** The implicit GEMM's tile (algorithm 'gemm' only). */
  tile?: ConvGemmTile;
  /** Why, in words: the measured times, or where the choice came from. */
  reason: string;
  /** GPU memory the pass needs beyond its inputs and outputs (bytes). */
  scratchBytes: number;
  /** Seconds per run of every candidate measured (Infinity: failed); empty when not measured now. */
  seconds: Record<string, number>;
}

export interface ConvAlgorithmChoices {
  forward: ConvPassChoice;
  backwardInput: ConvPassChoice;
  backwardWeight: ConvPassChoice;
}

/** The tensors a pass reads and writes: forward x, w, bias, y; input gradient dy, w, dx; weight gradient x, dy, dw, db. */
export interface ConvTensors {
  x?: Tensor;
  w?: Tensor;
  bias?: Tensor | null;
  y?: Tensor;
  dy?: Tensor;
  dx?: Tensor;
  dw?: Tensor;
  db?: Tensor | null;
}

/** The dispatches of one pass, in order, and what they own. */
export interface ConvPassPlan {
  dispatches: Dispatch[];
  /** Scratch allocated for the plan (released by dispose). */
  scratchBytes: number;
  dispose(): void;
}

export interface BuildOptions {
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
  /** Forward: ReLU after the bias. */
  relu?: boolean;
  /** Gradients: add into dx / dw / db instead of overwriting. */
  accumulate?: boolean;
  /**
   * Where the pass's scratch comes from (im2col's col and rows, the implicit GEMM's split-K partial
   * sums): a model's planner shares it by lifetime. Default: tensors of its own, released by dispose.
   */
  scratch?: (shape: number[], label: string) => Tensor;
}

const PASS_KEYS: Record<ConvPass, keyof ConvAlgorithmChoices> = { forward: 'forward', backward_input: 'backwardInput', backward_weight: 'backwardWeight' };
const PASSES: readonly ConvPass[] = ['forward', 'backward_input', 'backward_weight'];
const ALGORITHMS: readonly ConvAlgorithm[] = ['gemm', 'im2col', 'direct'];

function need(what: string, t: ConvTensors, names: (keyof ConvTensors)[]): void {
  for (const n of names)
    if (!t[n])
      throw new Error(
        `${what}: tensor "${n}" was not given (given: ${
          Object.keys(t)
            .filter((k) => t[k as keyof ConvTensors])
            .join(', ') || 'none'
        }).`,
      );
}

/** Parse 'direct' | 'im2col' | 'gemm' | 'gemm:<tile>' into an algorithm and tile. */
function parseVariant(v: string): { algorithm: ConvAlgorithm; tile?: ConvGemmTile } {
  const [algorithm, tile] = v.split(':') as [ConvAlgorithm, ConvGemmTile | undefined];
  if (!ALGORITHMS.includes(algorithm)) throw new Error(`Convolution: no algorithm "${v}" (have: direct, im2col, gemm[:tile]).`);
  return { algorithm, tile };
}

/** Bytes of im2col's scratch: col [B*OH*OW, IC*KH*KW] and the rows [B*OH*OW, OC]. */
function im2colScratch(g: Conv2dGeometry): { colBytes: number; rowsBytes: number } {
  const [M, K] = colShape(g);
  return { colBytes: M * K * 4, rowsBytes: M * g.outC * 4 };
}

/**
 * The dispatches of `algorithm` ('direct', 'im2col', 'gemm' or 'gemm:<tile>', or a pass choice) for
 * one pass, with the scratch it needs allocated here and released by the plan's dispose.
 * Errors name the pass, the algorithm and the tensors.
 */
export async function buildConvPass(e: Engine, pass: ConvPass, algorithm: string | Pick<ConvPassChoice, 'algorithm' | 'tile'>, t: ConvTensors, opts: BuildOptions = {}): Promise<ConvPassPlan> {
  const { algorithm: alg, tile } = typeof algorithm === 'string' ? parseVariant(algorithm) : algorithm;
  const what = `Convolution ${pass} (${alg}${tile ? ` ${tile}` : ''})`;
  const geometry = { stride: opts.stride, padding: opts.padding };
  const dispatches: Dispatch[] = [];
  const scratch: Tensor[] = [];
  const alloc = (shape: number[], label: string): Tensor => {
    if (opts.scratch) return opts.scratch(shape, label);
    const s = e.tensor(shape, undefined, label);
    scratch.push(s);
    return s;
  };
  const plan: ConvPassPlan = {
    dispatches,
    scratchBytes: 0,
    dispose() {
      for (const d of dispatches) d.dispose();
      for (const s of scratch) s.dispose();
    },
  };
  try {
    if (pass === 'forward') {
      need(what, t, ['x', 'w', 'y']);
      const { x, w, y } = t as Required<ConvTensors>;
      const bias = t.bias ?? null;
      if (alg === 'direct') dispatches.push(await conv2dForward(e, x, w, bias, y, { ...geometry, relu: opts.relu }));
      else if (alg === 'gemm') dispatches.push(await convGemmForward(e, x, w, bias, y, { ...geometry, relu: opts.relu, tile }));
      else {
        const g = conv2dGeometry(what, x, w, geometry);
        const { col, rows, P } = im2colTensors(e, g, alloc, x.label);
        const [, K] = colShape(g);
        dispatches.push(await im2col(e, x, col, { kernel: [g.kH, g.kW], ...geometry }));
        dispatches.push(await matmul(e, col, w.view([g.outC, K], `${w.label} as [OC, K]`), rows, { transB: true, bias: bias ?? undefined, activation: opts.relu ? 'relu' : undefined }));
        dispatches.push(await transposeBatched(e, rows.view([g.batch, P, g.outC]), y.view([g.batch, g.outC, P], `${y.label} as [B, OC, P]`)));
      }
    } else if (pass === 'backward_input') {
      need(what, t, ['dy', 'w', 'dx']);
      const { dy, w, dx } = t as Required<ConvTensors>;
      if (alg === 'direct') dispatches.push(await conv2dBackwardInput(e, dy, w, dx, { ...geometry, accumulate: opts.accumulate }));
      else if (alg === 'gemm') dispatches.push(await convGemmBackwardInput(e, dy, w, dx, { ...geometry, tile, accumulate: opts.accumulate }));
      else {
        const g = conv2dGeometry(what, dx, w, geometry);
        const { col, rows, P } = im2colTensors(e, g, alloc, dx.label);
        const [, K] = colShape(g);
        dispatches.push(await transposeBatched(e, dy.view([g.batch, g.outC, P], `${dy.label} as [B, OC, P]`), rows.view([g.batch, P, g.outC])));
        dispatches.push(await matmul(e, rows, w.view([g.outC, K], `${w.label} as [OC, K]`), col)); // dcol [M, OC]·[OC, K]
        dispatches.push(await col2im(e, col, dx, { kernel: [g.kH, g.kW], ...geometry, accumulate: opts.accumulate }));
      }
    } else {
      need(what, t, ['x', 'dy', 'dw']);
      const { x, dy, dw } = t as Required<ConvTensors>;
      const db = t.db ?? null;
      if (alg === 'direct') dispatches.push(await conv2dBackwardWeight(e, x, dy, dw, db, { ...geometry, accumulate: opts.accumulate }));
      else if (alg === 'gemm') {
        const ds = await convGemmBackwardWeight(e, x, dy, dw, db, { ...geometry, tile, accumulate: opts.accumulate, scratch: opts.scratch });
        dispatches.push(...ds);
        plan.scratchBytes += convGemmScratchBytes(conv2dGeometry(what, x, dw, geometry), tile);
      } else {
        const g = conv2dGeometry(what, x, dw, geometry);
        const { col, rows, P } = im2colTensors(e, g, alloc, dw.label);
        const [, K] = colShape(g);
        dispatches.push(await transposeBatched(e, dy.view([g.batch, g.outC, P], `${dy.label} as [B, OC, P]`), rows.view([g.batch, P, g.outC])));
        dispatches.push(await im2col(e, x, col, { kernel: [g.kH, g.kW], ...geometry }));
        dispatches.push(await matmul(e, rows, col, dw.view([g.outC, K], `${dw.label} as [OC, K]`), { transA: true, accumulate: opts.accumulate })); // [OC, M]·[M, K]
        if (db) dispatches.push(await biasGrad(e, rows, db, { accumulate: opts.accumulate }));
      }
    }
  } catch (err) {
    plan.dispose();
    throw err;
  }
  plan.scratchBytes += scratch.reduce((s, x) => s + x.byteLength, 0);
  return plan;
}

/** col [M, K] and rows [M, OC] for the im2col path, checked against the binding limit first. */
function im2colTensors(e: Engine, g: Conv2dGeometry, alloc: (shape: number[], label: string) => Tensor, label: string | undefined): { col: Tensor; rows: Tensor; P: number } {
  const [M, K] = colShape(g);
  const limit = e.adapter.limits.maxStorageBufferBindingSize;
  const { colBytes } = im2colScratch(g);
  if (colBytes > limit) throw new Error(`Convolution im2col: col [B*OH*OW, IC*KH*KW] = [${M}, ${K}] needs ${colBytes} bytes, over the adapter's maxStorageBufferBindingSize of ${limit} bytes.`);
  const col = alloc([M, K], `${label ?? 'conv'}:col`);
  const rows = alloc([M, g.outC], `${label ?? 'conv'}:rows`);
  return { col, rows, P: g.outH * g.outW };
}

// ---- choosing --------------------------------------------------------------------------------

/** The geometry of a spec; errors name the spec's shapes. */
function specGeometry(spec: ConvSpec): Conv2dGeometry {
  return conv2dGeometry('Convolution', { shape: spec.input, label: 'input' }, { shape: spec.weight, label: 'weight' }, { stride: spec.stride, padding: spec.padding });
}

function shapeClass(g: Conv2dGeometry, pass: ConvPass, spec: ConvSpec): string {
  const base = `b${g.batch}.c${g.inC}.${g.inH}x${g.inW}.o${g.outC}.k${g.kH}x${g.kW}.s${g.strideH}x${g.strideW}.p${g.padH}x${g.padW}`;
  if (pass === 'forward') return `${base}${spec.bias ? '.bias' : ''}${spec.relu ? '.relu' : ''}`;
  return `${base}${pass === 'backward_weight' && spec.bias ? '.bias' : ''}${spec.accumulate ? '.acc' : ''}`;
}

/**
 * The candidates of a pass on this engine's adapter ('gemm:<tile>', 'im2col', 'direct'), why any
 * algorithm was left out, and the choice when measuring is off (the first candidate).
 */
export function convAlgorithmCandidates(e: Pick<Engine, 'adapter'>, spec: ConvSpec, pass: ConvPass): { candidates: string[]; excluded: string[]; heuristic: string } {
  return candidatesFor(e, specGeometry(spec), pass);
}

function candidatesFor(e: Pick<Engine, 'adapter'>, g: Conv2dGeometry, pass: ConvPass): { candidates: string[]; excluded: string[]; heuristic: string } {
  const candidates: string[] = [];
  const excluded: string[] = [];
  if (e.adapter.features.includes('subgroups')) {
    const { M, N } = convGemmShape(g, pass);
    const tile = defaultConvGemmTile(M, N);
    const [rows, cols] = tile.split('x');
    candidates.push(`gemm:${tile}`);
    // The next narrower tile: more tiles across the channels, fewer wasted columns at the edge.
    if (cols !== '16') candidates.push(`gemm:${rows}x${cols === '64' ? '32' : '16'}`);
  } else {
    excluded.push(`gemm needs 'subgroups', which adapter "${e.adapter.name}" does not offer`);
  }
  const limit = e.adapter.limits.maxStorageBufferBindingSize;
  const { colBytes, rowsBytes } = im2colScratch(g);
  const [M, K] = colShape(g);
  if (colBytes <= limit && rowsBytes <= limit) candidates.push('im2col');
  else excluded.push(`im2col needs col [B*OH*OW, IC*KH*KW] = [${M}, ${K}], ${colBytes} bytes, over the adapter's maxStorageBufferBindingSize of ${limit}`);
  candidates.push('direct');
  return { candidates, excluded, heuristic: candidates[0] };
}

/** Bytes of scratch a candidate needs for a pass. */
function scratchOf(g: Conv2dGeometry, pass: ConvPass, variant: string): number {
  const { algorithm, tile } = parseVariant(variant);
  if (algorithm === 'direct') return 0;
  if (algorithm === 'gemm') return pass === 'backward_weight' ? convGemmScratchBytes(g, tile) : 0;
  const { colBytes, rowsBytes } = im2colScratch(g);
  return colBytes + rowsBytes;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * Choose the algorithm of each pass of a convolution on this engine's adapter: measured at first
 * use (a few runs of each candidate on random data of this exact shape; each checked on sampled
 * elements against CPU sums, so a candidate that computes wrongly is never chosen), then
 * remembered per engine and in the tuner's disk cache per adapter (WGTRAIN_TUNE=0: no measuring,
 * the implicit GEMM where the adapter has subgroups, else im2col where its scratch fits, else
 * direct). Call it when planning a layer.
 * `passes` limits the work to some passes (the others get the heuristic, marked as such).
 */
export async function chooseConvAlgorithms(e: Engine, spec: ConvSpec, opts: { passes?: readonly ConvPass[] } = {}): Promise<ConvAlgorithmChoices> {
  const g = specGeometry(spec);
  const inputs = new TuningInputs(e, g, spec);
  try {
    const out = {} as ConvAlgorithmChoices;
    for (const pass of PASSES) {
      const { candidates, excluded, heuristic } = candidatesFor(e, g, pass);
      const measured = !opts.passes || opts.passes.includes(pass);
      const rec = measured
        ? await tuneRecord(e, {
            family: `conv2d-${pass}`,
            version: 1,
            shapeClass: shapeClass(g, pass, spec),
            candidates,
            heuristic,
            measure: (variant, best) => inputs.measure(pass, variant, best),
          })
        : { variant: heuristic, seconds: {}, how: 'heuristic' as const };
      if (rec.seconds[rec.variant] === Infinity) {
        throw new Error(`Convolution ${pass} of ${describe({ shape: spec.input, label: 'input' })} by ${describe({ shape: spec.weight, label: 'weight' })}: every candidate failed (${candidates.join(', ')}); see the warnings above.`);
      }
      const { algorithm, tile } = parseVariant(rec.variant);
      const scratchBytes = scratchOf(g, pass, rec.variant);
      out[PASS_KEYS[pass]] = { algorithm, tile, scratchBytes, seconds: rec.seconds, reason: reasonOf(rec, scratchBytes, excluded, measured) };
    }
    return out;
  } finally {
    inputs.dispose();
  }
}

function reasonOf(rec: { variant: string; seconds: Record<string, number>; how: string }, scratchBytes: number, excluded: string[], measured: boolean): string {
  let why: string;
  if (rec.how === 'measured') {
    const times = Object.entries(rec.seconds)
      .sort((a, b) => a[1] - b[1])
      .map(([v, s]) => (s === Infinity ? `${v} failed its check` : `${v} ${(s * 1e3).toFixed(2)} ms`));
    why = `fastest measured: ${times.join(', ')}`;
  } else if (rec.how === 'disk') {
    why = `measured in an earlier run on this adapter (cached in ${tuneCachePath() ?? 'browser storage'})`;
  } else {
    why = !measured ? 'not measured (pass not asked for): the default' : tuningEnabled() ? 'the only candidate' : 'WGTRAIN_TUNE=0: the default without measuring';
  }
  const notes = [...excluded];
  if (scratchBytes) notes.push(`scratch ${mib(scratchBytes)}`);
  return `${rec.variant}: ${why}${notes.length ? `; ${notes.join('; ')}` : ''}`;
}

/** Sampled elements compared per candidate, and how far off they may be (f32 sums vs float64). */
const SAMPLES = 16;

/** Random tensors of the conv's shape, shared by every candidate's timing, with host copies for the checks. */
type AllTensors = { [K in keyof ConvTensors]-?: Tensor };

class TuningInputs {
  private t: AllTensors | null = null;
  private host: { x: Float32Array; w: Float32Array; bias: Float32Array; dy: Float32Array } | null = null;

  constructor(
    private e: Engine,
    private g: Conv2dGeometry,
    private spec: ConvSpec,
  ) {}

  private tensors(): AllTensors {
    if (this.t) return this.t;
    const { e, g } = this;
    const rng = new Rng(4321);
    const data = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
    const xShape = [g.batch, g.inC, g.inH, g.inW];
    const wShape = [g.outC, g.inC, g.kH, g.kW];
    const yShape = [g.batch, g.outC, g.outH, g.outW];
    const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
    this.host = { x: data(size(xShape)), w: data(size(wShape)), bias: data(g.outC), dy: data(size(yShape)) };
    this.t = {
      x: e.tensor(xShape, this.host.x, 'tune:x'),
      w: e.tensor(wShape, this.host.w, 'tune:w'),
      bias: e.tensor([g.outC], this.host.bias, 'tune:bias'),
      y: e.tensor(yShape, undefined, 'tune:y'),
      dy: e.tensor(yShape, this.host.dy, 'tune:dy'),
      dx: e.tensor(xShape, undefined, 'tune:dx'),
      dw: e.tensor(wShape, undefined, 'tune:dw'),
      db: e.tensor([g.outC], undefined, 'tune:db'),
    };
    return this.t;
  }

  /** Seconds per run of `variant` for `pass`, after checking its result; throws when wrong. */
  async measure(pass: ConvPass, variant: string, best: number): Promise<number> {
    const t = this.tensors();
    const { spec, g } = this;
    const io: ConvTensors = { ...t, bias: spec.bias ? t.bias : null, db: spec.bias ? t.db : null };
    const plan = await buildConvPass(this.e, pass, variant, io, { stride: [g.strideH, g.strideW], padding: [g.padH, g.padW], relu: spec.relu });
    try {
      const s = await timeDispatch(this.e, plan.dispatches, { repeats: 2, giveUpAfter: 2 * best });
      await this.check(pass, variant);
      return s;
    } finally {
      plan.dispose();
    }
  }

  private async check(pass: ConvPass, variant: string): Promise<void> {
    const { g, spec } = this;
    const h = this.host!;
    const t = this.t!;
    const rng = new Rng(99);
    const ok = (got: number, want: number, terms: number) => Math.abs(got - want) <= 1e-3 * Math.sqrt(terms) + 1e-3 * Math.abs(want);
    const fail = (where: string, got: number, want: number) => {
      throw new Error(`candidate ${variant} computed ${where} = ${got}, expected ${want}`);
    };
    const xAt = (b: number, c: number, i: number, j: number) => (i < 0 || j < 0 || i >= g.inH || j >= g.inW ? 0 : h.x[((b * g.inC + c) * g.inH + i) * g.inW + j]);
    const wAt = (o: number, c: number, kh: number, kw: number) => h.w[((o * g.inC + c) * g.kH + kh) * g.kW + kw];
    const dyAt = (b: number, o: number, i: number, j: number) => h.dy[((b * g.outC + o) * g.outH + i) * g.outW + j];
    if (pass === 'forward') {
      const y = await t.y.read();
      for (let s = 0; s < SAMPLES; s++) {
        const [b, o, i, j] = [rng.int(g.batch), rng.int(g.outC), rng.int(g.outH), rng.int(g.outW)];
        let want = spec.bias ? h.bias[o] : 0;
        for (let c = 0; c < g.inC; c++) for (let kh = 0; kh < g.kH; kh++) for (let kw = 0; kw < g.kW; kw++) want += wAt(o, c, kh, kw) * xAt(b, c, i * g.strideH - g.padH + kh, j * g.strideW - g.padW + kw);
        if (spec.relu) want = Math.max(want, 0);
        const got = y[((b * g.outC + o) * g.outH + i) * g.outW + j];
        if (!ok(got, want, g.inC * g.kH * g.kW)) fail(`y[${b}, ${o}, ${i}, ${j}]`, got, want);
      }
    } else if (pass === 'backward_input') {
      const dx = await t.dx.read();
      for (let s = 0; s < SAMPLES; s++) {
        const [b, c, i, j] = [rng.int(g.batch), rng.int(g.inC), rng.int(g.inH), rng.int(g.inW)];
        let want = 0;
        for (let o = 0; o < g.outC; o++)
          for (let kh = 0; kh < g.kH; kh++)
            for (let kw = 0; kw < g.kW; kw++) {
              const ni = i + g.padH - kh;
              const nj = j + g.padW - kw;
              if (ni < 0 || nj < 0 || ni % g.strideH || nj % g.strideW || ni / g.strideH >= g.outH || nj / g.strideW >= g.outW) continue;
              want += dyAt(b, o, ni / g.strideH, nj / g.strideW) * wAt(o, c, kh, kw);
            }
        const got = dx[((b * g.inC + c) * g.inH + i) * g.inW + j];
        if (!ok(got, want, g.outC * g.kH * g.kW)) fail(`dx[${b}, ${c}, ${i}, ${j}]`, got, want);
      }
    } else {
      const dw = await t.dw.read();
      const db = spec.bias ? await t.db.read() : null;
      const positions = g.batch * g.outH * g.outW;
      for (let s = 0; s < SAMPLES; s++) {
        const [o, c, kh, kw] = [rng.int(g.outC), rng.int(g.inC), rng.int(g.kH), rng.int(g.kW)];
        let want = 0;
        let wantDb = 0;
        for (let b = 0; b < g.batch; b++)
          for (let i = 0; i < g.outH; i++)
            for (let j = 0; j < g.outW; j++) {
              want += dyAt(b, o, i, j) * xAt(b, c, i * g.strideH - g.padH + kh, j * g.strideW - g.padW + kw);
              wantDb += dyAt(b, o, i, j);
            }
        const got = dw[((o * g.inC + c) * g.kH + kh) * g.kW + kw];
        if (!ok(got, want, positions)) fail(`dw[${o}, ${c}, ${kh}, ${kw}]`, got, want);
        if (db && !ok(db[o], wantDb, positions)) fail(`db[${o}]`, db[o], wantDb);
      }
    }
  }

  dispose(): void {
    if (this.t) for (const x of Object.values(this.t)) x.dispose();
    this.t = null;
  }
}
