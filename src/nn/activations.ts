// Activation layers (ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax) and Flatten: no parameters,
// output shape = input shape (Flatten: the product). A ReLU/LeakyReLU right after a Dense layer
// is fused into the Dense matmul by Sequential; the layer then plans no dispatches of its own.
import type { Engine } from '../gpu/engine.ts';
import type { Shape } from '../gpu/tensor.ts';
import { activationBackward, activationForward, type Activation as ActivationKind } from '../kernels/activation.ts';
import { softmaxBackward, softmaxForward } from '../kernels/softmax.ts';
import { Layer, LayerShapeError, type LayerPlan, type PlanIO } from './layer.ts';

/** An elementwise activation layer. */
export class Activation extends Layer {
  readonly kind: string;
  /** Set by Sequential when this activation was fused into the preceding layer: y aliases x, no dispatches. */
  fused = false;

  constructor(
    readonly activation: ActivationKind,
    readonly alpha = 0.01,
  ) {
    super();
    this.kind = { relu: 'ReLU', leaky_relu: 'LeakyReLU', sigmoid: 'Sigmoid', tanh: 'Tanh', gelu: 'GELU' }[activation];
  }

  build(_e: Engine, inputShape: Shape): Shape {
    this.inputShape = [...inputShape];
    this.outputShape = [...inputShape];
    return this.outputShape;
  }

  async plan(e: Engine, io: PlanIO): Promise<LayerPlan> {
    if (this.fused) return { forward: [], backward: [], dispose: () => {} };
    const forward = [await activationForward(e, this.activation, io.x, io.y, this.alpha)];
    const backward = io.dx ? [await activationBackward(e, this.activation, io.x, io.dy, io.dx, this.alpha)] : [];
    return { forward, backward, dispose: () => [...forward, ...backward].forEach((d) => d.dispose()) };
  }

  config(): Record<string, unknown> {
    return this.activation === 'leaky_relu' ? { alpha: this.alpha } : {};
  }
}

export const ReLU = () => new Activation('relu');
export const LeakyReLU = (alpha = 0.01) => new Activation('leaky_relu', alpha);
export const Sigmoid = () => new Activation('sigmoid');
export const Tanh = () => new Activation('tanh');
export const GELU = () => new Activation('gelu');

/** Softmax over the last axis of a [B, C] input. For training with softmax cross-entropy, end the model with the logits instead: the loss fuses softmax. */
export class Softmax extends Layer {
  readonly kind = 'Softmax';

  build(_e: Engine, inputShape: Shape): Shape {
    if (inputShape.length !== 1) throw new LayerShapeError(this.name || 'Softmax', inputShape, 'Softmax takes a flat vector of class scores per sample.');
    this.inputShape = [...inputShape];
    this.outputShape = [...inputShape];
    return this.outputShape;
  }

  async plan(e: Engine, io: PlanIO): Promise<LayerPlan> {
    const forward = [await softmaxForward(e, io.x, io.y)];
    const backward = io.dx ? [await softmaxBackward(e, io.y, io.dy, io.dx)] : [];
    return { forward, backward, dispose: () => [...forward, ...backward].forEach((d) => d.dispose()) };
  }

  config(): Record<string, unknown> {
    return {};
  }
}

/** Flatten [C, H, W] (or any shape) per sample to [C*H*W]. Its output is a view of its input: no copy. */
export class Flatten extends Layer {
  readonly kind = 'Flatten';
  /** The model makes y and dy views of x and dx for layers that set this. */
  readonly isView = true;

  build(_e: Engine, inputShape: Shape): Shape {
    this.inputShape = [...inputShape];
    this.outputShape = [inputShape.reduce((a, b) => a * b, 1)];
    return this.outputShape;
  }

  async plan(): Promise<LayerPlan> {
    return { forward: [], backward: [], dispose: () => {} };
  }

  config(): Record<string, unknown> {
    return {};
  }
}
