// Shape rules of the axis reductions (sum and mean over dimensions) and their adjoint, the
// broadcast, shared by the kernel wrappers (src/kernels/reduce.ts), the layers and the CPU
// reference (src/reference/reduce.ts).
import { describe, type Shaped } from './shape.ts';

/**
 * x viewed as [outer, reduce, inner] and y as [outer, inner]: y[o, i] = scale · sum_r x[o, r, i].
 * A sum over a run of adjacent dimensions of any tensor is such a view (mean: scale = 1 / reduce).
 */
export interface ReduceAxesOptions {
  outer: number;
  reduce: number;
  inner: number;
  /** Default 1 (a sum); 1 / reduce for a mean. */
  scale?: number;
}

/**
 * Check the sizes: `full` (x of reduceAxes, dx of broadcastAxes) holds outer·reduce·inner values and
 * `reduced` (y, dy) outer·inner. Shapes are free: the op works on the views.
 */
export function checkReduceAxes(what: string, full: Shaped, reduced: Shaped, opts: ReduceAxesOptions): void {
  const { outer, reduce, inner } = opts;
  for (const [k, v] of Object.entries({ outer, reduce, inner })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${k} = ${v} must be an integer >= 1.`);
  }
  if (opts.scale !== undefined && !Number.isFinite(opts.scale)) throw new Error(`${what}: scale ${opts.scale} must be a finite number.`);
  const size = (t: Shaped) => t.shape.reduce((p, d) => p * d, 1);
  if (size(full) !== outer * reduce * inner || size(reduced) !== outer * inner) {
    throw new Error(
      `${what}: ${describe(full)} must hold outer·reduce·inner = ${outer}·${reduce}·${inner} values and ${describe(reduced)} outer·inner = ${outer * inner} (viewed as [${outer}, ${reduce}, ${inner}] and [${outer}, ${inner}]).`,
    );
  }
}
