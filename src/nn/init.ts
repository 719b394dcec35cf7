// Weight initialisers, seeded: the same seed gives the same weights. Fan-in and fan-out follow
// PyTorch: for a weight [out, in, ...kernel], fanIn = in * prod(kernel), fanOut = out * prod(kernel).
import type { Rng } from '../util/random.ts';

export type Initializer = 'glorot_uniform' | 'glorot_normal' | 'he_uniform' | 'he_normal' | 'zeros' | 'ones' | 'normal_002';
export const INITIALIZERS: readonly Initializer[] = ['glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal', 'zeros', 'ones', 'normal_002'];

/** Fill `n` values for a tensor with the given fans. */
export function initialize(kind: Initializer, n: number, fanIn: number, fanOut: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  switch (kind) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'glorot_uniform': {
      const a = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < n; i++) out[i] = rng.uniform(-a, a);
      return out;
    }
    case 'glorot_normal': {
      const s = Math.sqrt(2 / (fanIn + fanOut));
      for (let i = 0; i < n; i++) out[i] = s * rng.normal();
      return out;
    }
    case 'he_uniform': {
      const a = Math.sqrt(6 / fanIn);
      for (let i = 0; i < n; i++) out[i] = rng.uniform(-a, a);
      return out;
    }
    case 'normal_002': {
      // N(0, 0.02²) regardless of the fans: what vision transformers start position embeddings
      // and class tokens from.
      for (let i = 0; i < n; i++) out[i] = 0.02 * rng.normal();
      return out;
    }
    case 'he_normal': {
      const s = Math.sqrt(2 / fanIn);
      for (let i = 0; i < n; i++) out[i] = s * rng.normal();
      return out;
    }
    default:
      throw new Error(`Unknown initializer "${kind}" (known: ${INITIALIZERS.join(', ')}).`);
  }
}
