// Reduction kernels: deterministic sums accumulated on the GPU (loss sums, correct counts) and
// row-wise argmax for predictions (shaders/reduce.wgsl); sums and means over a run of adjacent
// axes and their adjoint, the broadcast (shaders/reduce_axis.wgsl).
import { grid1d, type BufferArg, type Dispatch, type Engine } from '../gpu/engine.ts';
import { shapeStr, type Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { checkReduceAxes, type ReduceAxesOptions } from '../ops/reduce.ts';
import { withAccumulate } from './accumulate.ts';

export type { ReduceAxesOptions } from '../ops/reduce.ts';

const WG = 64;

function tensorStr(t: Tensor): string {
  return `"${t.label}" ${shapeStr(t.shape)}`;
}

/**
 * acc[slot] += sum(x), in one workgroup with a fixed order of additions (the same bits on every
 * run, no float atomics). Replay the dispatch every step and read `acc` every N steps; zero it
 * with `e.fill(acc, 0)`. x: any shape (n values), acc: any shape with more than `slot` values.
 */
export async function sumAccumulate(e: Engine, x: Tensor, acc: Tensor, slot: number): Promise<Dispatch> {
  if (!Number.isInteger(slot) || slot < 0 || slot >= acc.size) {
    throw new Error(`Kernel reduce.sum_accumulate: slot ${slot} is outside ${tensorStr(acc)} (accumulating ${tensorStr(x)}).`);
  }
  const k = await e.kernel('reduce', 'sum_accumulate');
  return e.dispatch(k, { x, acc }, [1, 1, 1], { n: x.size, slot, window: 1 });
}

/**
 * acc[first + step % window] += sum(x), the step read from the per-step values uniform
 * (`stepValues`): the loss window of a training step, filled with no write per step.
 */
export async function sumAccumulateStep(e: Engine, x: Tensor, acc: Tensor, first: number, window: number, stepValues: BufferArg): Promise<Dispatch> {
  if (!Number.isInteger(window) || window < 1 || !Number.isInteger(first) || first < 0 || first + window > acc.size) {
    throw new Error(`Kernel reduce.sum_accumulate_step: slots [${first}, ${first + window}) are outside ${tensorStr(acc)} (accumulating ${tensorStr(x)}).`);
  }
  const k = await e.kernel('reduce', 'sum_accumulate_step');
  return e.dispatch(k, { x, acc, step_values: stepValues }, [1, 1, 1], { n: x.size, slot: first, window });
}

/** out[b] = index (as f32) of the largest x[b, c]; the first one wins on ties. x: [B, C], out: [B]. */
export async function argmaxRows(e: Engine, x: Tensor, out: Tensor): Promise<Dispatch> {
  const name = 'reduce.argmax_rows';
  if (x.shape.length !== 2 || out.size !== x.shape[0]) {
    throw new Error(`Kernel ${name}: ${tensorStr(x)} must be [B, C] and ${tensorStr(out)} must hold B values.`);
  }
  const B = x.shape[0];
  const k = await e.kernel('reduce', 'argmax_rows', { WG });
  return e.dispatch(k, { x, out }, grid1d(B, WG), { n: B, slot: 0, window: 1 });
}

/** Invocations per workgroup of broadcast_axes (one value each, no loop). */
const BROADCAST_WG = 256;

/**
 * When a reduction has at most this many outputs, each summing at least WIDE_MIN_REDUCE values,
 * a workgroup shares each sum (reduce_axes_wide) instead of one invocation looping over it: a
 * whole tensor's sum is then 64 invocations' work rather than one's.
 */
const WIDE_MAX_OUTPUTS = 256;
const WIDE_MIN_REDUCE = 1024;

/**
 * y[o, i] = scale · sum_r x[o, r, i], with x viewed as [outer, reduce, inner] and y as
 * [outer, inner] (y += ... with accumulate). A sum over adjacent axes of any tensor: e.g. x
 * [B, T, D] summed over T is outer B, reduce T, inner D; a mean is scale 1 / reduce. The order of
 * additions depends only on the sizes (deterministic). Its backward is `broadcastAxes`.
 */
export async function reduceAxes(e: Engine, x: Tensor, y: Tensor, opts: ReduceAxesOptions & AccumulateOptions): Promise<Dispatch> {
  const wide = opts.outer * opts.inner <= WIDE_MAX_OUTPUTS && opts.reduce >= WIDE_MIN_REDUCE;
  const entry = wide ? 'reduce_axes_wide' : 'reduce_axes';
  checkReduceAxes(`Kernel reduce_axis.${entry}`, x, y, opts);
  const params = { outer: opts.outer, reduce: opts.reduce, inner: opts.inner, scale: opts.scale ?? 1 };
  const outputs = opts.outer * opts.inner;
  if (wide) {
    const k = await e.kernel('reduce_axis', entry, withAccumulate({}, opts));
    return e.dispatch(k, { x, y }, grid1d(outputs, 1), params);
  }
  const k = await e.kernel('reduce_axis', entry, withAccumulate({ WG }, opts));
  return e.dispatch(k, { x, y }, grid1d(outputs, WG), params);
}

/**
 * dx[o, r, i] = scale · dy[o, i], with dx viewed as [outer, reduce, inner] and dy as [outer, inner]
 * (dx += ... with accumulate): the adjoint of `reduceAxes` (its backward, and the forward of a
 * broadcast along those axes).
 */
export async function broadcastAxes(e: Engine, dy: Tensor, dx: Tensor, opts: ReduceAxesOptions & AccumulateOptions): Promise<Dispatch> {
  checkReduceAxes('Kernel reduce_axis.broadcast_axes', dx, dy, opts);
  const params = { outer: opts.outer, reduce: opts.reduce, inner: opts.inner, scale: opts.scale ?? 1 };
  const k = await e.kernel('reduce_axis', 'broadcast_axes', withAccumulate({ WG: BROADCAST_WG }, opts));
  return e.dispatch(k, { dy, dx }, grid1d(dx.size, BROADCAST_WG), params);
}
