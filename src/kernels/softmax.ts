// Softmax kernels (shaders/softmax.wgsl): softmax over the last dimension of a tensor of any rank
// (rows = all leading dimensions) and its backward pass.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { softmaxRows } from '../ops/softmax.ts';
import { withAccumulate } from './accumulate.ts';

const WG = 64;

/** y = softmax(x) over the last dimension (stable: the row maximum is subtracted first). x, y: [..., C], same shape. */
export async function softmaxForward(e: Engine, x: Tensor, y: Tensor): Promise<Dispatch> {
  const [B, C] = softmaxRows('Kernel softmax.softmax_forward', x, y);
  const k = await e.kernel('softmax', 'softmax_forward', { WG });
  return e.dispatch(k, { x, y }, grid1d(B, WG), { rows: B, cols: C });
}

/**
 * dx = y * (dy - sum_c dy*y) over the last dimension, with y the forward output (dx += ... with
 * accumulate). y, dy, dx: [..., C], same shape.
 */
export async function softmaxBackward(e: Engine, y: Tensor, dy: Tensor, dx: Tensor, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const [B, C] = softmaxRows('Kernel softmax.softmax_backward', y, dy, dx);
  const k = await e.kernel('softmax', 'softmax_backward', withAccumulate({ WG }, opts));
  return e.dispatch(k, { y_in: y, dy, dx }, grid1d(B, WG), { rows: B, cols: C });
}
