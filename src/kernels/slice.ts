// Copies along one axis (shaders/slice.wgsl): the kernels of concatenate and split and of their
// backward passes. Concatenate's forward is a sliceInto per input and its backward a sliceFrom per
// input gradient; split is the reverse.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { sliceGeometry } from '../ops/slice.ts';
import { withAccumulate } from './accumulate.ts';

const WG = 256;

/**
 * dst[..., start : start + src.shape[axis], ...] = src (+= with accumulate): src is placed into dst
 * along `axis` (negative: from the end); every other dimension equal.
 */
export async function sliceInto(e: Engine, src: Tensor, dst: Tensor, axis: number, start: number, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const g = sliceGeometry('Kernel slice.slice_into', dst, src, axis, start);
  const n = g.outer * g.partLen * g.inner;
  const params = { n, inner: g.inner, len: g.partLen, src_len: g.partLen, src_start: 0, dst_len: g.wholeLen, dst_start: g.start };
  const k = await e.kernel('slice', 'slice_into', withAccumulate({ WG }, opts));
  return e.dispatch(k, { src, dst }, grid1d(n, WG), params);
}

/**
 * dst = src[..., start : start + dst.shape[axis], ...] (dst += with accumulate): the piece of src
 * along `axis` (negative: from the end); every other dimension equal.
 */
export async function sliceFrom(e: Engine, src: Tensor, dst: Tensor, axis: number, start: number, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const g = sliceGeometry('Kernel slice.slice_from', src, dst, axis, start);
  const n = g.outer * g.partLen * g.inner;
  const params = { n, inner: g.inner, len: g.partLen, src_len: g.wholeLen, src_start: g.start, dst_len: g.partLen, dst_start: 0 };
  const k = await e.kernel('slice', 'slice_from', withAccumulate({ WG }, opts));
  return e.dispatch(k, { src, dst }, grid1d(n, WG), params);
}
