// Residual networks, CIFAR style (He et al., "Deep Residual Learning", section 4.2): a 3x3 stem
// convolution, three stages of basic blocks with 16, 32 and 64 channels (the second and third
// halve the image with a stride of 2), global average pooling and a linear classifier. Depth
// 6n + 2 counts the weighted layers: n blocks per stage, two convolutions each, plus the stem and
// the classifier (ResNet-20: n = 3). A block whose shape changes takes a 1x1 strided projection
// (with BatchNorm) as its shortcut; the others add their input unchanged.
import { BatchNorm2d } from './batchnorm.ts';
import { Conv2d } from './conv.ts';
import { Dense } from './dense.ts';
import { add, relu } from './functional.ts';
import { GraphError, type Value } from './graph.ts';
import { Model } from './model.ts';
import { Module } from './module.ts';
import { GlobalAvgPool } from './pool.ts';

/** conv3x3 - BN - ReLU - conv3x3 - BN, plus the shortcut, then ReLU. */
export class BasicBlock extends Module {
  conv1: Conv2d;
  bn1 = new BatchNorm2d();
  conv2: Conv2d;
  bn2 = new BatchNorm2d();
  /** Empty for an identity shortcut; else a 1x1 strided convolution and its BatchNorm. */
  shortcut: Module[];

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly stride: number,
  ) {
    super();
    // No biases: each convolution is followed by BatchNorm, whose shift does the same job.
    this.conv1 = new Conv2d(outChannels, { kernel: 3, stride, padding: 1, bias: false });
    this.conv2 = new Conv2d(outChannels, { kernel: 3, padding: 1, bias: false });
    this.shortcut = stride !== 1 || inChannels !== outChannels ? [new Conv2d(outChannels, { kernel: 1, stride, bias: false }), new BatchNorm2d()] : [];
  }

  forward(x: Value): Value {
    const h = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
    const skip = this.shortcut.reduce((v, m) => m.forward(v), x);
    return relu(add(h, skip));
  }
}

/** The depths a CIFAR ResNet can have: 6n + 2. */
export const RESNET_DEPTHS = [8, 14, 20, 32, 44, 56, 110] as const;

export interface ResNetOptions {
  /** 6n + 2 (8, 14, 20, 32, 56, ...); default 20. */
  depth?: number;
  /** Channels of the three stages; default [16, 32, 64]. */
  widths?: [number, number, number];
}

export class ResNet extends Model {
  stem: Conv2d;
  bn = new BatchNorm2d();
  blocks: BasicBlock[] = [];
  pool = new GlobalAvgPool();
  head: Dense;
  readonly depth: number;
  readonly widths: [number, number, number];

  constructor(
    readonly outputs: number,
    opts: ResNetOptions = {},
  ) {
    super();
    this.depth = opts.depth ?? 20;
    if (!Number.isInteger(this.depth) || this.depth < 8 || (this.depth - 2) % 6 !== 0) {
      throw new GraphError(`resnet: --depth ${opts.depth} is not 6n + 2 for a whole n >= 1 (try ${RESNET_DEPTHS.slice(0, 5).join(', ')}).`);
    }
    this.widths = opts.widths ?? [16, 32, 64];
    const n = (this.depth - 2) / 6;
    this.stem = new Conv2d(this.widths[0], { kernel: 3, padding: 1, bias: false });
    let c = this.widths[0];
    this.widths.forEach((w, stage) => {
      for (let i = 0; i < n; i++) {
        this.blocks.push(new BasicBlock(c, w, stage > 0 && i === 0 ? 2 : 1));
        c = w;
      }
    });
    this.head = new Dense(outputs);
  }

  forward(x: Value): Value {
    const [channels, h, w] = x.shape;
    if (x.shape.length !== 3 || h < 4 || w < 4) {
      throw new GraphError(`resnet: takes images [C, H, W] of at least 4x4 pixels (two stride-2 stages halve them twice); got [${x.shape.join(', ')}].`);
    }
    void channels;
    let v = relu(this.bn.forward(this.stem.forward(x)));
    for (const b of this.blocks) v = b.forward(v);
    return this.head.forward(this.pool.forward(v));
  }

  config(): Record<string, unknown> {
    return { preset: 'resnet', outputs: this.outputs, options: { depth: this.depth, widths: this.widths } };
  }
}
