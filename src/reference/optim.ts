// CPU reference for shaders/optim.wgsl: the same in-place updates on Float32Arrays, arithmetic in
// float64, same names and argument order as src/kernels/optim.ts (minus the engine).
import type { AdamOptions, SgdOptions } from '../ops/optim.ts';

/** SGD with momentum, weight decay and Nesterov, PyTorch semantics. w, g, v: [n]; w and v updated. */
export function sgdUpdate(w: Float32Array, g: Float32Array, v: Float32Array, opts: SgdOptions): void {
  const { lr, momentum = 0, weightDecay = 0, nesterov = false } = opts;
  for (let i = 0; i < w.length; i++) {
    const gd = g[i] + weightDecay * w[i];
    v[i] = momentum * v[i] + gd;
    const step = nesterov ? gd + momentum * v[i] : momentum > 0 ? v[i] : gd;
    w[i] = w[i] - lr * step;
  }
}

/** Adam (decoupled false) or AdamW (decoupled true) at step t = opts.step >= 1. w, g, m, v: [n]; w, m, v updated. */
export function adamUpdate(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, opts: AdamOptions & { step: number }): void {
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, decoupled = false, step } = opts;
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  for (let i = 0; i < w.length; i++) {
    let wi = w[i];
    let gd = g[i];
    if (decoupled) wi -= lr * weightDecay * wi;
    else gd += weightDecay * wi;
    m[i] = beta1 * m[i] + (1 - beta1) * gd;
    v[i] = beta2 * v[i] + (1 - beta2) * gd * gd;
    w[i] = wi - (lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + eps);
  }
}
