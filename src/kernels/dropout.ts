// Dropout kernels (shaders/dropout.wgsl): inverted dropout whose mask is hashed on the GPU from
// (seed, index). Change the seed every step with `d.setParams(dropoutParams({ p, seed }, n))`.
import { grid1d, type BufferArg, type Dispatch, type Engine } from '../gpu/engine.ts';
import { shapeStr, type Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { withAccumulate } from './accumulate.ts';

const WG = 256;

/** Drop probability p in [0, 1] and a u32 seed. */
export interface DropoutOptions {
  p: number;
  seed: number;
}

/** The params uniform of `dropout_forward` for n elements (the shader derives its keep threshold and scale from p). */
export function dropoutParams(opts: DropoutOptions, n: number): Record<string, number> {
  const { p, seed } = opts;
  if (!(p >= 0 && p <= 1)) throw new Error(`Kernel dropout.dropout_forward: p = ${p} must be in [0, 1].`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`Kernel dropout.dropout_forward: seed ${seed} is not a u32.`);
  return { n, p, seed };
}

function sameSize(kernel: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) {
    throw new Error(`Kernel ${kernel}: "${a.label}" ${shapeStr(a.shape)} and "${b.label}" ${shapeStr(b.shape)} must have the same number of elements.`);
  }
}

/** y = x * mask with mask[i] = keep ? 1/(1-p) : 0, keep decided by hash(seed, i). x, y, mask: [n]. */
export async function dropoutForward(e: Engine, x: Tensor, y: Tensor, mask: Tensor, opts: DropoutOptions): Promise<Dispatch> {
  const name = 'dropout.dropout_forward';
  sameSize(name, x, y);
  sameSize(name, x, mask);
  const params = dropoutParams(opts, x.size);
  const k = await e.kernel('dropout', 'dropout_forward', { WG });
  return e.dispatch(k, { x, y, mask }, grid1d(x.size, WG), params);
}

/**
 * Training-mode dropout whose seed follows the step: the seed of step t is derived on the GPU from
 * `seedBase` and the step number in the per-step values uniform (`stepValues`, see
 * shaders/_step.wgsl), as `dropoutStepSeed` (src/ops/step.ts) does on the host; no write per step. When the step's
 * flags switch dropout off, y = x.
 */
export async function dropoutForwardStep(e: Engine, x: Tensor, y: Tensor, mask: Tensor, opts: { p: number; seedBase: number }, stepValues: BufferArg): Promise<Dispatch> {
  const name = 'dropout.dropout_forward_step';
  sameSize(name, x, y);
  sameSize(name, x, mask);
  const params = dropoutParams({ p: opts.p, seed: opts.seedBase }, x.size);
  const k = await e.kernel('dropout', 'dropout_forward_step', { WG });
  return e.dispatch(k, { x, y, mask, step_values: stepValues }, grid1d(x.size, WG), params);
}

/** dx = dy * mask, with the mask the forward pass wrote (dx += ... with accumulate). dy, mask, dx: [n]. */
export async function dropoutBackward(e: Engine, dy: Tensor, mask: Tensor, dx: Tensor, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const name = 'dropout.dropout_backward';
  sameSize(name, dy, mask);
  sameSize(name, dy, dx);
  const k = await e.kernel('dropout', 'dropout_backward', withAccumulate({ WG }, opts));
  return e.dispatch(k, { dy, mask_in: mask, dx }, grid1d(dy.size, WG), { n: dy.size, p: 0, seed: 0 });
}
