// CPU reference for shaders/slice.wgsl: copies along one axis between a whole tensor and a part of
// it, in plain loops. Same names and argument order as src/kernels/slice.ts (minus the engine).
// Each is the other's backward: the gradient of y = sliceInto(x) with respect to x is
// sliceFrom(dy), and that of sliceFrom is sliceInto into a zeroed (or accumulating) gradient.
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { sliceGeometry } from '../ops/slice.ts';
import { store, type HostTensor } from './host.ts';

/** dst[..., start : start + src.shape[axis], ...] = src (+= with accumulate). */
export function sliceInto(src: HostTensor, dst: HostTensor, axis: number, start: number, opts: AccumulateOptions = {}): void {
  const g = sliceGeometry('Reference sliceInto', dst, src, axis, start);
  for (let o = 0; o < g.outer; o++) {
    for (let r = 0; r < g.partLen; r++) {
      for (let i = 0; i < g.inner; i++) {
        store(dst.data, (o * g.wholeLen + g.start + r) * g.inner + i, src.data[(o * g.partLen + r) * g.inner + i], opts.accumulate);
      }
    }
  }
}

/** dst = src[..., start : start + dst.shape[axis], ...] (+= with accumulate). */
export function sliceFrom(src: HostTensor, dst: HostTensor, axis: number, start: number, opts: AccumulateOptions = {}): void {
  const g = sliceGeometry('Reference sliceFrom', src, dst, axis, start);
  for (let o = 0; o < g.outer; o++) {
    for (let r = 0; r < g.partLen; r++) {
      for (let i = 0; i < g.inner; i++) {
        store(dst.data, (o * g.partLen + r) * g.inner + i, src.data[(o * g.wholeLen + g.start + r) * g.inner + i], opts.accumulate);
      }
    }
  }
}
