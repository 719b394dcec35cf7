// Conv2d: a 2-D convolution layer over NCHW activations. Per sample the input is [C, H, W] and the
// output [OC, OH, OW] with OH = floor((H + 2 PH - KH) / SH) + 1 (same for W); weights are stored
// [OC, IC, KH, KW] and the bias [OC], PyTorch's layout and names, so checkpoints open there
// unchanged. Forward is one conv dispatch (bias added, ReLU applied when Sequential fused the ReLU
// layer that follows); backward is the ReLU gradient (when fused), the input gradient (skipped for
// the first layer) and one dispatch for the weight and bias gradients.
//
// Why direct convolution, and when im2col + matmul would be better. The kernels in
// src/kernels/conv2d.ts are direct: each invocation keeps an 8x8 block of outputs in registers and
// gathers its inputs straight from x; no scratch memory. im2col would first unfold x into a
// [B*OH*OW, IC*KH*KW] matrix (KH*KW = 9 times the input for 3x3) and run one matmul with
// M = B*OH*OW, K = IC*KH*KW, N = OC; the backward input pass would then fold [M, K] back (col2im).
// Measured on the software adapter (SwiftShader, 2 shared cores; every kernel timed alone with
// timestamp queries, medians of 5, B = 64, 3x3 kernels, pad 1; the machine was loaded, so read
// the ratios, not the absolute times):
//   IC->OC, HxW     K    direct fwd / bwd-in / bwd-w   matmul fwd / bwd-in / bwd-w   unfold pass
//   1->16, 28x28      9    847 / 1028 /  141 ms          842 / 1021 / 1912 ms          72 ms
//   16->32, 14x14   144   1000 / 1200 /  787 ms          736 /  856 /  570 ms         361 ms
//   32->64, 16x16   288   4695 / 4211 / 3928 ms          948 / 1276 / 1279 ms         424 ms
//   64->128, 8x8    576   2326 / 2287 / 2396 ms         1056 / 1648 / 1172 ms         311 ms
// So: with few input channels (K = 9 to 144, the MNIST CNN) direct is about as fast or faster
// once the unfold and fold passes are counted, and it needs no [M, K] scratch (9x the activation,
// per layer, kept for backward); with K in the hundreds (the deeper CIFAR blocks) the matmul is 2-4x faster
// than direct even after paying for the unfold, and on real GPUs, where matmul uses shared-memory
// tiles and tensor cores, that crossover comes earlier still. An im2col path for large K is the
// kernel family's to add; this layer only calls conv2dForward/BackwardInput/BackwardWeight.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Shape, Tensor } from '../gpu/tensor.ts';
import { activationBackward } from '../kernels/activation.ts';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward } from '../kernels/conv2d.ts';
import type { Rng } from '../util/random.ts';
import { initialize, type Initializer } from './init.ts';
import { Layer, LayerShapeError, type LayerPlan, type Param, type PlanIO } from './layer.ts';

/** A size per spatial axis: one number for both, or [height, width]. */
export type Size2 = number | [number, number];

/** Options of a Conv2d layer (PyTorch's Conv2d arguments, plus the initialisers). */
export interface Conv2dOptions {
  /** Kernel size (KH, KW) or one number for both. Default 3. */
  kernel?: Size2;
  /** Stride, default 1. */
  stride?: Size2;
  /** Zero padding on each side, default 0. */
  padding?: Size2;
  /** Add a learned bias per output channel (default true). */
  bias?: boolean;
  /** Default 'he_uniform' (fan-in = IC * KH * KW), suited to the ReLU that usually follows. */
  kernelInitializer?: Initializer;
  biasInitializer?: Initializer;
  /** Fused activation; set by Sequential when a ReLU layer follows, or by the user. */
  activation?: 'relu';
}

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
  return Math.floor((n + 2 * p - k) / s) + 1;
}

/** 2-D convolution, NCHW: [IC, H, W] -> [OC, OH, OW] per sample. */
export class Conv2d extends Layer {
  readonly kind = 'Conv2d';
  weight: Param | null = null; // [OC, IC, KH, KW]
  bias: Param | null = null; // [OC]
  /** A ReLU fused by Sequential from the layer that follows. */
  fusedRelu = false;
  readonly kernel: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];

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
  }

  build(e: Engine, inputShape: Shape, rng: Rng): Shape {
    const name = this.name || 'Conv2d';
    const [C, H, W] = expectImage(name, inputShape);
    const [kh, kw] = this.kernel;
    const oh = slideOut(name, inputShape, H, kh, this.stride[0], this.padding[0], 'H', `${kh}x${kw} kernel`);
    const ow = slideOut(name, inputShape, W, kw, this.stride[1], this.padding[1], 'W', `${kh}x${kw} kernel`);
    const fanIn = C * kh * kw;
    const fanOut = this.outChannels * kh * kw;
    const wShape = [this.outChannels, C, kh, kw];
    const w = initialize(this.opts.kernelInitializer ?? 'he_uniform', this.outChannels * fanIn, fanIn, fanOut, rng);
    this.weight = { name: 'weight', value: e.tensor(wShape, w, `${this.name}.weight`), grad: e.zeros(wShape, `${this.name}.dweight`), decay: true };
    if (this.opts.bias !== false) {
      const b = initialize(this.opts.biasInitializer ?? 'zeros', this.outChannels, fanIn, fanOut, rng);
      this.bias = { name: 'bias', value: e.tensor([this.outChannels], b, `${this.name}.bias`), grad: e.zeros([this.outChannels], `${this.name}.dbias`), decay: false };
    }
    this.inputShape = [...inputShape];
    this.outputShape = [this.outChannels, oh, ow];
    return this.outputShape;
  }

  params(): Param[] {
    return [this.weight, this.bias].filter((p): p is Param => p !== null);
  }

  /** Whether the forward pass applies a ReLU (given in the options or fused by Sequential). */
  get relu(): boolean {
    return this.opts.activation === 'relu' || this.fusedRelu;
  }

  async plan(e: Engine, io: PlanIO): Promise<LayerPlan> {
    if (!this.weight) throw new Error(`Layer ${this.name}: plan() before build().`);
    const w = this.weight.value;
    const geometry = { stride: this.stride, padding: this.padding };
    const forward = [await conv2dForward(e, io.x, w, this.bias?.value ?? null, io.y, { ...geometry, relu: this.relu })];
    const backward: Dispatch[] = [];
    // With a fused ReLU, dy first becomes the gradient at the pre-activation: ReLU's derivative
    // can be read off its output y (y > 0 exactly where the pre-activation is).
    let dz: Tensor = io.dy;
    let scratch: Tensor | null = null;
    if (this.relu) {
      scratch = e.tensor(io.dy.shape, undefined, `${this.name}.dz`); // [B, OC, OH, OW]
      dz = scratch;
      backward.push(await activationBackward(e, 'relu', io.y, io.dy, dz));
    }
    if (io.dx) backward.push(await conv2dBackwardInput(e, dz, w, io.dx, geometry));
    backward.push(await conv2dBackwardWeight(e, io.x, dz, this.weight.grad, this.bias?.grad ?? null, geometry));
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
    const c: Record<string, unknown> = { outChannels: this.outChannels, kernel: this.kernel, stride: this.stride, padding: this.padding, bias: this.opts.bias !== false };
    if (this.opts.kernelInitializer) c.kernelInitializer = this.opts.kernelInitializer;
    if (this.opts.biasInitializer) c.biasInitializer = this.opts.biasInitializer;
    if (this.opts.activation) c.activation = this.opts.activation;
    return c;
  }
}
