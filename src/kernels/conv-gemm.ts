// Implicit-GEMM convolution kernels over NCHW tensors (shaders/conv_gemm.wgsl): shape checks and
// validated, replayable dispatches for the forward pass (bias and ReLU fused) and both gradients
// (with an `accumulate` mode that adds into the gradient buffers). The im2col gather happens in the
// kernels' load stage, so no col matrix is ever stored; the weight gradient alone keeps a small
// scratch of split-K partial sums ([S, IC*KH*KW + 1, OC] floats), owned by its dispatches.
import { grid1d, MAX_WORKGROUPS_PER_DIM, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { checkConvTensors, conv2dGeometry, type Conv2dGeometry, type Conv2dOptions } from '../ops/conv.ts';
import { conv2dParams } from './conv2d.ts';

/**
 * Tiles of C a quad (4 invocations) computes, as rows x columns: rows of output positions (or
 * input positions, or weight rows) by channels. 16 columns suit 16-channel layers; 64 columns
 * the widest.
 */
export const CONV_GEMM_TILES = ['32x16', '32x32', '32x64', '16x16', '16x32', '16x64'] as const;
export type ConvGemmTile = (typeof CONV_GEMM_TILES)[number];

export interface ConvGemmOptions extends Conv2dOptions {
  /** The tile (default: `defaultConvGemmTile` for the pass's GEMM shape). */
  tile?: ConvGemmTile;
}

export interface ConvGemmGradOptions extends Omit<ConvGemmOptions, 'relu'> {
  /** Where the weight gradient's partial sums come from (a planner's scratch); default: its own tensor. */
  scratch?: (shape: number[], label: string) => Tensor;
  /** Add the gradient to what the output buffers hold (ACCUM in the shader) instead of overwriting. */
  accumulate?: boolean;
}

/**
 * Invocations per workgroup for a dispatch of `invocations` (4 per tile): 32, or fewer (down to
 * one quad) when the tiles are few, so that there are still enough workgroups for every CPU thread
 * of a software adapter to take a share (SwiftShader runs a workgroup on one thread; the weight
 * gradient's few tiles ran markedly faster in workgroups of 4 than of 32). GPUs have few tiles to
 * share out only on small convolutions, where the size matters little.
 */
function workgroupSize(invocations: number): number {
  let wg = 32;
  while (wg > 4 && invocations / wg < 64) wg /= 2;
  return wg;
}

/** Invocations per workgroup of the weight gradient's reduction (one per element). */
const REDUCE_WG = 64;

/** div_small in the shader is exact below this; index operands are checked against it. */
const DIV_LIMIT = 2 ** 22;

/** The three passes, by the names the algorithm chooser and the errors use. */
export type ConvPass = 'forward' | 'backward_input' | 'backward_weight';

/**
 * M x N x K of a pass's GEMM (as the kernels see it): forward B*OH*OW x OC x IC*KH*KW; input
 * gradient B*H*W x IC x OC*KH*KW (a stride s visits about 1/s² of the taps per row); weight
 * gradient IC*KH*KW x OC x B*OH*OW.
 */
export function convGemmShape(g: Conv2dGeometry, pass: ConvPass): { M: number; N: number; K: number } {
  const taps = g.kH * g.kW;
  if (pass === 'forward') return { M: g.batch * g.outH * g.outW, N: g.outC, K: g.inC * taps };
  if (pass === 'backward_input') return { M: g.batch * g.inH * g.inW, N: g.inC, K: g.outC * taps };
  return { M: g.inC * taps, N: g.outC, K: g.batch * g.outH * g.outW };
}

/**
 * The tile without measuring: columns to fit the channels (16, 32, or 64 for wider), 32 rows
 * unless the product has 16 or fewer.
 */
export function defaultConvGemmTile(M: number, N: number): ConvGemmTile {
  const cols = N <= 16 ? 16 : N <= 32 ? 32 : 64;
  return `${M <= 16 ? 16 : 32}x${cols}` as ConvGemmTile;
}

function tileConstants(what: string, tile: ConvGemmTile): { RB: number; CB: number } {
  if (!CONV_GEMM_TILES.includes(tile)) throw new Error(`${what}: no tile "${tile}" (have: ${CONV_GEMM_TILES.join(', ')}).`);
  const [rows, cols] = tile.split('x').map(Number);
  return { RB: rows / 4, CB: cols / 16 };
}

function requireSubgroups(e: Engine, what: string): void {
  if (!e.adapter.features.includes('subgroups')) {
    throw new Error(`${what}: needs the 'subgroups' feature (quad swaps), which adapter "${e.adapter.name}" does not offer; use the direct or im2col convolution.`);
  }
}

function checkDivLimit(what: string, name: string, value: number): void {
  if (value >= DIV_LIMIT) throw new Error(`${what}: ${name} = ${value} reaches the kernel's index limit of ${DIV_LIMIT} (2^22); use the direct or im2col convolution.`);
}

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/**
 * Whether a pass's gathers can fall off their plane (PLANE_CHECK in the shader). Forward and
 * weight gradient read x only inside the windows, so only padding can put them off it. The input
 * gradient reads dy at oh = q0 + i - j for the rows i and taps j of each phase class (as the shader
 * counts them); it stays inside when every class's extremes do.
 */
export function needsPlaneCheck(g: Conv2dGeometry, pass: ConvPass): boolean {
  if (pass !== 'backward_input') return g.padH > 0 || g.padW > 0;
  const axisLeaves = (n: number, k: number, s: number, p: number, out: number) => {
    for (let c = 0; c < s; c++) {
      const first = (c + s - (p % s)) % s;
      const rows = n > first ? ceilDiv(n - first, s) : 0;
      const taps = k > c ? ceilDiv(k - c, s) : 0;
      const q0 = (first + p - c) / s;
      if (rows > 0 && taps > 0 && (q0 - (taps - 1) < 0 || q0 + rows - 1 > out - 1)) return true;
    }
    return false;
  };
  return axisLeaves(g.inH, g.kH, g.strideH, g.padH, g.outH) || axisLeaves(g.inW, g.kW, g.strideW, g.padW, g.outW);
}

// Placeholders bound where a shader declares bias / db but the call has none (never read or written).
const placeholders = new WeakMap<Engine, Tensor>();
function placeholder(e: Engine): Tensor {
  let t = placeholders.get(e);
  if (!t || t.disposed) {
    t = e.zeros([4], 'conv_gemm:none');
    placeholders.set(e, t);
  }
  return t;
}

/**
 * y = relu?(conv2d(x, w) + b). x [B, IC, H, W], w [OC, IC, KH, KW], b [OC] or null,
 * y [B, OC, OH, OW] with OH = floor((H + 2 ph - KH) / sh) + 1 (same for W); zero padding.
 */
export async function convGemmForward(e: Engine, x: Tensor, w: Tensor, b: Tensor | null, y: Tensor, opts: ConvGemmOptions = {}): Promise<Dispatch> {
  const what = 'Kernel conv_gemm.conv_gemm_forward';
  const g = conv2dGeometry(what, x, w, opts);
  checkConvTensors(what, g, x, w, y, b);
  requireSubgroups(e, what);
  const { M, N, K } = convGemmShape(g, 'forward');
  checkDivLimit(what, 'K = IC*KH*KW', K);
  checkDivLimit(what, 'OH*OW + 32 (an image plus a tile of rows)', g.outH * g.outW + 32);
  const { RB, CB } = tileConstants(what, opts.tile ?? defaultConvGemmTile(M, N));
  const tiles = ceilDiv(M, 4 * RB) * ceilDiv(N, 16 * CB);
  const WG = workgroupSize(4 * tiles);
  const k = await e.kernel('conv_gemm', 'conv_gemm_forward', { WG, RB, CB, HAS_BIAS: b ? 1 : 0, PLANE_CHECK: needsPlaneCheck(g, 'forward') ? 1 : 0 });
  return e.dispatch(k, { x, w, bias: b ?? placeholder(e), y }, grid1d(4 * tiles, WG), conv2dParams(g, opts.relu));
}

/** Tiles of the input gradient: per phase class of rows, ceil(rows / tile rows) x column tiles (as the shader counts them). */
function inputGradTiles(g: Conv2dGeometry, rows: number, cols: number): number {
  let tiles = 0;
  const count = (n: number, s: number, p: number, c: number) => {
    const first = (c + s - (p % s)) % s;
    return n > first ? ceilDiv(n - first, s) : 0;
  };
  for (let ch = 0; ch < g.strideH; ch++) {
    for (let cw = 0; cw < g.strideW; cw++) {
      const classRows = g.batch * count(g.inH, g.strideH, g.padH, ch) * count(g.inW, g.strideW, g.padW, cw);
      tiles += ceilDiv(classRows, rows) * ceilDiv(g.inC, cols);
    }
  }
  return tiles;
}

/**
 * dx [B, IC, H, W] = gradient with respect to the convolution's input, from dy [B, OC, OH, OW] and
 * w [OC, IC, KH, KW]: overwritten, or added to with `accumulate`. Gather form (no atomics).
 * `relu` does not apply (give the gradient at the pre-activation).
 */
export async function convGemmBackwardInput(e: Engine, dy: Tensor, w: Tensor, dx: Tensor, opts: ConvGemmGradOptions = {}): Promise<Dispatch> {
  const what = 'Kernel conv_gemm.conv_gemm_backward_input';
  const g = conv2dGeometry(what, dx, w, opts);
  checkConvTensors(what, g, dx, w, dy, null);
  requireSubgroups(e, what);
  const { M, N } = convGemmShape(g, 'backward_input');
  checkDivLimit(what, 'OC*KH*KW', g.outC * g.kH * g.kW);
  checkDivLimit(what, 'H*W + 32 (an image plus a tile of rows)', g.inH * g.inW + 32);
  const { RB, CB } = tileConstants(what, opts.tile ?? defaultConvGemmTile(M, N));
  const tiles = inputGradTiles(g, 4 * RB, 16 * CB);
  const WG = workgroupSize(4 * tiles);
  const k = await e.kernel('conv_gemm', 'conv_gemm_backward_input', { WG, RB, CB, ACCUM: opts.accumulate ? 1 : 0, PLANE_CHECK: needsPlaneCheck(g, 'backward_input') ? 1 : 0 });
  return e.dispatch(k, { dy, w, dx }, grid1d(4 * tiles, WG), conv2dParams(g));
}

/**
 * Quads the weight gradient aims for, over all splits: a few workgroups per CPU thread on a
 * software adapter. More splits cost stores of partial sums and a longer reduction.
 */
const WEIGHT_GRAD_QUADS = 64;
/** Fewest positions a split sums: below this the partial sums' stores and reduction outweigh the products. */
const MIN_SPLIT_POSITIONS = 256;

/**
 * How the weight gradient splits its sum over the B*OH*OW positions: S splits of L positions (L a
 * multiple of 4, as the shader computes it), and the scratch of partial sums [S, IC*KH*KW + 1, OC].
 */
export function convGemmWeightSplits(g: Conv2dGeometry, tile: ConvGemmTile): { splits: number; positions: number; scratchShape: [number, number, number] } {
  const { RB, CB } = tileConstants('convGemmWeightSplits', tile);
  const { M, N, K } = convGemmShape(g, 'backward_weight');
  const tiles = ceilDiv(M, 4 * RB) * ceilDiv(N, 16 * CB);
  const splits = Math.max(1, Math.min(ceilDiv(WEIGHT_GRAD_QUADS, tiles), Math.floor(K / MIN_SPLIT_POSITIONS), MAX_WORKGROUPS_PER_DIM));
  // As the shader computes it; rounding up may leave the last split empty (it then writes zeros).
  const positions = Math.ceil(ceilDiv(K, splits) / 4) * 4;
  return { splits, positions, scratchShape: [splits, M + 1, N] };
}

/** Bytes of scratch the weight gradient needs (its split-K partial sums). */
export function convGemmScratchBytes(g: Conv2dGeometry, tile?: ConvGemmTile): number {
  const t = tile ?? defaultConvGemmTile(convGemmShape(g, 'backward_weight').M, g.outC);
  const [S, R, N] = convGemmWeightSplits(g, t).scratchShape;
  return S * R * N * 4;
}

/** Make `d.dispose()` also release `owned` (scratch that lives as long as the dispatch). */
function disposeWith(d: Dispatch, owned: Tensor): Dispatch {
  const release = d.dispose.bind(d);
  d.dispose = () => {
    release();
    owned.dispose();
  };
  return d;
}

/**
 * dw [OC, IC, KH, KW] = sum over B, OH, OW of dy times the input each weight saw; db [OC] (when
 * given) = sum of dy over B, OH, OW. Both overwritten, or added to with `accumulate`. x [B, IC, H, W],
 * dy [B, OC, OH, OW]. Two dispatches: the split products into a scratch of partial sums (allocated
 * here, released when the second dispatch is disposed), then their fixed-order sum.
 */
export async function convGemmBackwardWeight(e: Engine, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor | null, opts: ConvGemmGradOptions = {}): Promise<Dispatch[]> {
  const what = 'Kernel conv_gemm.conv_gemm_backward_weight';
  const g = conv2dGeometry(what, x, dw, opts);
  checkConvTensors(what, g, x, dw, dy, db);
  requireSubgroups(e, what);
  const { M, N } = convGemmShape(g, 'backward_weight');
  const tile = opts.tile ?? defaultConvGemmTile(M, N);
  const { RB, CB } = tileConstants(what, tile);
  const { splits, positions, scratchShape } = convGemmWeightSplits(g, tile);
  checkDivLimit(what, 'OH*OW + positions per split', g.outH * g.outW + positions);
  const tiles = ceilDiv(M, 4 * RB) * ceilDiv(N, 16 * CB);
  const WG = workgroupSize(4 * tiles * splits);
  const groups = ceilDiv(4 * tiles, WG);
  if (groups > MAX_WORKGROUPS_PER_DIM) throw new Error(`${what}: ${tiles} tiles of dw need ${groups} workgroups, over the limit of ${MAX_WORKGROUPS_PER_DIM}.`);
  const hasBias = db ? 1 : 0;
  const products = await e.kernel('conv_gemm', 'conv_gemm_backward_weight', { WG, RB, CB, HAS_BIAS: hasBias, PLANE_CHECK: needsPlaneCheck(g, 'backward_weight') ? 1 : 0 });
  const reduce = await e.kernel('conv_gemm', 'conv_gemm_backward_weight_reduce', { WG: REDUCE_WG, HAS_BIAS: hasBias, ACCUM: opts.accumulate ? 1 : 0 });
  const own = !opts.scratch;
  const part = opts.scratch ? opts.scratch(scratchShape, `${dw.label}:split-k partial sums`) : e.tensor(scratchShape, undefined, `${dw.label}:split-k partial sums`);
  try {
    const params = conv2dParams(g);
    const first = e.dispatch(products, { x, dy, part }, [groups, splits, 1], params);
    const second = e.dispatch(reduce, { part, dw, db: db ?? placeholder(e) }, grid1d((M + 1) * N, REDUCE_WG), params);
    return [first, own ? disposeWith(second, part) : second];
  } catch (err) {
    if (own) part.dispose();
    throw err;
  }
}
