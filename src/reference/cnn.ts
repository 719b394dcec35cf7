// CPU reference training of a convolutional network (Conv2d, BatchNorm2d, ReLU, max/average/global
// pooling, Flatten, Dense; softmax cross-entropy; SGD or Adam), built from the reference kernels
// with the formulas the GPU path uses. Activations are NCHW. Tests train the same network from the
// same weights on both sides and compare the losses step by step.
import { batchNormBackward, batchNormForwardEval, batchNormForwardTrain } from './batchnorm.ts';
import { activationBackward, activationForward } from './activation.ts';
import { conv2dOutputShape } from '../ops/conv.ts';
import { pool2dOutputShape, type AvgPool2dOptions, type Pool2dOptions } from '../ops/pooling.ts';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward } from './conv2d.ts';
import { hostTensor, type HostTensor } from './host.ts';
import { softmaxCrossEntropy } from './loss.ts';
import { biasGrad, matmul } from './matmul.ts';
import { adamUpdate, sgdUpdate } from './optim.ts';
import type { RefOptimizer } from './mlp.ts';
import {
  avgPool2dBackward,
  avgPool2dForward,
  globalAvgPoolBackward,
  globalAvgPoolForward,
  maxPool2dBackward,
  maxPool2dForward,
} from './pool.ts';

/** One layer of a reference network, with its weights (copied in) where it has any. */
export type RefLayerSpec =
  | { kind: 'conv'; weight: ArrayLike<number>; wShape: [number, number, number, number]; bias: ArrayLike<number> | null; stride: [number, number]; padding: [number, number] }
  | { kind: 'batchnorm'; gamma: ArrayLike<number>; beta: ArrayLike<number>; runningMean: ArrayLike<number>; runningVar: ArrayLike<number>; eps: number; momentum: number }
  | { kind: 'relu' }
  | { kind: 'maxpool'; opts: Pool2dOptions }
  | { kind: 'avgpool'; opts: AvgPool2dOptions }
  | { kind: 'gap' }
  | { kind: 'flatten' }
  | { kind: 'dense'; weight: ArrayLike<number>; bias: ArrayLike<number>; nIn: number; nOut: number };

/** A trainable tensor of the reference network, its gradient and its optimizer state. */
export interface RefParam {
  value: Float32Array;
  grad: Float32Array;
  decay: boolean;
  state: [Float32Array, Float32Array];
}

/** A layer's forward pass (saving what backward needs) and backward pass (filling param grads). */
interface RefLayer {
  params: RefParam[];
  /** Non-trainable state, e.g. BatchNorm running statistics. */
  buffers: HostTensor[];
  forward(x: HostTensor, train: boolean): HostTensor;
  /** Returns dx; `needDx` false for the first layer. */
  backward(dy: HostTensor, needDx: boolean): HostTensor | null;
}

function param(values: ArrayLike<number>, decay: boolean): RefParam {
  const n = values.length;
  return { value: Float32Array.from(values), grad: new Float32Array(n), decay, state: [new Float32Array(n), new Float32Array(n)] };
}

/** x viewed under another shape (same data). */
const reshape = (x: HostTensor, shape: number[]): HostTensor => ({ shape, data: x.data });

function convLayer(s: Extract<RefLayerSpec, { kind: 'conv' }>): RefLayer {
  const w = param(s.weight, true);
  const b = s.bias ? param(s.bias, false) : null;
  const opts = { stride: s.stride, padding: s.padding };
  const wT = hostTensor(s.wShape);
  let x: HostTensor = hostTensor([1]);
  return {
    params: b ? [w, b] : [w],
    buffers: [],
    forward(input) {
      x = input;
      wT.data.set(w.value);
      const y = hostTensor(conv2dOutputShape(x.shape, s.wShape, opts));
      conv2dForward(x, wT, b ? hostTensor([s.wShape[0]], b.value) : null, y, opts);
      return y;
    },
    backward(dy, needDx) {
      const dw = hostTensor(s.wShape);
      const db = b ? hostTensor([s.wShape[0]]) : null;
      conv2dBackwardWeight(x, dy, dw, db, opts);
      w.grad.set(dw.data);
      if (b && db) b.grad.set(db.data);
      if (!needDx) return null;
      const dx = hostTensor(x.shape);
      conv2dBackwardInput(dy, wT, dx, opts);
      return dx;
    },
  };
}

