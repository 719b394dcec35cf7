// Dense (fully connected) layer: y = x·Wᵀ + b with W stored [out, in] (PyTorch's Linear layout, so
// checkpoints open there unchanged). It maps the last dimension of a vector [in] or of a sequence
// of tokens [T, in]. Forward is one fused matmul+bias(+activation) dispatch; backward is
// dX = dY·W, dW = dYᵀ·X and db = column sums of dY, each able to add into its output.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Shape, Tensor } from '../gpu/tensor.ts';
import { biasGrad, matmul } from '../kernels/matmul.ts';
import { activationBackward } from '../kernels/activation.ts';
import type { Activation } from '../ops/activation.ts';
import type { OpSpec } from '../ops/graph.ts';
import type { Rng } from '../util/random.ts';
import type { Epilogue, Node } from './graph.ts';
import { initialize, type Initializer } from './init.ts';
import { Layer, LayerShapeError } from './layer.ts';
import type { OpIO, OpPlan, Param } from './op.ts';

export interface DenseOptions {
  /** Default 'glorot_uniform' ('he_uniform' suits a ReLU-like activation after it). */
  kernelInitializer?: Initializer;
  biasInitializer?: Initializer;
  useBias?: boolean;
  /** Activation applied by the layer itself (a ReLU layer after it is fused instead: see absorb). */
  activation?: Activation;
  alpha?: number;
}

export class Dense extends Layer {
  readonly kind = 'Dense';
  readonly accumulates = true;
  weight: Param | null = null; // [out, in]
  bias: Param | null = null; // [out]

  constructor(
    readonly units: number,
    readonly opts: DenseOptions = {},
  ) {
    super();
    if (!Number.isInteger(units) || units < 1) throw new Error(`Dense: units must be a positive integer, got ${units}.`);
  }

  build(e: Engine, inputShape: Shape, rng: Rng): Shape {
    if (inputShape.length !== 1 && inputShape.length !== 2) {
      throw new LayerShapeError(this.name, inputShape, `Dense takes a vector [in] or tokens [T, in] per sample; put a Flatten layer before it.`);
    }
    const nIn = inputShape[inputShape.length - 1];
    const w = initialize(this.opts.kernelInitializer ?? 'glorot_uniform', this.units * nIn, nIn, this.units, rng);
    this.weight = { name: 'weight', value: e.tensor([this.units, nIn], w, `${this.at}.weight`), grad: e.zeros([this.units, nIn], `${this.at}.dweight`), decay: true };
    if (this.opts.useBias !== false) {
      const b = initialize(this.opts.biasInitializer ?? 'zeros', this.units, nIn, this.units, rng);
      this.bias = { name: 'bias', value: e.tensor([this.units], b, `${this.at}.bias`), grad: e.zeros([this.units], `${this.at}.dbias`), decay: false };
    }
    return [...inputShape.slice(0, -1), this.units];
  }

  ownParams(): Param[] {
    return [this.weight, this.bias].filter((p): p is Param => p !== null);
  }

  /** A ReLU or LeakyReLU (layer or function) reading only this layer's output is applied in the matmul's epilogue. */
  absorb(node: Node, consumer: Node): Epilogue | null {
    const s = consumer.op.spec?.(consumer);
    if (this.opts.activation || node.epilogue || s?.kind !== 'activation') return null;
    const { kind, alpha } = s.activation;
    return kind === 'relu' || kind === 'leaky_relu' ? { activation: kind, alpha } : null;
  }

  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    if (!this.weight) throw new Error(`Layer ${this.name}: plan() before build().`);
    const w = this.weight.value;
    const act = this.opts.activation ?? io.epilogue?.activation;
    const alpha = this.opts.alpha ?? io.epilogue?.alpha ?? 0.01;
    // Rows: every sample (and token) is one row of a 2-D product.
    const rows = io.x.size / w.shape[1];
    const x2 = io.x.view([rows, w.shape[1]], `${io.x.label} as rows`);
    const y2 = io.y.view([rows, this.units], `${io.y.label} as rows`);
    const forward = [await matmul(e, x2, w, y2, { transB: true, bias: this.bias?.value, activation: act, alpha })];
    const backward: Dispatch[] = [];
    if (io.dy) {
      // With an activation in the epilogue, dy is first turned into the gradient at the
      // pre-activation. Only ReLU-like activations are fused: their derivative can be read off y.
      let dz: Tensor = io.dy.view([rows, this.units], `${io.dy.label} as rows`);
      if (act) {
        if (act !== 'relu' && act !== 'leaky_relu') throw new Error(`Layer ${this.name}: only relu and leaky_relu can be fused into Dense.`);
        const scratch = io.scratch([rows, this.units], `${io.path}.dz`);
        backward.push(await activationBackward(e, act, y2, dz, scratch, alpha));
        dz = scratch;
      }
      if (io.dx) backward.push(await matmul(e, dz, w, io.dx.tensor.view([rows, w.shape[1]], `${io.dx.tensor.label} as rows`), { accumulate: io.dx.accumulate })); // [R,out]·[out,in]
      const gw = io.grad(this.weight);
      backward.push(await matmul(e, dz, x2, gw.tensor, { transA: true, accumulate: gw.accumulate })); // [out,R]·[R,in]
      if (this.bias) {
        const gb = io.grad(this.bias);
        backward.push(await biasGrad(e, dz, gb.tensor, { accumulate: gb.accumulate }));
      }
    }
    return {
      forward,
      backward,
      dispose: () => {
        for (const d of [...forward, ...backward]) d.dispose();
      },
    };
  }

  spec(node: Node): OpSpec {
    const act = this.opts.activation ?? node.epilogue?.activation;
    const alpha = this.opts.alpha ?? node.epilogue?.alpha ?? 0.01;
    return { kind: 'dense', weight: this.weight!.name, bias: this.bias?.name ?? null, activation: act ? { kind: act, alpha } : null };
  }

  config(): Record<string, unknown> {
    return { units: this.units, ...this.opts };
  }
}
