// CPU reference for shaders/activation.wgsl: plain loops in float64, same names and argument
// order as src/kernels/activation.ts (minus the engine).
import type { AccumulateOptions } from '../ops/accumulate.ts';
import type { Activation } from '../ops/activation.ts';
import { store } from './host.ts';

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_K = 0.044715;

/** f(v) for one activation. */
export function activate(act: Activation, v: number, alpha = 0.01): number {
  switch (act) {
    case 'relu':
      return Math.max(v, 0);
    case 'leaky_relu':
      return v > 0 ? v : alpha * v;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'tanh':
      return Math.tanh(v);
    case 'gelu':
      return 0.5 * v * (1 + Math.tanh(GELU_C * (v + GELU_K * v * v * v)));
  }
}

/** f'(v) for one activation. */
export function activateGrad(act: Activation, v: number, alpha = 0.01): number {
  switch (act) {
    case 'relu':
      return v > 0 ? 1 : 0;
    case 'leaky_relu':
      return v > 0 ? 1 : alpha;
    case 'sigmoid': {
      const s = 1 / (1 + Math.exp(-v));
      return s * (1 - s);
    }
    case 'tanh': {
      const t = Math.tanh(v);
      return 1 - t * t;
    }
    case 'gelu': {
      const t = Math.tanh(GELU_C * (v + GELU_K * v * v * v));
      return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_C * (1 + 3 * GELU_K * v * v);
    }
  }
}

/** y = act(x) */
export function activationForward(act: Activation, x: Float32Array, y: Float32Array, alpha = 0.01): void {
  for (let i = 0; i < x.length; i++) y[i] = activate(act, x[i], alpha);
}

/** dx = dy * act'(x) (dx += with accumulate) */
export function activationBackward(act: Activation, x: ArrayLike<number>, dy: ArrayLike<number>, dx: Float32Array | Float64Array, alpha = 0.01, opts: AccumulateOptions = {}): void {
  for (let i = 0; i < x.length; i++) store(dx, i, dy[i] * activateGrad(act, x[i], alpha), opts.accumulate);
}
