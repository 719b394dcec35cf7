// Pooling layers over NCHW activations: MaxPool2d and AvgPool2d ([C, H, W] -> [C, OH, OW] per
// sample, OH = floor((H + 2 PH - KH) / SH) + 1, stride defaulting to the window as in PyTorch) and
// GlobalAvgPool ([C, H, W] -> [C]). No parameters. Max pooling records the argmax of each window
// in the forward pass; its backward pass routes dy back through it.
import type { Engine } from '../gpu/engine.ts';
import type { Shape, Tensor } from '../gpu/tensor.ts';
import { avgPool2dBackward, avgPool2dForward, globalAvgPoolBackward, globalAvgPoolForward, maxPool2dBackward, maxPool2dForward } from '../kernels/pool.ts';
import type { OpSpec } from '../ops/graph.ts';
import { expectImage, Layer, size2, slideOut, type Size2 } from './layer.ts';
import type { OpIO, OpPlan } from './op.ts';

/** Window options of MaxPool2d and AvgPool2d. */
export interface Pool2dOptions {
  /** Window (KH, KW) or one number for both. Default 2. */
  kernel?: Size2;
  /** Stride; default: the window (non-overlapping windows). */
  stride?: Size2;
  /** Padding on each side, at most half the window; default 0. Padding never wins a max. */
  padding?: Size2;
}

/** AvgPool2d's options: the window, and what the mean divides by. */
export interface AvgPool2dOptions extends Pool2dOptions {
  /** Divide by the whole window including padding (PyTorch's default, true) or by the covered part only. */
  countIncludePad?: boolean;
}

/** Window geometry shared by max and average pooling. */
abstract class Pool2d extends Layer {
  readonly accumulates = true;
  readonly kernel: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];

  constructor(kind: string, opts: Pool2dOptions) {
    super();
    this.kernel = size2(opts.kernel, 2, kind, 'kernel', 1);
    this.stride = opts.stride === undefined ? [...this.kernel] : size2(opts.stride, 1, kind, 'stride', 1);
    this.padding = size2(opts.padding, 0, kind, 'padding', 0);
    if (2 * this.padding[0] > this.kernel[0] || 2 * this.padding[1] > this.kernel[1]) {
      throw new Error(`${kind}: padding [${this.padding.join(', ')}] is more than half the ${this.kernel.join('x')} window.`);
    }
  }

  build(_e: Engine, inputShape: Shape): Shape {
    const name = this.name;
    const [C, H, W] = expectImage(name, inputShape);
    const what = `${this.kernel.join('x')} window`;
    const oh = slideOut(name, inputShape, H, this.kernel[0], this.stride[0], this.padding[0], 'H', what);
    const ow = slideOut(name, inputShape, W, this.kernel[1], this.stride[1], this.padding[1], 'W', what);
    return [C, oh, ow];
  }

  protected get windowOptions() {
    return { kernel: this.kernel, stride: this.stride, padding: this.padding };
  }

  config(): Record<string, unknown> {
    return { kernel: this.kernel, stride: this.stride, padding: this.padding };
  }
}

/** Max over each window, NCHW. */
export class MaxPool2d extends Pool2d {
  readonly kind = 'MaxPool2d';

  constructor(opts: Pool2dOptions = {}) {
    super('MaxPool2d', opts);
  }

  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    // Plane index (ih * W + iw) of each window's maximum, as f32: [B, C, OH, OW].
    const argmax: Tensor = io.scratch(io.y.shape, `${io.path}.argmax`);
    const opts = this.windowOptions;
    const forward = [await maxPool2dForward(e, io.x, io.y, argmax, opts)];
    const backward = io.dy && io.dx ? [await maxPool2dBackward(e, io.dy, argmax, io.dx.tensor, { ...opts, accumulate: io.dx.accumulate })] : [];
    return { forward, backward, dispose: () => [...forward, ...backward].forEach((d) => d.dispose()) };
  }

  spec(): OpSpec {
    return { kind: 'maxpool2d', kernel: [...this.kernel], stride: [...this.stride], padding: [...this.padding] };
  }
}

/** Mean over each window, NCHW. */
export class AvgPool2d extends Pool2d {
  readonly kind = 'AvgPool2d';
  readonly countIncludePad: boolean;

  constructor(opts: AvgPool2dOptions = {}) {
    super('AvgPool2d', opts);
    this.countIncludePad = opts.countIncludePad ?? true;
  }

  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const opts = { ...this.windowOptions, countIncludePad: this.countIncludePad };
    const forward = [await avgPool2dForward(e, io.x, io.y, opts)];
    const backward = io.dy && io.dx ? [await avgPool2dBackward(e, io.dy, io.dx.tensor, { ...opts, accumulate: io.dx.accumulate })] : [];
    return { forward, backward, dispose: () => [...forward, ...backward].forEach((d) => d.dispose()) };
  }

  spec(): OpSpec {
    return { kind: 'avgpool2d', kernel: [...this.kernel], stride: [...this.stride], padding: [...this.padding], countIncludePad: this.countIncludePad };
  }

  config(): Record<string, unknown> {
    return { ...super.config(), countIncludePad: this.countIncludePad };
  }
}

/** Mean over each channel's plane: [C, H, W] -> [C] per sample (a Dense layer can follow directly). */
export class GlobalAvgPool extends Layer {
  readonly kind = 'GlobalAvgPool';
  readonly accumulates = true;

  build(_e: Engine, inputShape: Shape): Shape {
    const [C] = expectImage(this.name, inputShape);
    return [C];
  }

  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward = [await globalAvgPoolForward(e, io.x, io.y)];
    const backward = io.dy && io.dx ? [await globalAvgPoolBackward(e, io.dy, io.dx.tensor, { accumulate: io.dx.accumulate })] : [];
    return { forward, backward, dispose: () => [...forward, ...backward].forEach((d) => d.dispose()) };
  }

  spec(): OpSpec {
    return { kind: 'globalavgpool' };
  }

  config(): Record<string, unknown> {
    return {};
  }
}
