// Conv2d: a 2-D convolution layer over NCHW activations. Per sample the input is [C, H, W] and the
// output [OC, OH, OW] with OH = floor((H + 2 PH - KH) / SH) + 1 (same for W); weights are stored
// [OC, IC, KH, KW] and the bias [OC], PyTorch's layout and names, so checkpoints open there
// unchanged. Two algorithms, picked per shape when the layer is planned (option `algorithm`):
//   direct: forward is one conv dispatch (bias added, ReLU applied when Sequential fused the ReLU
//     layer that follows); backward is the ReLU gradient (when fused), the input gradient (skipped
//     for the first layer) and one dispatch for the weight and bias gradients
//     (src/kernels/conv2d.ts).
//   im2col: forward unfolds x into col [M, K] (M = B*OH*OW, K = IC*KH*KW), one matmul
//     col · w2dᵀ with the bias and ReLU fused gives [M, OC], and a batched transpose puts that into
//     NCHW y [B, OC, OH*OW]. Backward: the ReLU gradient, a transpose of dz to dzt [M, OC], then
//     dW = dztᵀ · col, db = column sums of dzt, and dcol = dzt · w2d folded back onto dx by col2im
//     (src/kernels/im2col.ts, src/kernels/matmul.ts).
//
// Which is faster depends on K. The direct kernels keep an 8x8 block of outputs in registers and
// gather their inputs straight from x; no scratch memory. im2col pays for an unfold pass (and a
// fold pass backward) and a [M, K] scratch (KH*KW = 9 times the input for 3x3, kept from forward
// to backward), and then runs the tuned matmul with M = B*OH*OW, K = IC*KH*KW, N = OC.
// Measured on the software adapter (SwiftShader, 2 shared cores; every kernel timed alone with
// timestamp queries, medians of 5, B = 64, 3x3 kernels, pad 1; the machine was loaded, so read
// the ratios, not the absolute times):
//   IC->OC, HxW     K    direct fwd / bwd-in / bwd-w   matmul fwd / bwd-in / bwd-w   unfold pass
//   1->16, 28x28      9    847 / 1028 /  141 ms          842 / 1021 / 1912 ms          72 ms
//   16->32, 14x14   144   1000 / 1200 /  787 ms          736 /  856 /  570 ms         361 ms
//   32->64, 16x16   288   4695 / 4211 / 3928 ms          948 / 1276 / 1279 ms         424 ms
//   64->128, 8x8    576   2326 / 2287 / 2396 ms         1056 / 1648 / 1172 ms         311 ms
// So: with few input channels (K = 9 to 144, the MNIST CNN) direct is about as fast or faster
// once the unfold and fold passes are counted, and it needs no scratch; with K in the hundreds
// (the deeper CIFAR blocks) the matmul is 2-4x faster than direct even after paying for the unfold.
// Hence 'auto' (the default) takes im2col from K = IM2COL_MIN_K = 256 up: between the last K
// where direct held its own (144) and the first where im2col clearly won (288).
// Re-measured once the im2col path existed (the whole layer: the plan's forward + backward with a
// fused ReLU, B = 64, medians of 7 to 9 interleaved runs, same adapter, machine loaded by two
// training runs: again, read the ratios):
//   K = 9   (1->16, 28x28)    direct  353 ms   im2col  428 ms
//   K = 144 (16->32, 14x14)   direct  396 ms   im2col  349 ms; a second run 539 / 432 ms
//   K = 288 (32->64, 16x16)   direct 2022 ms   im2col 1438 ms
//   K = 576 (64->128, 8x8)    direct 1718 ms   im2col  744 ms
// Against today's direct kernels the margin is smaller than the table's (1.4x at K = 288, 2.3x at
// 576), and im2col edges ahead at K = 144 too (1.1-1.25x, within this machine's noise). The
// threshold stays at 256 until a quieter measurement settles K = 144, where im2col would also
// cost the MNIST CNN a 6.9 MiB scratch. On real GPUs, where matmul uses shared-memory tiles, the
// crossover likely comes earlier; this threshold is the software adapter's, and the only one
// measured. 'auto' still takes direct when the col scratch (M*K*4 bytes) would exceed the
// adapter's maxStorageBufferBindingSize; forcing 'im2col' then is an error. The choice and why
// are in `algorithm` and `algorithmReason` (and the model summary).
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Shape, Tensor } from '../gpu/tensor.ts';
import { activationBackward } from '../kernels/activation.ts';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward } from '../kernels/conv2d.ts';
import { col2im, im2col, transposeBatched } from '../kernels/im2col.ts';
import { biasGrad, matmul } from '../kernels/matmul.ts';
import type { Rng } from '../util/random.ts';
import { initialize, type Initializer } from './init.ts';
import type { OpSpec } from '../ops/graph.ts';
import type { Epilogue, Node } from './graph.ts';
import { expectImage, Layer, size2, slideOut, type Size2 } from './layer.ts';

