// Matmul kernels with fused bias and activation (shaders/matmul.wgsl, shaders/matmul_quad.wgsl),
// 2-D and batched, and the bias gradient (shaders/bias_grad.wgsl): shape checks, per-adapter
// variant selection through the tuner, and validated dispatches built once and replayed.
import { grid1d, MAX_WORKGROUPS_PER_DIM, type Dispatch, type Engine } from '../gpu/engine.ts';
import { shapeStr, type Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { batchedMatmulGeometry, type TransposeOptions } from '../ops/matmul.ts';
import { Rng } from '../util/random.ts';
import { withAccumulate } from './accumulate.ts';
import { ACTIVATIONS, activationId, type Activation } from './activation.ts';
import { timeDispatch, tunedChoice } from './tune.ts';

export interface MatmulOptions {
  /** A is stored [K, M] and used transposed. */
  transA?: boolean;
  /** B is stored [N, K] and used transposed (Dense forward: y = x·Wᵀ, W stored [out, in]). */
  transB?: boolean;
  /** [N], added to every row (fused). */
  bias?: Tensor;
  /** Fused after the bias, with the formulas of shaders/activation.wgsl. */
  activation?: Activation;
  /** LeakyReLU slope, default 0.01. */
  alpha?: number;
  /** Force a variant by name (tests use it); default: the tuned choice for this adapter and shape. */
  variant?: string;
  /** C = C + act(op(A)·op(B) + bias) instead of overwriting C (gradients that accumulate). */
  accumulate?: boolean;
}

interface Variant {
  family: 'matmul' | 'matmul_quad';
  entry: string;
  needsSubgroups: boolean;
  /** Quad variants: workgroup size and grid for G products (the batch folded into x and y). */
  quads?(M: number, N: number, G: number): { wg: number; grid: [number, number, number] };
  /** Other variants: the grid of one product (the batch along z). */
  workgroups?(M: number, N: number): [number, number, number];
}

/**
 * Invocations per workgroup of the quad kernels (a multiple of 4). Small, so that the MLP's
 * 128-row products still make several workgroups for a CPU implementation's threads to share.
 */
const QUAD_WG = 32;

/**
 * Workgroup size and grid of a quad variant for G products of M x N: 4 invocations per quad tile,
 * the matrices' tiles numbered one after the other. A single product keeps QUAD_WG; a batch gets
 * workgroups up to 256 wide (about eight per dispatch or more), since on CPU adapters every
 * workgroup costs a fixed overhead that a batch of small products (attention's) would pay per matrix.
 */
const quadGrid = (rows: number, cols: number) => (M: number, N: number, G: number) => {
  const invocations = G * Math.ceil(M / rows) * Math.ceil(N / cols) * 4;
  const wg = G === 1 ? QUAD_WG : Math.min(256, Math.max(QUAD_WG, 2 ** Math.floor(Math.log2(invocations / 8))));
  return { wg, grid: grid1d(invocations, wg) };
};

const VARIANTS: Record<string, Variant> = {
  // 4x4 of C per invocation from registers, no workgroup memory: the portable CPU-friendly kernel.
  blocked: {
    family: 'matmul',
    entry: 'matmul_blocked',
    needsSubgroups: false,
    workgroups: (M, N) => [Math.ceil(N / 32), Math.ceil(M / 32), 1],
  },
  // 64x64 tiles through workgroup memory: what GPUs want.
  tiled: {
    family: 'matmul',
    entry: 'matmul_tiled',
    needsSubgroups: false,
    workgroups: (M, N) => [Math.ceil(N / 64), Math.ceil(M / 64), 1],
  },
  // Quads share operand loads through quad swaps: fastest on SwiftShader; the names give the rows
  // and columns of C per invocation (a quad covers four times the columns).
  quad32x16: { family: 'matmul_quad', entry: 'matmul_quad32x16', needsSubgroups: true, quads: quadGrid(32, 64) },
  quad32x8: { family: 'matmul_quad', entry: 'matmul_quad32x8', needsSubgroups: true, quads: quadGrid(32, 32) },
  quad16x8: { family: 'matmul_quad', entry: 'matmul_quad16x8', needsSubgroups: true, quads: quadGrid(16, 32) },
};

/** Names of all variants, for tests and benchmarks. */
export const MATMUL_VARIANTS: readonly string[] = Object.keys(VARIANTS);

/** The variants this engine's adapter can run. */
export function matmulVariantsFor(e: Engine): string[] {
  const subgroups = e.adapter.features.includes('subgroups');
  return MATMUL_VARIANTS.filter((v) => subgroups || !VARIANTS[v].needsSubgroups);
}

/**
 * The choice without measuring: on a software adapter the register-blocked kernels (quad ones when
 * the adapter has subgroups, the smaller tile for small outputs), on hardware the tiled kernel.
 */
export function defaultMatmulVariant(e: Engine, M: number, N: number): string {
  if (!e.adapter.isSoftware) return 'tiled';
  if (!e.adapter.features.includes('subgroups')) return 'blocked';
  if (M * N >= 256 * 256) return 'quad32x16';
  return M * N >= 64 * 64 ? 'quad32x8' : 'quad16x8';
}

function rows2d(t: Tensor, what: string): [number, number] {
  if (t.shape.length !== 2) {
    throw new Error(`Kernel matmul: ${what} "${t.label}" ${shapeStr(t.shape)} is ${t.shape.length}-D; matmul takes 2-D tensors [rows, cols].`);
  }
  return [t.shape[0], t.shape[1]];
}

/**
 * M, N, K of C = op(A)·op(B), checking that the operands agree and (when given) that C is [M, N].
 * Errors name the kernel and the tensors' labels and shapes.
 */
export function matmulShape(a: Tensor, b: Tensor, c: Tensor | null, opts: Pick<MatmulOptions, 'transA' | 'transB'> = {}): { M: number; N: number; K: number } {
  const [ar, ac] = rows2d(a, 'A');
  const [br, bc] = rows2d(b, 'B');
  const [M, K] = opts.transA ? [ac, ar] : [ar, ac];
  const [K2, N] = opts.transB ? [bc, br] : [br, bc];
  const desc = `"${a.label}" ${shapeStr(a.shape)}${opts.transA ? 'ᵀ' : ''} · "${b.label}" ${shapeStr(b.shape)}${opts.transB ? 'ᵀ' : ''}`;
  if (K !== K2) throw new Error(`Kernel matmul: inner dimensions differ (${K} and ${K2}) in ${desc}.`);
  if (c) {
    const [cr, cc] = rows2d(c, 'C');
    if (cr !== M || cc !== N) throw new Error(`Kernel matmul: output "${c.label}" ${shapeStr(c.shape)} must be [${M}, ${N}] for ${desc}.`);
  }
  return { M, N, K };
}

const noBias = new WeakMap<Engine, Tensor>();

function placeholderBias(e: Engine): Tensor {
  let t = noBias.get(e);
  if (!t || t.disposed) {
    t = e.zeros([4], 'matmul:no-bias');
    noBias.set(e, t);
  }
  return t;
}

/** C[M,N] = act(op(A)·op(B) + bias). A: [M,K] or [K,M] (transA); B: [K,N] or [N,K] (transB). 2-D tensors only. */
export async function matmul(e: Engine, a: Tensor, b: Tensor, c: Tensor, opts: MatmulOptions = {}): Promise<Dispatch> {
  const { M, N, K } = matmulShape(a, b, c, opts);
  if (opts.bias && (opts.bias.shape.length !== 1 || opts.bias.shape[0] !== N)) {
    throw new Error(`Kernel matmul: bias "${opts.bias.label}" ${shapeStr(opts.bias.shape)} must be [${N}] for output "${c.label}" ${shapeStr(c.shape)}.`);
  }
  if (opts.activation && !ACTIVATIONS.includes(opts.activation)) {
    throw new Error(`Kernel matmul: unknown activation "${opts.activation}" (have: ${ACTIVATIONS.join(', ')}).`);
  }
  const variant = opts.variant ?? (await chooseMatmulVariant(e, M, N, K, opts));
  return matmulDispatch(e, variant, a, b, c, { M, N, K }, opts);
}

/** Options of `batchedMatmul`: the transposes, accumulation, and (for tests) a forced variant. */
export interface BatchedMatmulOptions extends TransposeOptions, AccumulateOptions {
  /** Force a variant by name; default: the tuned choice for the per-matrix shape. */
  variant?: string;
}

/**
 * G independent products in one dispatch: C[g] = op(A[g]) · op(B[g]) (plus C[g] with accumulate).
 * a [G, M, K] (or [G, K, M] with transA), b [G, K, N] (or [G, N, K] with transB), c [G, M, N]; a or b
 * may be 2-D, the same matrix for every g. G is at most 65,535 (the grid's z). The variant is the
 * one tuned for G products of [M, N, K].
 */
export async function batchedMatmul(e: Engine, a: Tensor, b: Tensor, c: Tensor, opts: BatchedMatmulOptions = {}): Promise<Dispatch> {
  const what = 'Kernel matmul (batched)';
  const g = batchedMatmulGeometry(what, a, b, c, opts);
  if (g.G > MAX_WORKGROUPS_PER_DIM) {
    throw new Error(`${what}: output "${c.label}" ${shapeStr(c.shape)} holds ${g.G} matrices; one dispatch takes at most ${MAX_WORKGROUPS_PER_DIM} (the workgroup limit along z). Split the batch.`);
  }
  const { M, N, K } = g;
  const variant = opts.variant ?? (await chooseMatmulVariant(e, M, N, K, { transA: opts.transA, transB: opts.transB, G: g.G }));
  const batch = { G: g.G, bsa: g.aBatched ? M * K : 0, bsb: g.bBatched ? K * N : 0, bsc: M * N };
  return matmulDispatch(e, variant, a, b, c, { M, N, K, ...batch }, { transA: opts.transA, transB: opts.transB, accumulate: opts.accumulate });
}

/** One operand of `stridedMatmul`: a tensor and where each of its matrices' elements lie (in elements). */
export interface StridedOperand {
  tensor: Tensor;
  /** Where matrix (0, 0) starts. */
  offset: number;
  /** From one group of matrices to the next (attention: one sample to the next). */
  group: number;
  /** From one matrix of a group to the next (attention: one head to the next). */
  matrix: number;
  /** From one row of the operand as used (op(A)'s m, op(B)'s k, C's m) to the next. */
  row: number;
  /** From one column (op(A)'s k, op(B)'s n) to the next; C's columns are always 1 apart. */
  col: number;
}

/** Sizes of a strided product: groups x perGroup matrices C = op(A) op(B), each [M, N] with inner size K. */
export interface StridedDims {
  M: number;
  N: number;
  K: number;
  groups: number;
  perGroup: number;
}

/**
 * groups x perGroup products, C = op(A)·op(B) (C += ... with accumulate), whose operands are strided
 * views of larger tensors: one head's q, k or v inside a [T, 3D] projection, one head's output
 * inside [T, D]. Each operand is checked to lie within its tensor; the error names the tensor.
 */
export async function stridedMatmul(e: Engine, a: StridedOperand, b: StridedOperand, c: Omit<StridedOperand, 'col'>, dims: StridedDims, opts: AccumulateOptions & { variant?: string } = {}): Promise<Dispatch> {
  const what = 'Kernel matmul (strided)';
  const { M, N, K, groups, perGroup } = dims;
  for (const [k, v] of Object.entries(dims)) if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${k} = ${v} must be a positive integer.`);
  const reach = (o: Omit<StridedOperand, 'col'> & { col?: number }, rows: number, cols: number) => o.offset + (groups - 1) * o.group + (perGroup - 1) * o.matrix + (rows - 1) * o.row + (cols - 1) * (o.col ?? 1);
  for (const [name, o, rows, cols] of [
    ['A', a, M, K],
    ['B', b, K, N],
    ['C', c, M, N],
  ] as const) {
    const last = reach(o, rows, cols);
    if ([o.offset, o.group, o.matrix, o.row, 'col' in o ? o.col : 1].some((x) => !Number.isInteger(x) || x < 0) || last >= o.tensor.size) {
      throw new Error(
        `${what}: ${name} "${o.tensor.label}" ${shapeStr(o.tensor.shape)} holds ${o.tensor.size} elements, but ${groups}x${perGroup} matrices of ${rows}x${cols} at offset ${o.offset} (strides: group ${o.group}, matrix ${o.matrix}, row ${o.row}${'col' in o ? `, col ${o.col}` : ''}) reach element ${last}.`,
      );
    }
  }
  const G = groups * perGroup;
  const transA = a.col !== 1;
  const transB = b.col !== 1;
  const variant = opts.variant ?? (await chooseMatmulVariant(e, M, N, K, { transA, transB, G }));
  if (!VARIANTS[variant]?.quads && G > MAX_WORKGROUPS_PER_DIM) {
    throw new Error(`${what}: ${G} matrices; variant ${variant} takes at most ${MAX_WORKGROUPS_PER_DIM} per dispatch (the workgroup limit along z).`);
  }
  const size: MatmulSize = {
    M,
    N,
    K,
    G,
    gi: perGroup,
    oa: a.offset,
    bsa2: a.group,
    bsa: a.matrix,
    sam: a.row,
    sak: a.col,
    ob: b.offset,
    bsb2: b.group,
    bsb: b.matrix,
    sbk: b.row,
    sbn: b.col,
    oc: c.offset,
    bsc2: c.group,
    bsc: c.matrix,
    ldc: c.row,
  };
  return matmulDispatch(e, variant, a.tensor, b.tensor, c.tensor, size, { accumulate: opts.accumulate });
}

/**
 * A product's sizes, and where its matrices lie: G matrices in groups of gi, matrix g at offset
 * o + (g / gi) * bs2 + (g % gi) * bs of each operand (elements); the rows of C ldc apart; A's and
 * B's element strides in sam, sak, sbk, sbn (default: packed, by the transposes).
 */
interface MatmulSize {
  M: number;
  N: number;
  K: number;
  G?: number;
  gi?: number;
  bsa?: number;
  bsb?: number;
  bsc?: number;
  bsa2?: number;
  bsb2?: number;
  bsc2?: number;
  oa?: number;
  ob?: number;
  oc?: number;
  ldc?: number;
  sam?: number;
  sak?: number;
  sbk?: number;
  sbn?: number;
}

async function matmulDispatch(e: Engine, variant: string, a: Tensor, b: Tensor, c: Tensor, size: MatmulSize, opts: MatmulOptions): Promise<Dispatch> {
  const v = VARIANTS[variant];
  if (!v) throw new Error(`Kernel matmul: no variant "${variant}" (have: ${MATMUL_VARIANTS.join(', ')}).`);
  if (v.needsSubgroups && !e.adapter.features.includes('subgroups')) {
    throw new Error(`Kernel matmul: variant "${variant}" needs the 'subgroups' feature, which adapter "${e.adapter.name}" does not offer.`);
  }
  const { M, N, K } = size;
  const constants: Record<string, number> = { HAS_BIAS: opts.bias ? 1 : 0, ACT: opts.activation ? activationId(opts.activation) : 0 };
  const G = size.G ?? 1;
  const quads = v.quads?.(M, N, G);
  if (quads) constants.WG = quads.wg;
  const k = await e.kernel(v.family, v.entry, withAccumulate(constants, opts));
  const params = {
    M,
    N,
    K,
    // op(A)[m, k] = a[m * sam + k * sak]; op(B)[k, n] = b[k * sbk + n * sbn]
    sam: size.sam ?? (opts.transA ? 1 : K),
    sak: size.sak ?? (opts.transA ? M : 1),
    sbk: size.sbk ?? (opts.transB ? 1 : N),
    sbn: size.sbn ?? (opts.transB ? K : 1),
    alpha: opts.alpha ?? 0.01,
    // Matrix g starts g * bs elements into its buffer; 0 for a 2-D product (G = 1) and for a 2-D
    // operand shared by a batch.
    bsa: size.bsa ?? 0,
    bsb: size.bsb ?? 0,
    bsc: size.bsc ?? 0,
    G,
    // Without groups, one group of all G matrices: matrix g at o + g * bs.
    gi: size.gi ?? G,
    bsa2: size.bsa2 ?? 0,
    bsb2: size.bsb2 ?? 0,
    bsc2: size.bsc2 ?? 0,
    oa: size.oa ?? 0,
    ob: size.ob ?? 0,
    oc: size.oc ?? 0,
    ldc: size.ldc ?? N,
  };
  const buffers: Record<string, Tensor> = { a, b, c };
  if (k.bindings.some((x) => x.name === 'bias')) buffers.bias = opts.bias ?? placeholderBias(e);
  if (quads) return e.dispatch(k, buffers, quads.grid, params);
  const [gx, gy] = v.workgroups!(M, N);
  return e.dispatch(k, buffers, [gx, gy, G], params);
}

/** Shape class for tuning: log2 buckets of M, N, K (and of G for a batch of products) and the transposes. */
export function matmulShapeClass(M: number, N: number, K: number, transA = false, transB = false, G = 1): string {
  const l = (x: number) => Math.ceil(Math.log2(x));
  return `m${l(M)}.n${l(N)}.k${l(K)}.${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}${G > 1 ? `.g${l(G)}` : ''}`;
}

/**
 * Multiply-adds of one tuning run at most (about 50 ms on a 2-core software adapter); K is cut (to
 * no less than 16) to stay under it. Large enough that the MLP's products are timed at their real
 * K and square ones at K >= 128: with a K much shorter than the real one, the tile's prologue and
 * stores weigh too much and the smaller tiles win where the larger ones are faster.
 */
const TUNE_MACS = 1 << 27;

/** What `chooseMatmulVariant` tunes for: the transposes, and G for a batch of G products in one dispatch. */
export interface MatmulTuneOptions extends Pick<MatmulOptions, 'transA' | 'transB'> {
  G?: number;
}

/**
 * The variant the tuner picks for this adapter and shape (measured once per shape class). A batch
 * is timed as a batch: the quad kernels fold it into wide workgroups, so the best variant for 128
 * small products is not the best for one.
 */
export async function chooseMatmulVariant(e: Engine, M: number, N: number, K: number, opts: MatmulTuneOptions = {}): Promise<string> {
  const G = opts.G ?? 1;
  const heuristic = defaultMatmulVariant(e, M, N);
  // Likely fastest first, so that clearly slower variants are cut short after one run. Software
  // adapters run workgroup barriers as coroutine switches: the tiled kernel is several times slower
  // there (bench/matmul.ts) and takes seconds to compile, so it is not tried.
  const order = e.adapter.isSoftware ? ['quad32x16', 'quad32x8', 'quad16x8', 'blocked'] : ['tiled', 'quad32x16', 'quad32x8', 'quad16x8', 'blocked'];
  const supported = matmulVariantsFor(e);
  const candidates = [heuristic, ...order.filter((v) => v !== heuristic && supported.includes(v) && (G <= MAX_WORKGROUPS_PER_DIM || VARIANTS[v].quads))];
  const Kt = Math.min(K, Math.max(16, Math.floor(TUNE_MACS / (M * N * G))));
  // Tuning operands, made at the first measurement (none when the choice is remembered).
  const held: { inputs?: { a: Tensor; b: Tensor; c: Tensor; ad: Float32Array; bd: Float32Array } } = {};
  try {
    return await tunedChoice(e, {
      family: 'matmul',
      // 2: timed at a longer K, in two passes, with waits that no longer spin the main thread.
      version: 2,
      shapeClass: matmulShapeClass(M, N, K, opts.transA, opts.transB, G),
      candidates,
      heuristic,
      measure: async (variant, best) => {
        if (!held.inputs) {
          const rng = new Rng(1234);
          const ad = Float32Array.from({ length: G * M * Kt }, () => rng.uniform(-1, 1));
          const bd = Float32Array.from({ length: G * Kt * N }, () => rng.uniform(-1, 1));
          held.inputs = {
            a: e.tensor([G * M * Kt], ad, 'tune:a'),
            b: e.tensor([G * Kt * N], bd, 'tune:b'),
            c: e.tensor([G * M * N], undefined, 'tune:c'),
            ad,
            bd,
          };
        }
        const { a, b, c, ad, bd } = held.inputs;
        // Plain product (no bias, no activation): the choice holds for every epilogue.
        const size = { M, N, K: Kt, G, bsa: M * Kt, bsb: Kt * N, bsc: M * N };
        const d = await matmulDispatch(e, variant, a, b, c, size, { transA: opts.transA, transB: opts.transB });
        try {
          const s = await timeDispatch(e, d, { repeats: 2, giveUpAfter: 2 * best });
          checkSample(variant, await c.read(), ad, bd, G, M, N, Kt, opts);
          return s;
        } finally {
          d.dispose();
        }
      },
    });
  } finally {
    if (held.inputs) for (const t of [held.inputs.a, held.inputs.b, held.inputs.c]) t.dispose();
  }
}

/** A variant must compute the product before it can win: check a few entries against the CPU. */
function checkSample(variant: string, got: Float32Array, a: Float32Array, b: Float32Array, G: number, M: number, N: number, K: number, opts: Pick<MatmulOptions, 'transA' | 'transB'>): void {
  const rng = new Rng(99);
  for (let s = 0; s < 16; s++) {
    const g = rng.int(G);
    const m = rng.int(M);
    const n = rng.int(N);
    const [oa, ob, oc] = [g * M * K, g * K * N, g * M * N + m * N + n];
    let want = 0;
    for (let k = 0; k < K; k++) want += (opts.transA ? a[oa + k * M + m] : a[oa + m * K + k]) * (opts.transB ? b[ob + n * K + k] : b[ob + k * N + n]);
    if (!(Math.abs(got[oc] - want) <= 1e-3 * Math.sqrt(K) + 1e-3 * Math.abs(want))) {
      throw new Error(`variant ${variant} computed C[${g}, ${m}, ${n}] = ${got[oc]}, expected ${want}`);
    }
  }
}

const BIAS_GRAD_WG = 64;

/**
 * db[N] = column sums of dy[M,N] (the bias gradient; db += ... with accumulate). Deterministic (no
 * float atomics). Also the gradient of an operand broadcast along leading dimensions: view dy as
 * [rows, operand size].
 */
export async function biasGrad(e: Engine, dy: Tensor, db: Tensor, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const k = await e.kernel('bias_grad', 'bias_grad', withAccumulate({ WG: BIAS_GRAD_WG }, opts));
  if (dy.shape.length !== 2) {
    throw new Error(`Kernel ${k.name}: dy "${dy.label}" ${shapeStr(dy.shape)} must be 2-D [M, N] (db "${db.label}" ${shapeStr(db.shape)}).`);
  }
  const [M, N] = dy.shape;
  if (db.shape.length !== 1 || db.shape[0] !== N) {
    throw new Error(`Kernel ${k.name}: db "${db.label}" ${shapeStr(db.shape)} must be [${N}] for dy "${dy.label}" ${shapeStr(dy.shape)}.`);
  }
  return e.dispatch(k, { dy, db }, grid1d(N, BIAS_GRAD_WG), { M, N });
}
