// CPU reference for shaders/reduce.wgsl and shaders/reduce_axis.wgsl: plain loops, float64 sums,
// same names and argument order as src/kernels/reduce.ts (minus the engine).
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { checkReduceAxes, type ReduceAxesOptions } from '../ops/reduce.ts';
import { store, type HostTensor } from './host.ts';

/** acc[slot] += sum(x). x: [n], acc: [k] with slot < k. */
export function sumAccumulate(x: ArrayLike<number>, acc: Float32Array | Float64Array, slot: number): void {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  acc[slot] += s;
}

/** out[b] = index of the largest x[b, c] (first one on ties). x: [B, C], out: [B]. */
export function argmaxRows(x: ArrayLike<number>, out: Float32Array | Float64Array): void {
  const B = out.length;
  const C = x.length / B;
  for (let b = 0; b < B; b++) {
    let best = x[b * C];
    let arg = 0;
    for (let c = 1; c < C; c++) {
      if (x[b * C + c] > best) {
        best = x[b * C + c];
        arg = c;
      }
    }
    out[b] = arg;
  }
}

/** y[o, i] = scale · sum_r x[o, r, i] (x viewed [outer, reduce, inner], y [outer, inner]; y += with accumulate). */
export function reduceAxes(x: HostTensor, y: HostTensor, opts: ReduceAxesOptions & AccumulateOptions): void {
  checkReduceAxes('Reference reduceAxes', x, y, opts);
  const { outer, reduce, inner, scale = 1 } = opts;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let s = 0;
      for (let r = 0; r < reduce; r++) s += x.data[(o * reduce + r) * inner + i];
      store(y.data, o * inner + i, scale * s, opts.accumulate);
    }
  }
}

/** dx[o, r, i] = scale · dy[o, i]: the adjoint (and gradient) of reduceAxes (dx += with accumulate). */
export function broadcastAxes(dy: HostTensor, dx: HostTensor, opts: ReduceAxesOptions & AccumulateOptions): void {
  checkReduceAxes('Reference broadcastAxes', dx, dy, opts);
  const { outer, reduce, inner, scale = 1 } = opts;
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < reduce; r++) {
      for (let i = 0; i < inner; i++) store(dx.data, (o * reduce + r) * inner + i, scale * dy.data[o * inner + i], opts.accumulate);
    }
  }
}