export { expectImage, size2, slideOut, type Size2 } from './layer.ts';
import type { OpIO, OpPlan, Param } from './op.ts';

/** How a Conv2d computes: 'auto' picks per shape (see the header comment). */
export type ConvAlgorithm = 'auto' | 'direct' | 'im2col';
const CONV_ALGORITHMS: readonly ConvAlgorithm[] = ['auto', 'direct', 'im2col'];

/**
 * 'auto' takes im2col from this K = IC*KH*KW up: direct measured as fast or faster at K = 9 and
 * (in the first table) 144, im2col faster at K = 288 and 576 (the header comment's figures).
 */
export const IM2COL_MIN_K = 256;

/** The algorithm a plan uses and why, in words (for `Conv2d.algorithmReason`, summaries, tests). */
export interface ConvAlgorithmChoice {
  algorithm: 'direct' | 'im2col';
  reason: string;
}

/** Sizes that decide a Conv2d's algorithm. `batch` null: not planned yet, scratch size unknown. */
export interface ConvShape {
  batch: number | null;
  /** Per sample [IC, H, W]. */
  input: Shape;
  /** Per sample [OC, OH, OW]. */
  output: Shape;
  kernel: readonly [number, number];
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * Decide direct or im2col for a layer named `layer`. `limitBytes` is the adapter's
 * maxStorageBufferBindingSize, which the col scratch [B*OH*OW, IC*KH*KW] must fit. 'auto' falls
 * back to direct (saying so in the reason) when it does not; 'im2col' throws, naming the layer,
 * the shapes, the bytes needed and the limit.
 */
export function chooseConvAlgorithm(layer: string, requested: ConvAlgorithm, s: ConvShape, limitBytes: number): ConvAlgorithmChoice {
  const [ic, h, w] = s.input;
  const [oc, oh, ow] = s.output;
  const [kh, kw] = s.kernel;
  const K = ic * kh * kw;
  const kDesc = `K = IC*KH*KW = ${ic}*${kh}*${kw} = ${K}`;
  if (requested === 'direct') return { algorithm: 'direct', reason: `'direct' requested (${kDesc})` };
  let scratch = '';
  if (s.batch !== null) {
    const M = s.batch * oh * ow;
    const bytes = M * K * 4;
    if (bytes > limitBytes) {
      const what = `its col scratch [B*OH*OW, IC*KH*KW] = [${M}, ${K}] (input [${s.batch}, ${ic}, ${h}, ${w}] -> [${s.batch}, ${oc}, ${oh}, ${ow}], ${kh}x${kw} kernel) needs ${bytes} bytes, over the adapter's maxStorageBufferBindingSize of ${limitBytes} bytes`;
      if (requested === 'im2col') throw new Error(`Layer ${layer}: algorithm 'im2col' cannot be used: ${what}. Use 'direct' or 'auto', or a smaller batch.`);
      if (K >= IM2COL_MIN_K) return { algorithm: 'direct', reason: `auto: ${kDesc} >= ${IM2COL_MIN_K} favours im2col, but ${what}` };
    }
    scratch = `; col scratch [${M}, ${K}] = ${mib(bytes)}`;
  }
  if (requested === 'im2col') return { algorithm: 'im2col', reason: `'im2col' requested (${kDesc})${scratch}` };
  if (K >= IM2COL_MIN_K) return { algorithm: 'im2col', reason: `auto: ${kDesc} >= ${IM2COL_MIN_K}, where im2col + matmul measured faster than direct${scratch}` };
  return { algorithm: 'direct', reason: `auto: ${kDesc} < ${IM2COL_MIN_K}, where direct measured about as fast and needs no scratch` };
}

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
  /**
   * 'direct' convolution kernels, 'im2col' + matmul, or 'auto' (default): im2col when
   * K = IC*KH*KW >= IM2COL_MIN_K and its scratch fits the adapter, else direct.
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
  private choice: ConvAlgorithmChoice | null = null;

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

  /**
   * The algorithm in use: after build, the choice by shape alone; after plan, the last plan's
   * (which also checked that the scratch fits). null before build.
   */
  get algorithm(): 'direct' | 'im2col' | null {
    return this.choice?.algorithm ?? null;
  }

  /** Why `algorithm` was chosen, in words; '' before build. */
  get algorithmReason(): string {
    return this.choice?.reason ?? '';
  }

