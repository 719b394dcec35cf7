// Shape rules of the elementwise primitives (add, mul, scale), shared by the kernel wrappers
// (src/kernels/elementwise.ts), the layers and the CPU reference (src/reference/elementwise.ts).
import { describe, expectShape, type Shaped } from './shape.ts';

/** Options of `addForward`: y = alpha·a + beta·b. */
export interface AddOptions {
  /** Default 1. */
  alpha?: number;
  /** Default 1. */
  beta?: number;
}

/** Sizes of a binary elementwise op: n = a.size values, b repeating every nb of them. */
export interface BroadcastGeometry {
  n: number;
  nb: number;
}

/**
 * The broadcast rule of the binary elementwise ops: b has a's shape, or a trailing part of it (after
 * dropping b's leading 1s), and repeats along a's leading dimensions: a [B, T, D] with b [B, T, D],
 * [T, D], [1, T, D], [D] or [1]. y has a's shape. Then b[i % nb] pairs with a[i].
 */
export function broadcastGeometry(what: string, a: Shaped, b: Shaped, y: Shaped): BroadcastGeometry {
  let first = 0;
  while (first < b.shape.length && b.shape[first] === 1) first++;
  const core = b.shape.slice(first);
  const tail = a.shape.slice(a.shape.length - core.length);
  if (core.length > a.shape.length || core.some((d, i) => d !== tail[i])) {
    throw new Error(`${what}: ${describe(b)} does not broadcast against ${describe(a)}: its shape must be a trailing part of the other's (leading 1s aside), repeated along the leading dimensions.`);
  }
  expectShape(what, y, a.shape, `(the shape of ${describe(a)})`);
  const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
  return { n: size(a.shape), nb: size(core) };
}
