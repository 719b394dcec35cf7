// The CPU reference's tensor: row-major data and a shape.
import type { Shaped } from '../ops/shape.ts';

/**
 * A CPU tensor for the references: row-major data and its shape. float32 data mirrors the GPU;
 * float64 data lets finite-difference checks use tiny steps.
 */
export interface HostTensor extends Shaped {
  readonly data: Float32Array | Float64Array;
}

/** A HostTensor of `shape`, zero-filled or holding a copy of `data`. */
export function hostTensor(shape: readonly number[], data?: ArrayLike<number>, label?: string): HostTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  if (data) {
    if (data.length !== size) throw new Error(`hostTensor "${label ?? 'tensor'}" [${shape.join(', ')}]: ${data.length} values given for ${size}.`);
    out.set(data);
  }
  return { shape: [...shape], data: out, label };
}

/** A writable array of numbers: Float32Array to mirror the GPU, Float64Array for gradient checks. */
export type Floats = Float32Array | Float64Array;

/** out[i] = v, or out[i] += v when accumulating (see src/ops/accumulate.ts). */
export function store(out: Floats, i: number, v: number, accumulate = false): void {
  out[i] = accumulate ? out[i] + v : v;
}

/** out = values elementwise, or out += values when accumulating. */
export function storeAll(out: Floats, values: ArrayLike<number>, accumulate = false): void {
  for (let i = 0; i < values.length; i++) store(out, i, values[i], accumulate);
}