function batchNormLayer(s: Extract<RefLayerSpec, { kind: 'batchnorm' }>): RefLayer {
  const gamma = param(s.gamma, false);
  const beta = param(s.beta, false);
  const C = s.gamma.length;
  const runningMean = hostTensor([C], s.runningMean, 'running_mean');
  const runningVar = hostTensor([C], s.runningVar, 'running_var');
  const mean = hostTensor([C]);
  const invstd = hostTensor([C]);
  let x: HostTensor = hostTensor([1]);
  const g = () => hostTensor([C], gamma.value);
  return {
    params: [gamma, beta],
    buffers: [runningMean, runningVar],
    forward(input, train) {
      x = input;
      const y = hostTensor(x.shape);
      if (train) batchNormForwardTrain(x, g(), hostTensor([C], beta.value), y, mean, invstd, runningMean, runningVar, { eps: s.eps, momentum: s.momentum });
      else batchNormForwardEval(x, g(), hostTensor([C], beta.value), runningMean, runningVar, y, { eps: s.eps });
      return y;
    },
    backward(dy) {
      const dx = hostTensor(x.shape);
      const dgamma = hostTensor([C]);
      const dbeta = hostTensor([C]);
      batchNormBackward(x, dy, g(), mean, invstd, dx, dgamma, dbeta);
      gamma.grad.set(dgamma.data);
      beta.grad.set(dbeta.data);
      return dx;
    },
  };
}

function reluLayer(): RefLayer {
  let x: HostTensor = hostTensor([1]);
  return {
    params: [],
    buffers: [],
    forward(input) {
      x = input;
      const y = hostTensor(x.shape);
      activationForward('relu', x.data as Float32Array, y.data as Float32Array);
      return y;
    },
    backward(dy) {
      const dx = hostTensor(x.shape);
      activationBackward('relu', x.data as Float32Array, dy.data as Float32Array, dx.data as Float32Array);
      return dx;
    },
  };
}

function maxPoolLayer(opts: Pool2dOptions): RefLayer {
  let xShape: number[] = [];
  let argmax: HostTensor = hostTensor([1]);
  return {
    params: [],
    buffers: [],
    forward(x) {
      xShape = [...x.shape];
      const y = hostTensor(pool2dOutputShape(x.shape, opts));
      argmax = hostTensor(y.shape);
      maxPool2dForward(x, y, argmax, opts);
      return y;
    },
    backward(dy) {
      const dx = hostTensor(xShape);
      maxPool2dBackward(dy, argmax, dx, opts);
      return dx;
    },
  };
}

function avgPoolLayer(opts: AvgPool2dOptions): RefLayer {
  let xShape: number[] = [];
  return {
    params: [],
    buffers: [],
    forward(x) {
      xShape = [...x.shape];
      const y = hostTensor(pool2dOutputShape(x.shape, opts));
      avgPool2dForward(x, y, opts);
      return y;
    },
    backward(dy) {
      const dx = hostTensor(xShape);
      avgPool2dBackward(dy, dx, opts);
      return dx;
    },
  };
}

function gapLayer(): RefLayer {
  let xShape: number[] = [];
  return {
    params: [],
    buffers: [],
    forward(x) {
      xShape = [...x.shape];
      const y = hostTensor([x.shape[0], x.shape[1]]);
      globalAvgPoolForward(x, y);
      return y;
    },
    backward(dy) {
      const dx = hostTensor(xShape);
      globalAvgPoolBackward(dy, dx);
      return dx;
    },
  };
}

