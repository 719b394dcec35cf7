// Shape rules of the permute primitive (axes reordered), shared by the kernel wrapper
// (src/kernels/permute.ts), the layers and the CPU reference (src/reference/permute.ts).
import { describe, expectShape, type Shaped } from './shape.ts';

/** Highest rank the permute kernel takes. */
export const MAX_PERMUTE_RANK = 6;

/** Throws unless `perm` is a permutation of 0 .. rank-1. */
export function checkPermutation(what: string, perm: readonly number[], rank: number, t: Shaped): void {
  const ok = perm.length === rank && [...perm].sort((p, q) => p - q).every((p, i) => p === i);
  if (!ok) throw new Error(`${what}: [${perm.join(', ')}] is not a permutation of the ${rank} axes of ${describe(t)}.`);
}

/** The shape of x permuted: out[i] = shape[perm[i]]. */
export function permutedShape(shape: readonly number[], perm: readonly number[]): number[] {
  return perm.map((p) => shape[p]);
}

/** The permutation that undoes `perm` (the backward of a permute is a permute by it). */
export function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** Check y = x permuted by perm: a permutation of x's axes, rank at most 6, and y.shape[i] = x.shape[perm[i]]. */
export function checkPermute(what: string, x: Shaped, y: Shaped, perm: readonly number[]): void {
  if (x.shape.length > MAX_PERMUTE_RANK) throw new Error(`${what}: ${describe(x)} has rank ${x.shape.length}; permute takes rank ${MAX_PERMUTE_RANK} at most.`);
  checkPermutation(what, perm, x.shape.length, x);
  expectShape(what, y, permutedShape(x.shape, perm), `(${describe(x)} with axes [${perm.join(', ')}])`);
}
