// Reduction kernels (shaders/reduce.wgsl): deterministic sums accumulated on the GPU (loss sums,
// correct counts) and row-wise argmax for predictions.
import { grid1d, type BufferArg, type Dispatch, type Engine } from '../gpu/engine.ts';
import { shapeStr, type Tensor } from '../gpu/tensor.ts';

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
