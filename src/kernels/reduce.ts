// Reduction kernels (shaders/reduce.wgsl): deterministic sums accumulated on the GPU (loss sums,
// correct counts) and row-wise argmax for predictions.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
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
  return e.dispatch(k, { x, acc }, [1, 1, 1], { n: x.size, slot });
}

/** out[b] = index (as f32) of the largest x[b, c]; the first one wins on ties. x: [B, C], out: [B]. */
export async function argmaxRows(e: Engine, x: Tensor, out: Tensor): Promise<Dispatch> {
  const name = 'reduce.argmax_rows';
  if (x.shape.length !== 2 || out.size !== x.shape[0]) {
    throw new Error(`Kernel ${name}: ${tensorStr(x)} must be [B, C] and ${tensorStr(out)} must hold B values.`);
  }
  const B = x.shape[0];
  const k = await e.kernel('reduce', 'argmax_rows', { WG });
  return e.dispatch(k, { x, out }, grid1d(B, WG), { n: B, slot: 0 });
}
