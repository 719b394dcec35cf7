// Pooling kernels over NCHW tensors (shaders/pool.wgsl): max, average and global average, forward
// and backward, as validated, replayable dispatches. Backward passes are gathers: deterministic.
import { grid1d, MAX_WORKGROUPS_PER_DIM, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { describe } from '../ops/shape.ts';
import { checkGlobalPool, checkPoolOutput, pool2dGeometry, type AvgPool2dOptions, type Pool2dGeometry, type Pool2dOptions } from '../ops/pooling.ts';
import { withAccumulate } from './accumulate.ts';

export { pool2dOutputShape, type AvgPool2dOptions, type Pool2dOptions } from '../ops/pooling.ts';

const WG = 256;
/** Invocations per workgroup (along a row) of the tiled max-pool backward pass. */
const TILED_WG = 16;
/** argmax is stored as f32: plane indices must stay exact. */
const MAX_EXACT_F32 = 2 ** 24;

function poolParams(g: Pool2dGeometry, includePad = true): Record<string, number> {
  return {
    batch: g.batch,
    channels: g.channels,
    in_h: g.inH,
    in_w: g.inW,
    out_h: g.outH,
    out_w: g.outW,
    k_h: g.kH,
    k_w: g.kW,
    stride_h: g.strideH,
    stride_w: g.strideW,
    pad_h: g.padH,
    pad_w: g.padW,
    include_pad: includePad ? 1 : 0,
  };
}

function checkArgmaxRange(what: string, g: Pool2dGeometry, x: Tensor): void {
  if (g.inH * g.inW > MAX_EXACT_F32) {
    throw new Error(`${what}: ${describe(x)} has ${g.inH * g.inW} pixels per plane; argmax is stored as f32 and is exact only up to ${MAX_EXACT_F32}.`);
  }
}

/**
 * y = max over each window of x; argmax = index ih*W + iw of the (first) maximum within its
 * (b, c) plane, as f32. x [B, C, H, W], y and argmax [B, C, OH, OW]. Padding never wins.
 */
export async function maxPool2dForward(e: Engine, x: Tensor, y: Tensor, argmax: Tensor, opts: Pool2dOptions): Promise<Dispatch> {
  const what = 'Kernel pool.max_pool2d_forward';
  const g = pool2dGeometry(what, x, opts);
  checkPoolOutput(what, g, x, y);
  checkPoolOutput(what, g, x, argmax);
  checkArgmaxRange(what, g, x);
  const k = await e.kernel('pool', 'max_pool2d_forward', { WG });
  return e.dispatch(k, { x, y, argmax }, grid1d(y.size, WG), poolParams(g));
}

/** dx [B, C, H, W] = the dy of every window whose argmax is that element, summed; overwritten (added to with accumulate). */
export async function maxPool2dBackward(e: Engine, dy: Tensor, argmax: Tensor, dx: Tensor, opts: Pool2dOptions & AccumulateOptions): Promise<Dispatch> {
  const what = 'Kernel pool.max_pool2d_backward';
  const g = pool2dGeometry(what, dx, opts);
  checkPoolOutput(what, g, dx, dy);
  checkPoolOutput(what, g, dx, argmax);
  checkArgmaxRange(what, g, dx);
  // Windows that tile the input (the usual MaxPool2d(k)) take a loop-free kernel on a 3-D grid.
  const planes = g.batch * g.channels;
  if (g.strideH === g.kH && g.strideW === g.kW && g.padH === 0 && g.padW === 0 && planes <= MAX_WORKGROUPS_PER_DIM && g.inH <= MAX_WORKGROUPS_PER_DIM) {
    const k = await e.kernel('pool', 'max_pool2d_backward_tiled', withAccumulate({ WG: TILED_WG }, opts));
    return e.dispatch(k, { dy, argmax_in: argmax, dx }, [Math.ceil(g.inW / TILED_WG), g.inH, planes], poolParams(g));
  }
  const k = await e.kernel('pool', 'max_pool2d_backward', withAccumulate({ WG }, opts));
  return e.dispatch(k, { dy, argmax_in: argmax, dx }, grid1d(dx.size, WG), poolParams(g));
}

/** y = mean over each window of x (divisor: see `countIncludePad`, default true as in PyTorch). */
export async function avgPool2dForward(e: Engine, x: Tensor, y: Tensor, opts: AvgPool2dOptions): Promise<Dispatch> {
  const what = 'Kernel pool.avg_pool2d_forward';
  const g = pool2dGeometry(what, x, opts);
  checkPoolOutput(what, g, x, y);
  const k = await e.kernel('pool', 'avg_pool2d_forward', { WG });
  return e.dispatch(k, { x, y }, grid1d(y.size, WG), poolParams(g, opts.countIncludePad ?? true));
}

/** dx [B, C, H, W] = sum over the windows covering each element of dy / divisor; overwritten (added to with accumulate). */
export async function avgPool2dBackward(e: Engine, dy: Tensor, dx: Tensor, opts: AvgPool2dOptions & AccumulateOptions): Promise<Dispatch> {
  const what = 'Kernel pool.avg_pool2d_backward';
  const g = pool2dGeometry(what, dx, opts);
  checkPoolOutput(what, g, dx, dy);
  const k = await e.kernel('pool', 'avg_pool2d_backward', withAccumulate({ WG }, opts));
  return e.dispatch(k, { dy, dx }, grid1d(dx.size, WG), poolParams(g, opts.countIncludePad ?? true));
}

function globalParams(x: Tensor): Record<string, number> {
  const [batch, channels, inH, inW] = x.shape;
  const g: Pool2dGeometry = { batch, channels, inH, inW, outH: 1, outW: 1, kH: inH, kW: inW, strideH: 1, strideW: 1, padH: 0, padW: 0 };
  return poolParams(g);
}

/** y [B, C] = mean of x [B, C, H, W] over H and W. */
export async function globalAvgPoolForward(e: Engine, x: Tensor, y: Tensor): Promise<Dispatch> {
  const what = 'Kernel pool.global_avg_pool_forward';
  checkGlobalPool(what, x, y);
  const k = await e.kernel('pool', 'global_avg_pool_forward', { WG });
  return e.dispatch(k, { x, y }, grid1d(y.size, WG), globalParams(x));
}

/** dx [B, C, H, W] = dy [B, C] / (H*W), broadcast over each plane; overwritten (added to with accumulate). */
export async function globalAvgPoolBackward(e: Engine, dy: Tensor, dx: Tensor, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const what = 'Kernel pool.global_avg_pool_backward';
  checkGlobalPool(what, dx, dy);
  const k = await e.kernel('pool', 'global_avg_pool_backward', withAccumulate({ WG }, opts));
  return e.dispatch(k, { dy, dx }, grid1d(dx.size, WG), globalParams(dx));
}
