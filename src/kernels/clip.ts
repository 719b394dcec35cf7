// Gradient clipping by global norm (shaders/clip.wgsl): sums of squares of the gradients, the
// clipping factor, and the gradients scaled by it, as validated, replayable dispatches.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import { describe } from '../ops/shape.ts';
import type { Tensor } from '../gpu/tensor.ts';

const WG = 256;

function checkSlots(what: string, t: Tensor, n: number): void {
  if (t.size < n) throw new Error(`Kernel clip.${what}: ${describe(t)} must hold at least ${n} value${n > 1 ? 's' : ''}.`);
}

/** acc[0] += sum of g's squares (one workgroup, deterministic). */
export async function sumSquares(e: Engine, g: Tensor, acc: Tensor): Promise<Dispatch> {
  checkSlots('sum_squares', acc, 1);
  const k = await e.kernel('clip', 'sum_squares');
  return e.dispatch(k, { g_in: g, acc }, [1, 1, 1], { n: g.size, max_norm: 0 });
}

/** factor = [min(1, maxNorm / (sqrt(acc[0]) + 1e-6)), sqrt(acc[0])]; acc[0] back to 0. */
export async function clipFactor(e: Engine, acc: Tensor, factor: Tensor, maxNorm: number): Promise<Dispatch> {
  if (!(maxNorm > 0 && Number.isFinite(maxNorm))) throw new Error(`Kernel clip.clip_factor: the maximum norm ${maxNorm} must be a positive number.`);
  checkSlots('clip_factor', acc, 1);
  checkSlots('clip_factor', factor, 2);
  const k = await e.kernel('clip', 'clip_factor');
  return e.dispatch(k, { acc, factor }, [1, 1, 1], { n: 1, max_norm: maxNorm });
}

/** g *= factor[0], in place. */
export async function scaleByFactor(e: Engine, g: Tensor, factor: Tensor): Promise<Dispatch> {
  checkSlots('scale_by_factor', factor, 1);
  const k = await e.kernel('clip', 'scale_by_factor', { WG });
  return e.dispatch(k, { g, factor_in: factor }, grid1d(g.size, WG), { n: g.size, max_norm: 0 });
}
