// im2col, col2im (shaders/im2col.wgsl) and the batched transpose (shaders/transpose.wgsl): shape checks and validated,
// replayable dispatches. Together with the matmul kernels they make a convolution's im2col path
// (src/nn/conv.ts): im2col unfolds x [B, IC, H, W] into col [B*OH*OW, IC*KH*KW], one matmul does
// the channels, and the transpose moves [B, OH*OW, OC] rows into NCHW; col2im folds a gradient
// with respect to col back onto the input (gather form: deterministic, no atomics).
import { MAX_WORKGROUPS_PER_DIM, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { describe } from '../ops/shape.ts';
import { checkCol, checkTranspose, im2colGeometry, type Im2colOptions } from '../ops/conv.ts';
import { withAccumulate } from './accumulate.ts';
import { conv2dParams } from './conv2d.ts';

export { colShape, im2colGeometry, type Im2colOptions } from '../ops/conv.ts';

/** Invocations per workgroup, split into WX (along the grid's x) times WY (along y). */
const WG = 64;

/**
 * Workgroup shape and 3-D grid for `width` x `height` x `batch` coordinates (x, y, z in the
 * shader). WX is the smallest power of two that holds the width (at most WG), so that an 8-wide
 * image does not leave 56 of 64 lanes idle; WY takes the rest. y and z are capped at 65,535
 * workgroups (the shader loops over the rest); x cannot be, so a width past 65,535 * WX is an error.
 */
function grid3d(what: string, width: number, height: number, batch: number, t: Tensor): { constants: { WX: number; WY: number }; workgroups: [number, number, number] } {
  let WX = 1;
  while (WX < width && WX < WG) WX *= 2;
  const WY = WG / WX;
  const gx = Math.ceil(width / WX);
  if (gx > MAX_WORKGROUPS_PER_DIM) {
    throw new Error(`${what}: ${describe(t)} is ${width} wide, more than ${MAX_WORKGROUPS_PER_DIM} workgroups of ${WX} along x.`);
  }
  return {
    constants: { WX, WY },
    workgroups: [gx, Math.min(Math.ceil(height / WY), MAX_WORKGROUPS_PER_DIM), Math.min(batch, MAX_WORKGROUPS_PER_DIM)],
  };
}

/**
 * Columns each transpose invocation moves (TC in the shader). On SwiftShader the cost is per
 * invocation, not per element, so one element per invocation is several times slower than 16 or
 * more (figures in bench/README.md). GPUs want more invocations in flight instead: 4 there is a
 * guess, not a measurement.
 */
function transposeColumns(e: Engine): number {
  return e.adapter.isSoftware ? 32 : 4;
}

/**
 * col [B*OH*OW, IC*KH*KW] = x [B, IC, H, W] unfolded: row (b, oh, ow), column (ic, kh, kw) (the
 * order of a weight [OC, IC, KH, KW] flattened), zero where the window lies in the padding.
 * Overwrites col.
 */
export async function im2col(e: Engine, x: Tensor, col: Tensor, opts: Im2colOptions): Promise<Dispatch> {
  const what = 'Kernel im2col.im2col';
  const g = im2colGeometry(what, x, opts);
  checkCol(what, g, x, col);
  const grid = grid3d(what, g.outW, g.outH, g.batch, x);
  const k = await e.kernel('im2col', 'im2col', grid.constants);
  return e.dispatch(k, { x, col }, grid.workgroups, conv2dParams(g));
}

/**
 * dx [B, IC, H, W] = dcol [B*OH*OW, IC*KH*KW] folded back: each pixel gets the sum of the dcol
 * entries im2col would have copied from it (the adjoint of im2col). Overwrites dx, or adds into it
 * with accumulate.
 */
export async function col2im(e: Engine, dcol: Tensor, dx: Tensor, opts: Im2colOptions & AccumulateOptions): Promise<Dispatch> {
  const what = 'Kernel im2col.col2im';
  const g = im2colGeometry(what, dx, opts);
  checkCol(what, g, dx, dcol);
  const grid = grid3d(what, g.inW, g.inH, g.batch, dx);
  const k = await e.kernel('im2col', 'col2im', withAccumulate(grid.constants, opts));
  return e.dispatch(k, { dcol, dx }, grid.workgroups, conv2dParams(g));
}

/** dst [batch, cols, rows] = src [batch, rows, cols] transposed per batch. Overwrites dst. */
export async function transposeBatched(e: Engine, src: Tensor, dst: Tensor): Promise<Dispatch> {
  const what = 'Kernel transpose.transpose_batched';
  const [batch, rows, cols] = checkTranspose(what, src, dst);
  const TC = transposeColumns(e);
  const grid = grid3d(what, rows, Math.ceil(cols / TC), batch, src);
  const k = await e.kernel('transpose', 'transpose_batched', { ...grid.constants, TC });
  return e.dispatch(k, { src, dst }, grid.workgroups, { batch, rows, cols });
}
