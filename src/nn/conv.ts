// Conv2d: a 2-D convolution layer over NCHW activations. Per sample the input is [C, H, W] and the
// output [OC, OH, OW] with OH = floor((H + 2 PH - KH) / SH) + 1 (same for W); weights are stored
// [OC, IC, KH, KW] and the bias [OC], PyTorch's layout and names, so checkpoints open there
// unchanged. Each pass (forward, input gradient, weight gradient) runs one of three algorithms,
// chosen per adapter and shape by measurement when the layer is planned (src/kernels/conv-algorithm.ts):
//   direct  register-blocked kernels that gather straight from x (src/kernels/conv2d.ts);
//   im2col  x unfolded into col [B*OH*OW, IC*KH*KW] and the tuned matmul (src/kernels/im2col.ts);
//   gemm    implicit GEMM: the matmul's tiles with the im2col gather done in the load stage
//           (src/kernels/conv-gemm.ts), no col scratch.
// The choices and their measured times are in `algorithms` and in the model summary; the figures
// behind them are in bench/README.md (`npx tsx bench/conv.ts`). A ReLU fused into the layer (see
// `absorb`) runs in the forward epilogue; backward first turns dy into the pre-activation gradient.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Shape, Tensor } from '../gpu/tensor.ts';
import { activationBackward } from '../kernels/activation.ts';
import { buildConvPass, chooseConvAlgorithms, type ConvAlgorithmChoices, type ConvPassChoice, type ConvSpec } from '../kernels/conv-algorithm.ts';
import type { OpSpec } from '../ops/graph.ts';
import type { Rng } from '../util/random.ts';
import type { Epilogue, Node } from './graph.ts';
import { initialize, type Initializer } from './init.ts';
import { expectImage, Layer, size2, slideOut, type Size2 } from './layer.ts';
import type { OpIO, OpPlan, Param } from './op.ts';

export { expectImage, size2, slideOut, type Size2 } from './layer.ts';

/** How a Conv2d computes: 'auto' measures the algorithms per pass and keeps the fastest. */
export type ConvAlgorithm = 'auto' | 'direct' | 'im2col' | 'gemm';
const CONV_ALGORITHMS: readonly ConvAlgorithm[] = ['auto', 'direct', 'im2col', 'gemm'];

export interface Conv2dOptions {
  /** Kernel size (KH, KW) or one number for both; default 3. */
  kernel?: Size2;
  /** Stride; default 1. */
  stride?: Size2;
  /** Zero padding on each side; default 0. */
  padding?: Size2;
  /** Whether to add a bias; default true. */
  bias?: boolean;
  kernelInitializer?: Initializer;
  biasInitializer?: Initializer;
  /** A ReLU applied by the layer itself (a ReLU layer after it is fused instead). */
  activation?: 'relu';
  /**
   * 'auto' (default) measures each pass's candidates on this adapter at first use and keeps the
   * fastest; 'direct', 'im2col' or 'gemm' force one for every pass (an error names what it lacks,
   * e.g. im2col's scratch over the adapter's limit, or the 'subgroups' feature gemm needs).
   */
  algorithm?: ConvAlgorithm;
}

/** 2-D convolution, NCHW: [IC, H, W] -> [OC, OH, OW] per sample. */
export class Conv2d extends Layer {
  readonly kind = 'Conv2d';
  readonly accumulates = true;
  weight: Param | null = null; // [OC, IC, KH, KW]
  bias: Param | null = null; // [OC]
  readonly kernel: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  /** The choice of each pass in the last plan (null before the layer is planned). */
  algorithms: ConvAlgorithmChoices | null = null;

  constructor(
    readonly outChannels: number,
    readonly opts: Conv2dOptions = {},
  ) {
    super();
    if (!Number.isInteger(outChannels) || outChannels < 1) throw new Error(`Conv2d: outChannels must be a positive integer, got ${outChannels}.`);
    this.kernel = size2(opts.kernel, 3, 'Conv2d', 'kernel', 1);
    this.stride = size2(opts.stride, 1, 'Conv2d', 'stride', 1);
    this.padding = size2(opts.padding, 0, 'Conv2d', 'padding', 0);
    if (opts.activation !== undefined && opts.activation !== 'relu') throw new Error(`Conv2d: only 'relu' can be fused, got ${JSON.stringify(opts.activation)}.`);
    if (opts.algorithm !== undefined && !CONV_ALGORITHMS.includes(opts.algorithm)) {
      throw new Error(`Conv2d: algorithm ${JSON.stringify(opts.algorithm)} must be one of ${CONV_ALGORITHMS.map((a) => `'${a}'`).join(', ')}.`);
    }
  }

  /** The algorithms of the last plan, e.g. "gemm" or "gemm / direct / gemm" (forward / input / weight gradient); null before planning. */
  get algorithm(): string | null {
    const c = this.algorithms;
    if (!c) return null;
    const names = [c.forward, c.backwardInput, c.backwardWeight].map((p) => p.algorithm);
    return names.every((n) => n === names[0]) ? names[0] : names.join(' / ');
  }

  /** Why each pass runs what it runs, in words ('' before planning). */
  get algorithmReason(): string {
    const c = this.algorithms;
    return c ? `forward: ${c.forward.reason}; input gradient: ${c.backwardInput.reason}; weight gradient: ${c.backwardWeight.reason}` : '';
  }

