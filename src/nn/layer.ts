// Layers: modules that are one op of the graph with one input. A layer is built the first time it
// is called, for the per-sample shape of its input (allocating and initialising its parameters);
// calling it again reuses its parameters (weight sharing; the gradients add up). It is planned
// per node and batch size through the op contract (src/nn/op.ts).
import type { Engine } from '../gpu/engine.ts';
import { shapeStr, type Shape } from '../gpu/tensor.ts';
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
