// GPU tensors: a shape, dtype f32, and a pooled storage buffer. Weights, biases, activations,
// gradients and optimizer state are all Tensors; the engine owns the buffer's lifetime.
import type { Engine } from './engine.ts';
import { shapeSize, shapeStr, type Shape } from '../ops/shape.ts';

export { checkShape, shapeSize, shapeStr, type Shape } from '../ops/shape.ts';

export class Tensor {
  readonly size: number;
  private _buffer: GPUBuffer | null;

  constructor(
    readonly engine: Engine,
    readonly shape: Shape,
    buffer: GPUBuffer,
    readonly label: string,
    /** A view shares another tensor's buffer and never releases it. */
    readonly isView = false,
  ) {
    this.size = shapeSize(shape);
    this._buffer = buffer;
  }

  readonly dtype = 'f32' as const;

  /** Bytes of data (the pooled buffer may be larger). */
  get byteLength(): number {
    return this.size * 4;
  }

  get buffer(): GPUBuffer {
    if (!this._buffer) throw new Error(`Tensor "${this.label}" ${shapeStr(this.shape)} was used after dispose().`);
    return this._buffer;
  }

  get disposed(): boolean {
    return this._buffer === null;
  }

  /** Read the data back (waits for queued GPU work that writes it). */
  read(): Promise<Float32Array> {
    return this.engine.read(this);
  }

  /** The same data under another shape with the same number of elements (no copy). */
  view(shape: Shape, label = this.label): Tensor {
    if (shapeSize(shape) !== this.size) {
      throw new Error(`Tensor "${this.label}" ${shapeStr(this.shape)} cannot be viewed as ${shapeStr(shape)}: element counts differ.`);
    }
    return new Tensor(this.engine, [...shape], this.buffer, label, true);
  }

  /** Return the buffer to the engine's pool once queued work that uses it has been submitted. */
  dispose(): void {
    if (!this._buffer) return;
    if (!this.isView) this.engine.releaseBuffer(this._buffer);
    this._buffer = null;
  }
}
