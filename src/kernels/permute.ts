// The permute kernel (shaders/permute.wgsl): y = x with its axes reordered, any rank up to 6, as a
// validated, replayable dispatch. Its backward is a permute by `inversePermutation(perm)`.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { checkPermute, MAX_PERMUTE_RANK } from '../ops/permute.ts';
import { withAccumulate } from './accumulate.ts';

export { inversePermutation, permutedShape } from '../ops/permute.ts';

const WG = 256;

/**
 * The same permutation over fewer axes: axes of size 1 dropped, and runs of x's axes that stay
 * adjacent and in order in y merged into one. Returns y's dimensions and, for each, x's stride
 * along it (elements). Fewer axes mean fewer divisions per element in the shader.
 */
export function collapsePermutation(xShape: readonly number[], perm: readonly number[]): { dims: number[]; strides: number[] } {
  const xStrides: number[] = [];
  let s = 1;
  for (let k = xShape.length - 1; k >= 0; k--) {
    xStrides[k] = s;
    s *= xShape[k];
  }
  // Position of each axis among x's axes of size > 1: axes of size 1 change no stride, so two
  // axes with consecutive positions are adjacent in memory.
  const pos: number[] = [];
  let kept = 0;
  xShape.forEach((d, k) => (pos[k] = d === 1 ? -1 : kept++));
  const dims: number[] = [];
  const strides: number[] = [];
  let prev = -2;
  for (const axis of perm) {
    if (xShape[axis] === 1) continue;
    if (pos[axis] === prev + 1) {
      // x's axis follows the previous one in x too: one axis of their combined size, with the
      // inner one's stride.
      dims[dims.length - 1] *= xShape[axis];
      strides[strides.length - 1] = xStrides[axis];
    } else {
      dims.push(xShape[axis]);
      strides.push(xStrides[axis]);
    }
    prev = pos[axis];
  }
  if (!dims.length) return { dims: [1], strides: [0] };
  return { dims, strides };
}

/**
 * y = x with axes reordered: y.shape[i] = x.shape[perm[i]] (y += ... with accumulate). Rank up to 6,
 * any sizes. E.g. [B, T, H, D] to [B, H, T, D] is perm [0, 2, 1, 3].
 */
export async function permute(e: Engine, x: Tensor, y: Tensor, perm: readonly number[], opts: AccumulateOptions = {}): Promise<Dispatch> {
  checkPermute('Kernel permute.permute', x, y, perm);
  const { dims, strides } = collapsePermutation(x.shape, perm);
  const params: Record<string, number> = { n: x.size, rank: dims.length };
  for (let k = 0; k < MAX_PERMUTE_RANK; k++) {
    params[`d${k}`] = dims[k] ?? 1;
    params[`s${k}`] = strides[k] ?? 0;
  }
  const k = await e.kernel('permute', 'permute', withAccumulate({ WG }, opts));
  return e.dispatch(k, { x, y }, grid1d(x.size, WG), params);
}
