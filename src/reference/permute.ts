// CPU reference for shaders/permute.wgsl: y = x with its axes reordered, and its backward (a
// permute by the inverse permutation), in plain loops over coordinates. Same names and argument
// order as src/kernels/permute.ts (minus the engine). The shape rules live in src/ops/permute.ts.
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { checkPermute, inversePermutation } from '../ops/permute.ts';
import { store, type HostTensor } from './host.ts';

/** Row-major strides of a shape, in elements. */
function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    s[k] = acc;
    acc *= shape[k];
  }
  return s;
}

/** y[c_0, ..., c_{r-1}] = x[the coordinates c placed on axes perm] (y += with accumulate). */
export function permute(x: HostTensor, y: HostTensor, perm: readonly number[], opts: AccumulateOptions = {}): void {
  checkPermute('Reference permute', x, y, perm);
  const xs = stridesOf(x.shape);
  const coord = new Array<number>(y.shape.length).fill(0);
  for (let i = 0; i < y.data.length; i++) {
    let src = 0;
    for (let k = 0; k < coord.length; k++) src += coord[k] * xs[perm[k]];
    store(y.data, i, x.data[src], opts.accumulate);
    // Next coordinate of y, the last axis fastest.
    for (let k = coord.length - 1; k >= 0; k--) {
      if (++coord[k] < y.shape[k]) break;
      coord[k] = 0;
    }
  }
}

/** dx = dy permuted back: the gradient of y = permute(x, perm) (dx += with accumulate). */
export function permuteBackward(dy: HostTensor, dx: HostTensor, perm: readonly number[], opts: AccumulateOptions = {}): void {
  permute(dy, dx, inversePermutation(perm), opts);
}
