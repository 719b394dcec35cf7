// Activation layers (ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax) and Flatten: no parameters,
// output shape = input shape (Flatten: the product). A ReLU/LeakyReLU that is the only reader of a
// Dense or Conv2d output is fused into that layer's kernel by the model's fusion pass (the layer's
// `absorb`), and plans no dispatches of its own.
import type { Engine } from '../gpu/engine.ts';
import type { Shape } from '../gpu/tensor.ts';
import { activationBackward, activationForward } from '../kernels/activation.ts';
import { softmaxBackward, softmaxForward } from '../kernels/softmax.ts';
import type { Activation as ActivationKind } from '../ops/activation.ts';
import type { OpSpec } from '../ops/graph.ts';
import { Layer, LayerShapeError } from './layer.ts';
import type { OpIO, OpPlan } from './op.ts';

const noDispatches = (): OpPlan => ({ forward: [], backward: [], dispose: () => {} });

/** An elementwise activation layer. */
export class Activation extends Layer {
  readonly kind: string;
  readonly accumulates = true;

  constructor(
    readonly activation: ActivationKind,
    readonly alpha = 0.01,
  ) {
    super();
    this.kind = { relu: 'ReLU', leaky_relu: 'LeakyReLU', sigmoid: 'Sigmoid', tanh: 'Tanh', gelu: 'GELU' }[activation];
  }

  build(_e: Engine, inputShape: Shape): Shape {
    return [...inputShape];
  }

  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward = [await activationForward(e, this.activation, io.x, io.y, this.alpha)];
    const backward = io.dy && io.dx ? [await activationBackward(e, this.activation, io.x, io.dy, io.dx.tensor, this.alpha, { accumulate: io.dx.accumulate })] : [];
    return { forward, backward, dispose: () => [...forward, ...backward].forEach((d) => d.dispose()) };
  }

  spec(): OpSpec {
    return { kind: 'activation', activation: { kind: this.activation, alpha: this.alpha } };
  }

  config(): Record<string, unknown> {
    return this.activation === 'leaky_relu' ? { alpha: this.alpha } : {};
  }
}

/** A ReLU layer: `new Activation('relu')` (the other kinds are spelled that way). */
export const ReLU = () => new Activation('relu');

/**
 * Softmax over the last axis. For training with softmax cross-entropy, a model may end with it:
 * the loss then reads the logits before it (see the loss planning), so the gradient stays exact.
 */
export class Softmax extends Layer {
  readonly kind = 'Softmax';
  readonly accumulates = true;

  build(_e: Engine, inputShape: Shape): Shape {
    if (inputShape.length < 1) throw new LayerShapeError(this.name, inputShape, 'Softmax needs at least one dimension per sample.');
    return [...inputShape];
  }

  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward = [await softmaxForward(e, io.x, io.y)];
    const backward = io.dy && io.dx ? [await softmaxBackward(e, io.y, io.dy, io.dx.tensor, { accumulate: io.dx.accumulate })] : [];
    return { forward, backward, dispose: () => [...forward, ...backward].forEach((d) => d.dispose()) };
  }

  spec(): OpSpec {
    return { kind: 'softmax' };
  }

  config(): Record<string, unknown> {
    return {};
  }
}

/** Flatten [C, H, W] (or any shape) per sample to [C*H*W]. Its output is a view of its input: no copy. */
export class Flatten extends Layer {
  readonly kind = 'Flatten';
  readonly isView = true;

  build(_e: Engine, inputShape: Shape): Shape {
    return [inputShape.reduce((a, b) => a * b, 1)];
  }

  async plan(): Promise<OpPlan> {
    return noDispatches();
  }

  spec(): OpSpec {
    return { kind: 'reshape' };
  }

  config(): Record<string, unknown> {
    return {};
  }
}
