// CPU reference for shaders/softmax.wgsl: plain loops in float64, same names and argument order as
// src/kernels/softmax.ts (minus the engine), plus the row length C (the last dimension), which
// flat arrays cannot carry, after the kernel's own arguments and before the options.
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { store, type Floats } from './host.ts';

export type { Floats } from './host.ts';

/** y = softmax(x) over each row of C values. x, y: [..., C]. */
export function softmaxForward(x: ArrayLike<number>, y: Floats, C: number): void {
  const B = x.length / C;
  for (let b = 0; b < B; b++) {
    const base = b * C;
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, x[base + c]);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(x[base + c] - m);
    for (let c = 0; c < C; c++) y[base + c] = Math.exp(x[base + c] - m) / sum;
  }
}

/** dx = y * (dy - sum_c dy*y) per row (dx += with accumulate), y the forward output. y, dy, dx: [..., C]. */
export function softmaxBackward(y: ArrayLike<number>, dy: ArrayLike<number>, dx: Floats, C: number, opts: AccumulateOptions = {}): void {
  const B = y.length / C;
  for (let b = 0; b < B; b++) {
    const base = b * C;
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dy[base + c] * y[base + c];
    for (let c = 0; c < C; c++) store(dx, base + c, y[base + c] * (dy[base + c] - dot), opts.accumulate);
  }
}

/** y = softmax(scale * x) over each row of C values. x, y: [..., C]. */
export function scaledSoftmaxForward(x: ArrayLike<number>, y: Floats, scale: number, C: number): void {
  softmaxForward(
    Array.from(x, (v) => scale * v),
    y,
    C,
  );
}

/** dx = scale * y * (dy - sum_c dy*y) per row (dx += with accumulate), y the forward output. y, dy, dx: [..., C]. */
export function scaledSoftmaxBackward(y: ArrayLike<number>, dy: ArrayLike<number>, dx: Floats, scale: number, C: number, opts: AccumulateOptions = {}): void {
  const B = y.length / C;
  for (let b = 0; b < B; b++) {
    const base = b * C;
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dy[base + c] * y[base + c];
    for (let c = 0; c < C; c++) store(dx, base + c, scale * y[base + c] * (dy[base + c] - dot), opts.accumulate);
  }
}