function flattenLayer(): RefLayer {
  let xShape: number[] = [];
  return {
    params: [],
    buffers: [],
    forward(x) {
      xShape = [...x.shape];
      return reshape(x, [x.shape[0], x.data.length / x.shape[0]]);
    },
    backward(dy) {
      return reshape(dy, xShape);
    },
  };
}

function denseLayer(s: Extract<RefLayerSpec, { kind: 'dense' }>): RefLayer {
  const w = param(s.weight, true); // [out, in]
  const b = param(s.bias, false); // [out]
  let x: HostTensor = hostTensor([1]);
  return {
    params: [w, b],
    buffers: [],
    forward(input) {
      x = input;
      const B = x.shape[0];
      const y = hostTensor([B, s.nOut]);
      matmul(x.data, w.value, y.data, B, s.nOut, s.nIn, { transB: true, bias: b.value });
      return y;
    },
    backward(dy, needDx) {
      const B = x.shape[0];
      matmul(dy.data, x.data, w.grad, s.nOut, s.nIn, B, { transA: true });
      biasGrad(dy.data, b.grad, B, s.nOut);
      if (!needDx) return null;
      const dx = hostTensor([B, s.nIn]);
      matmul(dy.data, w.value, dx.data, B, s.nIn, s.nOut);
      return dx;
    },
  };
}

function makeLayer(s: RefLayerSpec): RefLayer {
  switch (s.kind) {
    case 'conv':
      return convLayer(s);
    case 'batchnorm':
      return batchNormLayer(s);
    case 'relu':
      return reluLayer();
    case 'maxpool':
      return maxPoolLayer(s.opts);
    case 'avgpool':
      return avgPoolLayer(s.opts);
    case 'gap':
      return gapLayer();
    case 'flatten':
      return flattenLayer();
    case 'dense':
      return denseLayer(s);
  }
}

/** A reference network: layers in order, for per-sample inputs of `inputShape` ([C, H, W]). */
export class RefCnn {
  private readonly layers: RefLayer[];

  constructor(
    specs: RefLayerSpec[],
    readonly inputShape: number[],
  ) {
    this.layers = specs.map(makeLayer);
  }

  /** Every trainable tensor, in layer order (weight before bias). */
  params(): RefParam[] {
    return this.layers.flatMap((l) => l.params);
  }

  /** Non-trainable state in layer order (running_mean before running_var). */
  buffers(): HostTensor[] {
    return this.layers.flatMap((l) => l.buffers);
  }

  /** Logits [B, classes] for a batch x [B, ...inputShape]; `train` picks batch or running statistics. */
  forward(x: Float32Array, B: number, train: boolean): HostTensor {
    let h = hostTensor([B, ...this.inputShape], x);
    for (const l of this.layers) h = l.forward(h, train);
    return h;
  }

  /** One training step on a batch: returns the mean loss; updates parameters and buffers in place. */
  trainStep(x: Float32Array, labels: Float32Array, B: number, opt: RefOptimizer, step: number): number {
    const logits = this.forward(x, B, true);
    const losses = new Float32Array(B);
    const dlogits = hostTensor(logits.shape);
    softmaxCrossEntropy(logits.data, labels, losses, dlogits.data, new Float32Array(B));
    let dh: HostTensor | null = dlogits;
    for (let i = this.layers.length - 1; i >= 0 && dh; i--) dh = this.layers[i].backward(dh, i > 0);
    for (const p of this.params()) update(p, opt, step);
    return losses.reduce((a, v) => a + v, 0) / B;
  }
}

function update(p: RefParam, opt: RefOptimizer, step: number): void {
  const wd = p.decay ? (opt.weightDecay ?? 0) : 0;
  if (opt.kind === 'sgd') sgdUpdate(p.value, p.grad, p.state[0], { lr: opt.lr, momentum: opt.momentum, nesterov: opt.nesterov ?? false, weightDecay: wd });
  else adamUpdate(p.value, p.grad, p.state[0], p.state[1], { lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: wd, decoupled: opt.kind === 'adamw', step: step + 1 });
}
