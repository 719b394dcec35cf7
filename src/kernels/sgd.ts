// SGD update kernels (shaders/sgd.wgsl): one in-place dispatch per parameter tensor, its fixed
// hyperparameters in its own params uniform and the step's learning rate read from the per-step
// values uniform (src/kernels/step.ts), so a replayed step follows the schedule with no writes.
import { grid1d, type BufferArg, type Dispatch, type Engine } from '../gpu/engine.ts';
import { shapeStr, type Tensor } from '../gpu/tensor.ts';
import type { SgdOptions } from '../ops/optim.ts';

export type { SgdOptions } from '../ops/optim.ts';

const WG = 256;

function finite(kernel: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!Number.isFinite(v)) throw new Error(`Kernel ${kernel}: ${k} = ${v} is not a finite number.`);
  }
}

/** Throws unless every tensor has the same number of elements as `w`. */
export function sameSize(kernel: string, w: Tensor, others: Tensor[]): void {
  for (const t of others) {
    if (t.size !== w.size) {
      throw new Error(`Kernel ${kernel}: "${w.label}" ${shapeStr(w.shape)} and "${t.label}" ${shapeStr(t.shape)} must have the same number of elements.`);
    }
  }
}

/** The params uniform of the SGD entries for n elements (the learning rate is a per-step value). */
export function sgdParams(opts: Omit<SgdOptions, 'lr'>, n: number): Record<string, number> {
  const { momentum = 0, weightDecay = 0, nesterov = false } = opts;
  finite('sgd.sgd_update', { momentum, weightDecay });
  if (nesterov && momentum <= 0) throw new Error(`Kernel sgd.sgd_update: Nesterov momentum needs momentum > 0 (got ${momentum}).`);
  return { n, momentum, weightDecay, nesterov: nesterov ? 1 : 0 };
}

/**
 * In place: w -= lr * step (PyTorch SGD; see shaders/sgd.wgsl), lr from `stepValues`. w, g, v: [n];
 * v is the momentum buffer, or null for plain SGD (momentum 0, no Nesterov), which keeps no state.
 */
export async function sgdUpdate(e: Engine, w: Tensor, g: Tensor, v: Tensor | null, opts: Omit<SgdOptions, 'lr'>, stepValues: BufferArg): Promise<Dispatch> {
  const params = sgdParams(opts, w.size);
  if (!v) {
    if (params.momentum !== 0) throw new Error(`Kernel sgd.sgd_update: momentum ${params.momentum} needs a velocity buffer.`);
    sameSize('sgd.sgd_update_plain', w, [g]);
    const k = await e.kernel('sgd', 'sgd_update_plain', { WG });
    return e.dispatch(k, { w, g, step_values: stepValues }, grid1d(w.size, WG), params);
  }
  sameSize('sgd.sgd_update', w, [g, v]);
  const k = await e.kernel('sgd', 'sgd_update', { WG });
  return e.dispatch(k, { w, g, v, step_values: stepValues }, grid1d(w.size, WG), params);
}
