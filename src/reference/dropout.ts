// CPU reference for shaders/dropout.wgsl: the same integer hash in 32-bit unsigned arithmetic, so
// masks match the GPU's bit for bit. Same names and argument order as src/kernels/dropout.ts
// (minus the engine).
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { store } from './host.ts';

/** PCG-RXS-M-XS 32-bit permutation, as in the shader (u32 wrap-around via Math.imul and >>> 0). */
export function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The shader's hash of (seed, i): pcg(i + pcg(seed)). */
export function dropoutHash(seed: number, i: number): number {
  return pcg((i + pcg(seed)) >>> 0);
}

/** Keep threshold and scale for drop probability p, in the shader's f32 arithmetic (p rounded to f32 first). */
export function dropoutConstants(p: number): { threshold: number; scale: number } {
  const pf = Math.fround(p);
  return {
    threshold: Math.min(Math.floor(pf * 2 ** 32), 2 ** 32 - 1),
    scale: pf < 1 ? Math.fround(1 / Math.fround(1 - pf)) : 0,
  };
}

/** Inverted dropout: mask[i] = keep ? 1/(1-p) : 0, y = x * mask. x, y, mask: [n]. */
export function dropoutForward(x: Float32Array, y: Float32Array, mask: Float32Array, opts: { p: number; seed: number }): void {
  const { threshold, scale } = dropoutConstants(opts.p);
  for (let i = 0; i < x.length; i++) {
    mask[i] = dropoutHash(opts.seed, i) >= threshold ? scale : 0;
    y[i] = x[i] * mask[i];
  }
}

/** dx = dy * mask (dx += with accumulate). */
export function dropoutBackward(dy: ArrayLike<number>, mask: ArrayLike<number>, dx: Float32Array | Float64Array, opts: AccumulateOptions = {}): void {
  for (let i = 0; i < dy.length; i++) store(dx, i, dy[i] * mask[i], opts.accumulate);
}
