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
