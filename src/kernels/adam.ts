// Adam / AdamW update kernels (shaders/adam.wgsl): one in-place dispatch per parameter tensor,
// fixed hyperparameters in its own params uniform; the step's learning rate and bias corrections
// come from the per-step values uniform (src/kernels/step.ts).
import { grid1d, type BufferArg, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AdamOptions } from '../ops/optim.ts';
import { sameSize } from './sgd.ts';

export type { AdamOptions } from '../ops/optim.ts';

const WG = 256;

function defaults(opts: Omit<AdamOptions, 'lr'>) {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, decoupled = false } = opts;
  for (const [k, v] of Object.entries({ beta1, beta2, eps, weightDecay })) {
    if (!Number.isFinite(v)) throw new Error(`Kernel adam.adam_update: ${k} = ${v} is not a finite number.`);
  }
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) throw new Error(`Kernel adam.adam_update: betas (${beta1}, ${beta2}) must be in [0, 1).`);
  return { beta1, beta2, eps, weightDecay, decoupled };
}

/** The params uniform of `adam_update` for n elements. */
export function adamParams(opts: Omit<AdamOptions, 'lr'>, n: number): Record<string, number> {
  const { beta1, beta2, eps, weightDecay, decoupled } = defaults(opts);
  return { n, beta1, beta2, eps, weightDecay, decoupled: decoupled ? 1 : 0 };
}

/** Adam's per-step values at step t >= 1: the bias corrections [1 - beta1^t, 1 - beta2^t], in float64. */
export function adamStepValues(opts: Omit<AdamOptions, 'lr'>, t: number): [number, number] {
  if (!Number.isInteger(t) || t < 1) throw new Error(`Kernel adam.adam_update: step ${t} must be an integer >= 1.`);
  const { beta1, beta2 } = defaults(opts);
  return [1 - beta1 ** t, 1 - beta2 ** t];
}

/** In place Adam / AdamW update (shaders/adam.wgsl). w, g, m, v: [n]; m and v are the moment buffers. */
export async function adamUpdate(e: Engine, w: Tensor, g: Tensor, m: Tensor, v: Tensor, opts: Omit<AdamOptions, 'lr'>, stepValues: BufferArg): Promise<Dispatch> {
  sameSize('adam.adam_update', w, [g, m, v]);
  const k = await e.kernel('adam', 'adam_update', { WG });
  return e.dispatch(k, { w, g, m, v, step_values: stepValues }, grid1d(w.size, WG), adamParams(opts, w.size));
}
