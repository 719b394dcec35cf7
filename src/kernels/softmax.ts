// Softmax kernels (shaders/softmax.wgsl): softmax over the last dimension of a tensor of any rank
// (rows = all leading dimensions) and its backward pass, plain or with a scale fused in
// (attention's softmax(scores / sqrt(head width))).
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { checkSoftmaxScale, softmaxRows } from '../ops/softmax.ts';
import { withAccumulate } from './accumulate.ts';

const WG = 64;

/** y = softmax(x) over the last dimension (stable: the row maximum is subtracted first). x, y: [..., C], same shape. */
export async function softmaxForward(e: Engine, x: Tensor, y: Tensor): Promise<Dispatch> {
  const [B, C] = softmaxRows('Kernel softmax.softmax_forward', x, y);
  const k = await e.kernel('softmax', 'softmax_forward', { WG });
  return e.dispatch(k, { x, y }, grid1d(B, WG), { rows: B, cols: C, scale: 1 });
}

/**
 * dx = y * (dy - sum_c dy*y) over the last dimension, with y the forward output (dx += ... with
 * accumulate). y, dy, dx: [..., C], same shape.
 */
export async function softmaxBackward(e: Engine, y: Tensor, dy: Tensor, dx: Tensor, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const [B, C] = softmaxRows('Kernel softmax.softmax_backward', y, dy, dx);
  const k = await e.kernel('softmax', 'softmax_backward', withAccumulate({ WG }, opts));
  return e.dispatch(k, { y_in: y, dy, dx }, grid1d(B, WG), { rows: B, cols: C, scale: 1 });
}

/** The _vec4 entry and its bindings (the same tensors under their vec4 names) when C is a multiple of 4. */
function rowsLayout(entry: string, C: number, buffers: Record<string, Tensor>): { entry: string; buffers: Record<string, Tensor> } {
  if (C % 4 !== 0) return { entry, buffers };
  return { entry: `${entry}_vec4`, buffers: Object.fromEntries(Object.entries(buffers).map(([name, t]) => [`${name}4`, t])) };
}

/**
 * y = softmax(scale * x) over the last dimension, in one pass (attention's scores scaled by
 * 1/sqrt(head width)); stable for either sign of scale. x, y: [..., C], same shape.
 */
export async function scaledSoftmaxForward(e: Engine, x: Tensor, y: Tensor, scale: number): Promise<Dispatch> {
  const what = 'Kernel softmax.scaled_softmax_forward';
  const [B, C] = softmaxRows(what, x, y);
  checkSoftmaxScale(what, scale, x);
  const l = rowsLayout('scaled_softmax_forward', C, { x, y });
  const k = await e.kernel('softmax', l.entry, { WG });
  return e.dispatch(k, l.buffers, grid1d(B, WG), { rows: B, cols: C, scale });
}

/**
 * dx = scale * y * (dy - sum_c dy*y) over the last dimension, with y the forward output of
 * `scaledSoftmaxForward` (dx += ... with accumulate). y, dy, dx: [..., C], same shape.
 */
export async function scaledSoftmaxBackward(e: Engine, y: Tensor, dy: Tensor, dx: Tensor, scale: number, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const what = 'Kernel softmax.scaled_softmax_backward';
  const [B, C] = softmaxRows(what, y, dy, dx);
  checkSoftmaxScale(what, scale, y);
  const l = rowsLayout('scaled_softmax_backward', C, { y_in: y, dy, dx });
  const k = await e.kernel('softmax', l.entry, withAccumulate({ WG }, opts));
  return e.dispatch(k, l.buffers, grid1d(B, WG), { rows: B, cols: C, scale });
}
