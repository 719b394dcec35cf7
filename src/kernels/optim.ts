// Optimizer update kernels (shaders/optim.wgsl): one in-place dispatch per parameter tensor.
// Per-step values go through Dispatch.setParams, e.g. `d.setParams(adamParams(opts, t, n))`.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import { shapeStr, type Tensor } from '../gpu/tensor.ts';
import type { AdamOptions, SgdOptions } from '../ops/optim.ts';

export type { AdamOptions, SgdOptions } from '../ops/optim.ts';

const WG = 256;

/** The shared params struct has both optimizers' members; each entry point ignores the other's. */
const SGD_UNUSED = { beta1: 0, beta2: 0, eps: 0, decoupled: 0, bc1: 0, bc2: 0 };
const ADAM_UNUSED = { momentum: 0, nesterov: 0 };

function finite(kernel: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!Number.isFinite(v)) throw new Error(`Kernel ${kernel}: ${k} = ${v} is not a finite number.`);
  }
}

/** The params uniform of `sgd_update` for n elements. */
export function sgdParams(opts: SgdOptions, n: number): Record<string, number> {
  const { lr, momentum = 0, weightDecay = 0, nesterov = false } = opts;
  finite('optim.sgd_update', { lr, momentum, weightDecay });
  if (nesterov && momentum <= 0) throw new Error(`Kernel optim.sgd_update: Nesterov momentum needs momentum > 0 (got ${momentum}).`);
  return { n, lr, momentum, weightDecay, nesterov: nesterov ? 1 : 0, ...SGD_UNUSED };
}

/**
 * The params uniform of `adam_update` at step t (t >= 1) for n elements; bias corrections are
 * computed here in float64. Also callable as `adamParams({ ...opts, step: t }, n)`.
 */
export function adamParams(opts: AdamOptions, t: number, n: number): Record<string, number>;
export function adamParams(opts: AdamOptions & { step: number }, n: number): Record<string, number>;
export function adamParams(opts: AdamOptions & { step?: number }, tOrN: number, n?: number): Record<string, number> {
  const t = n === undefined ? opts.step : tOrN;
  const size = n === undefined ? tOrN : n;
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, decoupled = false } = opts;
  finite('optim.adam_update', { lr, beta1, beta2, eps, weightDecay });
  if (t === undefined || !Number.isInteger(t) || t < 1) throw new Error(`Kernel optim.adam_update: step ${t} must be an integer >= 1.`);
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) {
    throw new Error(`Kernel optim.adam_update: betas (${beta1}, ${beta2}) must be in [0, 1).`);
  }
  const bc1 = 1 - beta1 ** t;
  const bc2 = 1 - beta2 ** t;
  return { n: size, lr, weightDecay, beta1, beta2, eps, decoupled: decoupled ? 1 : 0, bc1, bc2, ...ADAM_UNUSED };
}

/** Throws unless every tensor has the same number of elements as `w`. */
function sameSize(kernel: string, w: Tensor, others: Tensor[]): void {
  for (const t of others) {
    if (t.size !== w.size) {
      throw new Error(`Kernel ${kernel}: "${w.label}" ${shapeStr(w.shape)} and "${t.label}" ${shapeStr(t.shape)} must have the same number of elements.`);
    }
  }
}

/**
 * In place: w -= lr * step (PyTorch SGD; see shaders/optim.wgsl). w, g, v: [n]; v is the momentum
 * buffer, or null for plain SGD (momentum 0, no Nesterov), which then needs no state.
 */
export async function sgdUpdate(e: Engine, w: Tensor, g: Tensor, v: Tensor | null, opts: SgdOptions): Promise<Dispatch> {
  const params = sgdParams(opts, w.size);
  if (!v) {
    if (params.momentum !== 0) throw new Error(`Kernel optim.sgd_update: momentum ${params.momentum} needs a velocity buffer.`);
    sameSize('optim.sgd_update_plain', w, [g]);
    const k = await e.kernel('optim', 'sgd_update_plain', { WG });
    return e.dispatch(k, { w, g }, grid1d(w.size, WG), params);
  }
  sameSize('optim.sgd_update', w, [g, v]);
  const k = await e.kernel('optim', 'sgd_update', { WG });
  return e.dispatch(k, { w, g, v }, grid1d(w.size, WG), params);
}

/** In place Adam / AdamW update at step `opts.step` (t >= 1). w, g, m, v: [n]; m and v are the moment buffers. */
export async function adamUpdate(e: Engine, w: Tensor, g: Tensor, m: Tensor, v: Tensor, opts: AdamOptions & { step: number }): Promise<Dispatch> {
  sameSize('optim.adam_update', w, [g, m, v]);
  const params = adamParams(opts, opts.step, w.size);
  const k = await e.kernel('optim', 'adam_update', { WG });
  return e.dispatch(k, { w, g, m, v }, grid1d(w.size, WG), params);
}
