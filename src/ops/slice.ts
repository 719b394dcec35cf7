// Shape rules of the slice primitives (copies along one axis: the pieces of concatenate and
// split), shared by the kernel wrappers (src/kernels/slice.ts), the layers and the CPU reference.
import { describe, type Shaped } from './shape.ts';

/**
 * Sizes of a copy between a whole tensor and a part of it along one axis, both viewed as
 * [outer, axis, inner]: the part covers whole[..., start : start + partLen, ...].
 */
export interface SliceGeometry {
  /** The axis, counted from 0 (a negative one counts from the end). */
  axis: number;
  outer: number;
  inner: number;
  partLen: number;
  wholeLen: number;
  start: number;
}

/**
 * Check that `part` fits into `whole` at `start` along `axis` (negative: from the end): same rank,
 * every other dimension equal, start >= 0 and start + part.shape[axis] <= whole.shape[axis].
 */
export function sliceGeometry(what: string, whole: Shaped, part: Shaped, axis: number, start: number): SliceGeometry {
  const rank = whole.shape.length;
  const ax = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(axis) || ax < 0 || ax >= rank) throw new Error(`${what}: axis ${axis} is not an axis of ${describe(whole)}.`);
  if (part.shape.length !== rank || part.shape.some((d, i) => i !== ax && d !== whole.shape[i])) {
    throw new Error(`${what}: ${describe(part)} and ${describe(whole)} must have the same rank and equal dimensions except axis ${ax}.`);
  }
  const partLen = part.shape[ax];
  const wholeLen = whole.shape[ax];
  if (!Number.isInteger(start) || start < 0 || start + partLen > wholeLen) {
    throw new Error(`${what}: ${describe(part)} at ${start} along axis ${ax} does not fit in ${describe(whole)} (it needs ${start}..${start + partLen} of 0..${wholeLen}).`);
  }
  const prod = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
  return { axis: ax, outer: prod(whole.shape.slice(0, ax)), inner: prod(whole.shape.slice(ax + 1)), partLen, wholeLen, start };
}
