// CPU reference training of a dense network (Dense layers with activations, softmax
// cross-entropy, SGD or Adam), built from the reference kernels with the same formulas the GPU
// path uses. Tests train the same network from the same weights on both and compare step by step.
import type { Activation } from '../ops/activation.ts';
import { activationBackward, activationForward } from './activation.ts';
import { softmaxCrossEntropy } from './loss.ts';
import { biasGrad, matmul } from './matmul.ts';
import { adamUpdate, sgdUpdate } from './optim.ts';

export interface RefDense {
  w: Float32Array; // [out, in]
  b: Float32Array; // [out]
  nIn: number;
  nOut: number;
  /** Activation after this layer (none for the output layer). */
  act: Activation | null;
  /** Optimizer state per tensor. */
  state: { w: Float32Array[]; b: Float32Array[] };
}

export type RefOptimizer =
  | { kind: 'sgd'; lr: number; momentum: number; nesterov?: boolean; weightDecay?: number }
  | { kind: 'adam' | 'adamw'; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };

export function refDense(w: Float32Array, b: Float32Array, nIn: number, nOut: number, act: Activation | null): RefDense {
  const z = () => [new Float32Array(w.length), new Float32Array(w.length)];
  const zb = () => [new Float32Array(b.length), new Float32Array(b.length)];
  return { w: Float32Array.from(w), b: Float32Array.from(b), nIn, nOut, act, state: { w: z(), b: zb() } };
}

/** One training step on a batch: returns the mean loss; updates the layers in place. */
export function refTrainStep(layers: RefDense[], x: Float32Array, labels: Float32Array, B: number, opt: RefOptimizer, step: number): number {
  const inputs: Float32Array[] = [];
  const pre: Float32Array[] = [];
  let h = x;
  for (const l of layers) {
    inputs.push(h);
    const z = new Float32Array(B * l.nOut);
    matmul(h, l.w, z, B, l.nOut, l.nIn, { transB: true, bias: l.b });
    pre.push(z);
    if (l.act) {
      const y = new Float32Array(z.length);
      activationForward(l.act, z, y);
      h = y;
    } else h = z;
  }
  const C = layers[layers.length - 1].nOut;
  const losses = new Float32Array(B);
  const dlogits = new Float32Array(B * C);
  softmaxCrossEntropy(h, labels, losses, dlogits, new Float32Array(B));
  let dh: Float32Array = dlogits;
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i];
    let dz = dh;
    if (l.act) {
      dz = new Float32Array(dh.length);
      activationBackward(l.act, pre[i], dh, dz);
    }
    const dw = new Float32Array(l.w.length);
    const db = new Float32Array(l.b.length);
    matmul(dz, inputs[i], dw, l.nOut, l.nIn, B, { transA: true });
    biasGrad(dz, db, B, l.nOut);
    if (i > 0) {
      const dx = new Float32Array(B * l.nIn);
      matmul(dz, l.w, dx, B, l.nIn, l.nOut);
      dh = dx;
    }
    update(l.w, dw, l.state.w, opt, step, true);
    update(l.b, db, l.state.b, opt, step, false);
  }
  return losses.reduce((a, v) => a + v, 0) / B;
}

function update(w: Float32Array, g: Float32Array, s: Float32Array[], opt: RefOptimizer, step: number, decay: boolean): void {
  const wd = decay ? (opt.weightDecay ?? 0) : 0;
  if (opt.kind === 'sgd') sgdUpdate(w, g, s[0], { lr: opt.lr, momentum: opt.momentum, nesterov: opt.nesterov ?? false, weightDecay: wd });
  else adamUpdate(w, g, s[0], s[1], { lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: wd, decoupled: opt.kind === 'adamw', step: step + 1 });
}
