// Dense (fully connected) layer: y = x·Wᵀ + b with W stored [out, in] (PyTorch's Linear layout, so
// checkpoints open there unchanged). Forward is one fused matmul+bias(+activation) dispatch;
// backward is dX = dY·W, dW = dYᵀ·X and db = column sums of dY.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Shape, Tensor } from '../gpu/tensor.ts';
import { biasGrad, matmul } from '../kernels/matmul.ts';
import { activationBackward, type Activation } from '../kernels/activation.ts';
import type { Rng } from '../util/random.ts';
import { initialize, type Initializer } from './init.ts';
import { Layer, LayerShapeError, type LayerPlan, type Param, type PlanIO } from './layer.ts';

export interface DenseOptions {
  /** Default 'he_uniform' when followed by a ReLU-like activation is typical; default here 'glorot_uniform'. */
  kernelInitializer?: Initializer;
  biasInitializer?: Initializer;
  useBias?: boolean;
  /** Fused activation (set by Sequential when a ReLU/LeakyReLU layer follows; or by the user). */
  activation?: Activation;
  alpha?: number;
}

export class Dense extends Layer {
  readonly kind = 'Dense';
  weight: Param | null = null; // [out, in]
  /** A ReLU-like activation fused by Sequential from the layer that follows. */
  fusedActivation: { activation: 'relu' | 'leaky_relu'; alpha: number } | null = null;
  bias: Param | null = null; // [out]

  constructor(
    readonly units: number,
    readonly opts: DenseOptions = {},
  ) {
    super();
    if (!Number.isInteger(units) || units < 1) throw new Error(`Dense: units must be a positive integer, got ${units}.`);
  }

  build(e: Engine, inputShape: Shape, rng: Rng): Shape {
    if (inputShape.length !== 1) {
      throw new LayerShapeError(this.name || 'Dense', inputShape, `Dense takes a flat vector per sample; put a Flatten layer before it.`);
    }
    const nIn = inputShape[0];
    const w = initialize(this.opts.kernelInitializer ?? 'glorot_uniform', this.units * nIn, nIn, this.units, rng);
    this.weight = { name: 'weight', value: e.tensor([this.units, nIn], w, `${this.name}.weight`), grad: e.zeros([this.units, nIn], `${this.name}.dweight`), decay: true };
    if (this.opts.useBias !== false) {
      const b = initialize(this.opts.biasInitializer ?? 'zeros', this.units, nIn, this.units, rng);
      this.bias = { name: 'bias', value: e.tensor([this.units], b, `${this.name}.bias`), grad: e.zeros([this.units], `${this.name}.dbias`), decay: false };
    }
    this.inputShape = [...inputShape];
    this.outputShape = [this.units];
    return this.outputShape;
  }

  params(): Param[] {
    return [this.weight, this.bias].filter((p): p is Param => p !== null);
  }

  async plan(e: Engine, io: PlanIO): Promise<LayerPlan> {
    if (!this.weight) throw new Error(`Layer ${this.name}: plan() before build().`);
    const w = this.weight.value;
    const act = this.opts.activation ?? this.fusedActivation?.activation;
    const alpha = this.opts.alpha ?? this.fusedActivation?.alpha ?? 0.01;
    const forward = [await matmul(e, io.x, w, io.y, { transB: true, bias: this.bias?.value, activation: act, alpha })];
    const backward: Dispatch[] = [];
    // With a fused activation, dy is first turned into the gradient at the pre-activation. Only
    // ReLU-like activations are fused: their derivative can be read off the output y.
    let dz: Tensor = io.dy;
    let scratch: Tensor | null = null;
    if (act) {
      if (act !== 'relu' && act !== 'leaky_relu') throw new Error(`Layer ${this.name}: only relu and leaky_relu can be fused into Dense.`);
      scratch = e.tensor(io.dy.shape, undefined, `${this.name}.dz`);
      dz = scratch;
      backward.push(await activationBackward(e, act, io.y, io.dy, dz, alpha));
    }
    if (io.dx) backward.push(await matmul(e, dz, w, io.dx)); // [B,out]·[out,in] -> [B,in]
    backward.push(await matmul(e, dz, io.x, this.weight.grad, { transA: true })); // [out,B]·[B,in] -> [out,in]
    if (this.bias) backward.push(await biasGrad(e, dz, this.bias.grad));
    return {
      forward,
      backward,
      dispose: () => {
        for (const d of [...forward, ...backward]) d.dispose();
        scratch?.dispose();
      },
    };
  }

  config(): Record<string, unknown> {
    return { units: this.units, ...this.opts };
  }
}
