// GPU tensors: a shape, dtype f32, and storage on the GPU. Weights, biases, activations,
// gradients and optimizer state are all Tensors. Three kinds:
//   owned    a pooled buffer of its own, released by dispose();
//   view     another tensor's data under another shape (no copy; never releases anything);
//   planned  made by a model's planner before memory is assigned; bound later to a buffer that
//            several planned tensors with disjoint lifetimes share (the plan owns that buffer).
// Dispatches resolve a tensor's buffer when they are first recorded, so kernels can be planned
// against planned tensors before their memory exists.
import type { Engine } from './engine.ts';
import { shapeSize, shapeStr, type Shape } from '../ops/shape.ts';

export { checkShape, shapeSize, shapeStr, type Shape } from '../ops/shape.ts';

type Storage = { kind: 'owned'; buffer: GPUBuffer } | { kind: 'view'; base: Tensor } | { kind: 'planned'; buffer: GPUBuffer | null };

export class Tensor {
  readonly size: number;
  private storage: Storage | null;

  constructor(
    readonly engine: Engine,
    readonly shape: Shape,
    storage: GPUBuffer | Tensor | null,
    readonly label: string,
  ) {
    this.size = shapeSize(shape);
    if (storage instanceof Tensor) this.storage = { kind: 'view', base: storage.root };
    else if (storage) this.storage = { kind: 'owned', buffer: storage };
    else this.storage = { kind: 'planned', buffer: null };
  }

  readonly dtype = 'f32' as const;

  /** Bytes of data (the buffer may be larger). */
  get byteLength(): number {
    return this.size * 4;
  }

  /** Whether this tensor shares another's data. */
  get isView(): boolean {
    return this.storage?.kind === 'view';
  }

  /** Whether a planner assigns this tensor's memory (see `bind`). */
  get isPlanned(): boolean {
    return this.root.storage?.kind === 'planned';
  }

  /** The tensor that owns the data: itself, or the base of a view. */
  get root(): Tensor {
    return this.storage?.kind === 'view' ? this.storage.base : this;
  }

  /** Whether the data has memory yet (always, except for planned tensors before `bind`). */
  get hasMemory(): boolean {
    const s = this.root.storage;
    return s !== null && (s.kind !== 'planned' || s.buffer !== null);
  }

  get buffer(): GPUBuffer {
    const s = this.root.storage;
    if (!s || !this.storage) throw new Error(`Tensor "${this.label}" ${shapeStr(this.shape)} was used after dispose().`);
    if (s.kind === 'view') throw new Error(`Tensor "${this.label}": a view of a view was not resolved.`);
    if (!s.buffer) throw new Error(`Tensor "${this.label}" ${shapeStr(this.shape)} is planned but has no memory yet: its model's plan did not assign it.`);
    return s.buffer;
  }

  get disposed(): boolean {
    return this.storage === null || this.root.storage === null;
  }

  /** Give a planned tensor its memory: `buffer` must hold at least byteLength bytes. */
  bind(buffer: GPUBuffer): void {
    if (this.storage?.kind !== 'planned') throw new Error(`Tensor "${this.label}" is not a planned tensor; only those are bound.`);
    if (buffer.size < this.byteLength) throw new Error(`Tensor "${this.label}" ${shapeStr(this.shape)} needs ${this.byteLength} bytes; the buffer has ${buffer.size}.`);
    this.storage.buffer = buffer;
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
    if (this.disposed) throw new Error(`Tensor "${this.label}" ${shapeStr(this.shape)} was used after dispose().`);
    return new Tensor(this.engine, [...shape], this, label);
  }

  /**
   * Release the tensor. An owned tensor's buffer returns to the engine's pool once queued work
   * that uses it has been submitted; a view or a planned tensor releases nothing (the planner
   * owns the memory of planned tensors).
   */
  dispose(): void {
    if (!this.storage) return;
    if (this.storage.kind === 'owned') this.engine.releaseBuffer(this.storage.buffer);
    this.storage = null;
  }
}