  private chooseAlgorithm(e: Engine, batch: number | null): ConvAlgorithmChoice {
    const s: ConvShape = { batch, input: this.inputShape, output: this.outputShape, kernel: this.kernel };
    return chooseConvAlgorithm(this.name, this.opts.algorithm ?? 'auto', s, e.adapter.limits.maxStorageBufferBindingSize);
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
    this.inputShape = [...inputShape];
    this.outputShape = [this.outChannels, oh, ow];
    this.choice = this.chooseAlgorithm(e, null);
    return this.outputShape;
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
    const choice = this.chooseAlgorithm(e, io.batch);
    this.choice = choice;
    const relu = this.opts.activation === 'relu' || io.epilogue?.activation === 'relu';
    const forward: Dispatch[] = [];
    const backward: Dispatch[] = [];
    const dispose = () => {
      for (const d of [...forward, ...backward]) d.dispose();
    };
    try {
      // With a fused ReLU, dy first becomes the gradient at the pre-activation: ReLU's derivative
      // can be read off its output y (y > 0 exactly where the pre-activation is).
      let dz: Tensor | null = io.dy;
      if (io.dy && relu) {
        dz = io.scratch(io.dy.shape, `${io.path}.dz`); // [B, OC, OH, OW]
        backward.push(await activationBackward(e, 'relu', io.y, io.dy, dz));
      }
      if (choice.algorithm === 'im2col') await this.planIm2col(e, io, relu, dz, forward, backward);
      else await this.planDirect(e, io, relu, dz, forward, backward);
    } catch (err) {
      dispose();
      throw err;
    }
    return { forward, backward, dispose };
  }

  private async planDirect(e: Engine, io: OpIO, relu: boolean, dz: Tensor | null, forward: Dispatch[], backward: Dispatch[]): Promise<void> {
    const w = this.weight!.value;
    const geometry = { stride: this.stride, padding: this.padding };
    forward.push(await conv2dForward(e, io.x, w, this.bias?.value ?? null, io.y, { ...geometry, relu }));
    if (!dz) return;
    if (io.dx) backward.push(await conv2dBackwardInput(e, dz, w, io.dx.tensor, { ...geometry, accumulate: io.dx.accumulate }));
    const gw = io.grad(this.weight!);
    const gb = this.bias ? io.grad(this.bias) : null;
    if (gb && gb.accumulate !== gw.accumulate) throw new Error(`Layer ${this.name}: the weight and bias gradients must both be written or both be added to.`);
    backward.push(await conv2dBackwardWeight(e, io.x, dz, gw.tensor, gb?.tensor ?? null, { ...geometry, accumulate: gw.accumulate }));
  }

  /** im2col + matmul (header comment); its scratch tensors come from the planner. */
  private async planIm2col(e: Engine, io: OpIO, relu: boolean, dz: Tensor | null, forward: Dispatch[], backward: Dispatch[]): Promise<void> {
    const B = io.batch;
    const [C] = this.inputShape;
    const [OC, OH, OW] = this.outputShape;
    const [kh, kw] = this.kernel;
    const P = OH * OW;
    const M = B * P;
    const K = C * kh * kw;
    const window = { kernel: this.kernel, stride: this.stride, padding: this.padding };
    // col [M, K] lives from forward to backward (dW reads it); backward then reuses it for dcol,
    // since the dispatches of a step run in order and dW has consumed col by then.
    const col = io.scratch([M, K], `${io.path}.col`);
    // [M, OC] rows: the matmul's output in forward (then transposed into y), dz transposed in
    // backward. One buffer serves both: forward is done with it once y is written.
    const rows = io.scratch([M, OC], `${io.path}.rows`);
    const w2d = this.weight!.value.view([OC, K], `${this.at}.weight as [OC, K]`);
    const rowsBPC = rows.view([B, P, OC], `${io.path}.rows as [B, P, OC]`);

    forward.push(await im2col(e, io.x, col, window));
    forward.push(await matmul(e, col, w2d, rows, { transB: true, bias: this.bias?.value, activation: relu ? 'relu' : undefined }));
    forward.push(await transposeBatched(e, rowsBPC, io.y.view([B, OC, P], `${io.y.label} as [B, OC, P]`)));
    if (!dz) return;

    backward.push(await transposeBatched(e, dz.view([B, OC, P], `${dz.label} as [B, OC, P]`), rowsBPC));
    const gw = io.grad(this.weight!);
    backward.push(await matmul(e, rows, col, gw.tensor.view([OC, K], `${gw.tensor.label} as [OC, K]`), { transA: true, accumulate: gw.accumulate })); // [OC, M]·[M, K]
    if (this.bias) {
      const gb = io.grad(this.bias);
      backward.push(await biasGrad(e, rows, gb.tensor, { accumulate: gb.accumulate }));
    }
    if (io.dx) {
      backward.push(await matmul(e, rows, w2d, col)); // dcol [M, OC]·[OC, K] -> [M, K], over col
      backward.push(await col2im(e, col, io.dx.tensor, { ...window, accumulate: io.dx.accumulate }));
    }
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
