// Layers: modules that are one op of the graph with one input. A layer is built the first time it
// is called, for the per-sample shape of its input (allocating and initialising its parameters);
// calling it again reuses its parameters (weight sharing; the gradients add up). It is planned
// per node and batch size through the op contract (src/nn/op.ts).
import type { Engine } from '../gpu/engine.ts';
import { shapeStr, type Shape } from '../gpu/tensor.ts';
import { windowPositions } from '../ops/shape.ts';
import type { Rng } from '../util/random.ts';
import { trace, type Value } from './graph.ts';
import { Module } from './module.ts';
import type { Op, OpIO, OpPlan } from './op.ts';

export type { Param, StateTensor } from './op.ts';

/** Thrown when a layer cannot take its input; names the layer by module path and the shapes. */
export class LayerShapeError extends Error {
  constructor(layer: string, inputShape: Shape, why: string) {
    super(`Layer ${layer}: cannot take input of shape ${shapeStr(inputShape)} (per sample): ${why}`);
    this.name = 'LayerShapeError';
  }
}

export abstract class Layer extends Module implements Op {
  /** Class name as shown in summaries and saved in configs, e.g. "Dense". */
  abstract readonly kind: string;
  /** Per-sample input and output shapes, set by build. */
  inputShape: Shape = [];
  outputShape: Shape = [];
  /** Whether the backward kernels honour GradOut.accumulate; layers that cannot add get a scratch from the planner. */
  readonly accumulates: boolean = false;
  private builtFor: Shape | null = null;

  /** `layers.3 (Dense)`: how errors name this layer (its kind alone before the model names it). */
  get name(): string {
    return this.path ? `${this.path} (${this.kind})` : this.kind;
  }

  /**
   * Check the per-sample input shape, allocate and initialise parameters, return the output shape.
   * Throws LayerShapeError naming the layer and the shapes when the input does not fit.
   */
  abstract build(e: Engine, inputShape: Shape, rng: Rng): Shape;

  /** Compile kernels and create the dispatches for one node and batch size. */
  abstract plan(e: Engine, io: OpIO): Promise<OpPlan>;

  /** JSON-serialisable constructor arguments, saved in checkpoints to rebuild the model. */
  abstract config(): Record<string, unknown>;

  /** What tensor labels start with: the module path, or the kind before the model names it. */
  protected get at(): string {
    return this.path || this.kind;
  }

  /** Apply the layer to a value of the model being built: builds it on first use, then adds a node. */
  forward(x: Value): Value {
    const ctx = trace(`${this.name}.forward`);
    if (!this.builtFor) {
      this.inputShape = [...x.shape];
      this.outputShape = this.build(ctx.engine, x.shape, ctx.rng);
      this.builtFor = [...x.shape];
    } else if (shapeStr(this.builtFor) !== shapeStr(x.shape)) {
      throw new LayerShapeError(this.name, x.shape, `it was built for ${shapeStr(this.builtFor)} by its first call; a layer called again shares its parameters and takes the same shape.`);
    }
    return ctx.graph.node(this, [x], [this.outputShape], this.path || this.kind)[0];
  }
}

// ---- shape rules of image layers, per sample (the batch dimension is implicit) ---------------

/** A size per spatial axis: one number for both, or [height, width]. */
export type Size2 = number | [number, number];

/** Normalise a Size2 to [h, w], checking integers >= min; errors name the layer. */
export function size2(v: Size2 | undefined, fallback: number, layer: string, what: string, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!Array.isArray(p) || p.some((d) => !Number.isInteger(d) || d < min)) {
    throw new Error(`${layer}: ${what} ${JSON.stringify(v)} must be an integer >= ${min} or a pair of them.`);
  }
  return p;
}

/**
 * Check that a per-sample input is an image [C, H, W] (NCHW without the batch) and return it.
 * `layer` is the layer's name as errors show it.
 */
export function expectImage(layer: string, inputShape: Shape): [number, number, number] {
  if (inputShape.length !== 3) {
    throw new LayerShapeError(layer, inputShape, `it takes images [C, H, W] per sample (NCHW); got rank ${inputShape.length}. Image datasets give [C, H, W]; do not Flatten before it.`);
  }
  return [inputShape[0], inputShape[1], inputShape[2]];
}

/**
 * Output size of a window (kernel or pooling) sliding along one axis, or a LayerShapeError when
 * the padded input is smaller than the window.
 */
export function slideOut(layer: string, inputShape: Shape, n: number, k: number, s: number, p: number, axis: string, what: string): number {
  if (n + 2 * p < k) {
    throw new LayerShapeError(layer, inputShape, `its ${what} of ${k} along ${axis} is larger than the input's ${n}${p ? ` padded by ${p} on each side (${n + 2 * p})` : ''}.`);
  }
  return windowPositions(n, k, s, p);
}