  build(e: Engine, inputShape: Shape, rng: Rng): Shape {
    const name = this.name;
    const [C, H, W] = expectImage(name, inputShape);
    const [kh, kw] = this.kernel;
    const oh = slideOut(name, inputShape, H, kh, this.stride[0], this.padding[0], 'H', `${kh}x${kw} kernel`);
    const ow = slideOut(name, inputShape, W, kw, this.stride[1], this.padding[1], 'W', `${kh}x${kw} kernel`);
    const fanIn = C * kh * kw;
    const fanOut = this.outChannels * kh * kw;
    const wShape = [this.outChannels, C, kh, kw];
    const w = initialize(this.opts.kernelInitializer ?? 'he_uniform', this.outChannels * fanIn, fanIn, fanOut, rng);
    this.weight = { name: 'weight', value: e.tensor(wShape, w, `${this.at}.weight`), grad: e.zeros(wShape, `${this.at}.dweight`), decay: true };
    if (this.opts.bias !== false) {
      const b = initialize(this.opts.biasInitializer ?? 'zeros', this.outChannels, fanIn, fanOut, rng);
      this.bias = { name: 'bias', value: e.tensor([this.outChannels], b, `${this.at}.bias`), grad: e.zeros([this.outChannels], `${this.at}.dbias`), decay: false };
    }
    return [this.outChannels, oh, ow];
  }

  ownParams(): Param[] {
    return [this.weight, this.bias].filter((p): p is Param => p !== null);
  }

  /** A ReLU (layer or function) reading only this layer's output is applied in the convolution's epilogue. */
  absorb(node: Node, consumer: Node): Epilogue | null {
    const s = consumer.op.spec?.(consumer);
    if (this.opts.activation || node.epilogue || s?.kind !== 'activation' || s.activation.kind !== 'relu') return null;
    return { activation: 'relu', alpha: 0 };
  }

  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    if (!this.weight) throw new Error(`Layer ${this.name}: plan() before build().`);
    const relu = this.opts.activation === 'relu' || io.epilogue?.activation === 'relu';
    const w = this.weight.value;
    const gw = io.dy ? io.grad(this.weight) : null;
    const gb = io.dy && this.bias ? io.grad(this.bias) : null;
    if (gw && gb && gb.accumulate !== gw.accumulate) throw new Error(`Layer ${this.name}: the weight and bias gradients must both be written or both be added to.`);
    const accumulate = Boolean(io.dx?.accumulate || gw?.accumulate);
    const spec: ConvSpec = { input: io.x.shape as [number, number, number, number], weight: w.shape as [number, number, number, number], stride: this.stride, padding: this.padding, bias: this.bias !== null, relu, accumulate };
    const choices = await this.choose(e, spec);
    this.algorithms = choices;
    const geometry = { stride: this.stride, padding: this.padding, scratch: io.scratch };
    const parts: { dispatches: Dispatch[]; dispose(): void }[] = [];
    const forward: Dispatch[] = [];
    const backward: Dispatch[] = [];
    const dispose = () => {
      parts.forEach((p) => p.dispose());
      backward.forEach((d) => d.dispose());
    };
    try {
      const f = await buildConvPass(e, 'forward', choices.forward, { x: io.x, w, bias: this.bias?.value ?? null, y: io.y }, { ...geometry, relu });
      parts.push(f);
      forward.push(...f.dispatches);
      if (io.dy) {
        // With a fused ReLU, dy first becomes the gradient at the pre-activation: ReLU's
        // derivative can be read off its output y (y > 0 exactly where the pre-activation is).
        let dz: Tensor = io.dy;
        if (relu) {
          dz = io.scratch(io.dy.shape, `${io.path}.dz`); // [B, OC, OH, OW]
          backward.push(await activationBackward(e, 'relu', io.y, io.dy, dz));
        }
        const grads: Dispatch[] = [];
        if (io.dx) {
          const p = await buildConvPass(e, 'backward_input', choices.backwardInput, { dy: dz, w, dx: io.dx.tensor }, { ...geometry, accumulate: io.dx.accumulate });
          parts.push(p);
          grads.push(...p.dispatches);
        }
        const p = await buildConvPass(e, 'backward_weight', choices.backwardWeight, { x: io.x, dy: dz, dw: gw!.tensor, db: gb?.tensor ?? null }, { ...geometry, accumulate: gw!.accumulate });
        parts.push(p);
        grads.push(...p.dispatches);
        backward.push(...grads);
      }
    } catch (err) {
      dispose();
      throw err;
    }
    return { forward, backward, dispose };
  }

  /** The measured choice of each pass, or the forced algorithm for all three. */
  private async choose(e: Engine, spec: ConvSpec): Promise<ConvAlgorithmChoices> {
    const forced = this.opts.algorithm;
    if (!forced || forced === 'auto') return chooseConvAlgorithms(e, spec);
    const one: ConvPassChoice = { algorithm: forced, reason: `'${forced}' requested`, scratchBytes: 0, seconds: {} };
    return { forward: one, backwardInput: one, backwardWeight: one };
  }

  spec(node: Node): OpSpec {
    const relu = this.opts.activation === 'relu' || node.epilogue?.activation === 'relu';
    return { kind: 'conv2d', weight: this.weight!.name, bias: this.bias?.name ?? null, stride: [...this.stride], padding: [...this.padding], relu };
  }

  config(): Record<string, unknown> {
    const c: Record<string, unknown> = { outChannels: this.outChannels, kernel: this.kernel, stride: this.stride, padding: this.padding, bias: this.opts.bias !== false };
    if (this.opts.kernelInitializer) c.kernelInitializer = this.opts.kernelInitializer;
    if (this.opts.biasInitializer) c.biasInitializer = this.opts.biasInitializer;
    if (this.opts.activation) c.activation = this.opts.activation;
    if (this.opts.algorithm) c.algorithm = this.opts.algorithm;
    return c;
  }
}
