// The layer contract. A layer is built once for a per-sample input shape (allocating and
// initialising its parameters), then planned once per batch size: planning compiles kernels and
// creates every dispatch of its forward and backward passes, which the model replays each step
// with no allocation and no CPU round trip.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import { shapeStr, type Shape, type Tensor } from '../gpu/tensor.ts';
import type { Rng } from '../util/random.ts';

/** A trainable tensor and its gradient (same shape). */
export interface Param {
  /** Name in checkpoints, e.g. `layers.0.weight`: set by the model from the layer index. */
  name: string;
  value: Tensor;
  grad: Tensor;
  /** Whether weight decay / L2 applies (weights yes, biases and norm scales no). */
  decay: boolean;
}

/** Non-trainable state saved in checkpoints (e.g. BatchNorm running statistics). */
export interface Buffer {
  name: string;
  value: Tensor;
}

/** Tensors a layer plans against, all with the batch dimension first. */
export interface PlanIO {
  batch: number;
  /** Input activations [batch, ...inputShape]. */
  x: Tensor;
  /** Output activations [batch, ...outputShape], written by forward. */
  y: Tensor;
  /** Gradient of the loss with respect to y, read by backward. */
  dy: Tensor;
  /** Gradient with respect to x, written by backward; null for the first layer (not needed). */
  dx: Tensor | null;
}

export interface LayerPlan {
  /** Training-mode forward. */
  forward: Dispatch[];
  /** Evaluation-mode forward (dropout off, running statistics); defaults to `forward`. */
  forwardEval?: Dispatch[];
  /** Writes dx (when not null) and overwrites every param's grad. */
  backward: Dispatch[];
  /** Called before each training step is recorded, e.g. to set a dropout seed (queued writes only). */
  beforeStep?(step: number): void;
  /** Frees what the plan allocated (not x, y, dy, dx, which belong to the model). */
  dispose(): void;
}

/** Thrown when a layer cannot take its input; names the layer and the shapes. */
export class LayerShapeError extends Error {
  constructor(layer: string, inputShape: Shape, why: string) {
    super(`Layer ${layer}: cannot take input of shape ${shapeStr(inputShape)} (per sample): ${why}`);
    this.name = 'LayerShapeError';
  }
}

export abstract class Layer {
  /** Class name as shown in summaries and saved in configs, e.g. "Dense". */
  abstract readonly kind: string;
  /** `<index>:<kind>`, set by the model, used in every error message. */
  name = '';
  inputShape: Shape = [];
  outputShape: Shape = [];

  /**
   * Check the per-sample input shape, allocate and initialise parameters, return the output shape.
   * Throws LayerShapeError naming the layer and the shapes when the input does not fit.
   */
  abstract build(e: Engine, inputShape: Shape, rng: Rng): Shape;

  /** Trainable parameters (after build). */
  params(): Param[] {
    return [];
  }

  /** Non-trainable saved state (after build). */
  buffers(): Buffer[] {
    return [];
  }

  /** Compile kernels and create the dispatches for one batch size. */
  abstract plan(e: Engine, io: PlanIO): Promise<LayerPlan>;

  /** JSON-serialisable constructor arguments, saved in checkpoints to rebuild the model. */
  abstract config(): Record<string, unknown>;

  /** Free parameters. */
  dispose(): void {
    for (const p of this.params()) {
      p.value.dispose();
      p.grad.dispose();
    }
    for (const b of this.buffers()) b.value.dispose();
  }
}
