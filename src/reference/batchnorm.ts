// CPU reference for shaders/batchnorm.wgsl: batch normalisation per channel over [B, C, ...]
// tensors (BatchNorm2d on NCHW), training forward, evaluation forward and backward, in plain
// loops with float64 sums (two passes for the variance). Same names and argument order as
// src/kernels/batchnorm.ts (minus the engine). The shape rules live in src/ops/batchnorm.ts.
import { batchNormGeometry, checkTrainable, type BatchNormEvalOptions, type BatchNormTrainOptions } from '../ops/batchnorm.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { store, type HostTensor } from './host.ts';

const REF = (name: string) => `Reference ${name}`;

/**
 * y = (x - mean) * invstd * gamma + beta with the batch's per-channel mean and biased variance;
 * saves mean and invstd = 1/sqrt(var + eps) for backward, and updates the running averages
 * (running_var with the unbiased variance), as PyTorch does.
 */
export function batchNormForwardTrain(x: HostTensor, gamma: HostTensor, beta: HostTensor, y: HostTensor, mean: HostTensor, invstd: HostTensor, runningMean: HostTensor, runningVar: HostTensor, opts: BatchNormTrainOptions): void {
  const what = REF('batchNormForwardTrain');
  const g = batchNormGeometry(what, x, [gamma, beta, mean, invstd, runningMean, runningVar], [y]);
  checkTrainable(what, g, x);
  const n = g.batch * g.hw;
  for (let c = 0; c < g.channels; c++) {
    let s = 0;
    for (let b = 0; b < g.batch; b++) for (let i = 0; i < g.hw; i++) s += x.data[(b * g.channels + c) * g.hw + i];
    const m = s / n;
    let v = 0;
    for (let b = 0; b < g.batch; b++) {
      for (let i = 0; i < g.hw; i++) {
        const d = x.data[(b * g.channels + c) * g.hw + i] - m;
        v += d * d;
      }
    }
    v /= n;
    const inv = 1 / Math.sqrt(v + opts.eps);
    for (let b = 0; b < g.batch; b++) {
      for (let i = 0; i < g.hw; i++) {
        const k = (b * g.channels + c) * g.hw + i;
        const v = (x.data[k] - m) * inv * gamma.data[c] + beta.data[c];
        y.data[k] = opts.relu ? Math.max(v, 0) : v;
      }
    }
    mean.data[c] = m;
    invstd.data[c] = inv;
    runningMean.data[c] = (1 - opts.momentum) * runningMean.data[c] + opts.momentum * m;
    runningVar.data[c] = (1 - opts.momentum) * runningVar.data[c] + (opts.momentum * v * n) / (n - 1);
  }
}

/** y = (x - runningMean) / sqrt(runningVar + eps) * gamma + beta. */
export function batchNormForwardEval(x: HostTensor, gamma: HostTensor, beta: HostTensor, runningMean: HostTensor, runningVar: HostTensor, y: HostTensor, opts: BatchNormEvalOptions): void {
  const g = batchNormGeometry(REF('batchNormForwardEval'), x, [gamma, beta, runningMean, runningVar], [y]);
  for (let k = 0; k < x.data.length; k++) {
    const c = Math.floor(k / g.hw) % g.channels;
    const v = ((x.data[k] - runningMean.data[c]) / Math.sqrt(runningVar.data[c] + opts.eps)) * gamma.data[c] + beta.data[c];
    y.data[k] = opts.relu ? Math.max(v, 0) : v;
  }
}

/**
 * Gradients of training-mode batch norm (batch statistics), from the mean and invstd saved by
 * the forward pass: dbeta = sum dy, dgamma = sum dy * xhat,
 * dx = gamma * invstd / N * (N dy - dbeta - xhat * dgamma). All three are overwritten, or all three
 * added to with accumulate.
 */
export function batchNormBackward(
  x: HostTensor,
  dy: HostTensor,
  gamma: HostTensor,
  mean: HostTensor,
  invstd: HostTensor,
  dx: HostTensor,
  dgamma: HostTensor,
  dbeta: HostTensor,
  opts: AccumulateOptions & { reluOutput?: HostTensor } = {},
): void {
  const g = batchNormGeometry(REF('batchNormBackward'), x, [gamma, mean, invstd, dgamma, dbeta], [dy, dx]);
  const n = g.batch * g.hw;
  // A fused ReLU: its gradient, read off its output, first.
  const r = opts.reluOutput;
  const grad = (k: number) => (r && !(r.data[k] > 0) ? 0 : dy.data[k]);
  for (let c = 0; c < g.channels; c++) {
    const m = mean.data[c];
    const inv = invstd.data[c];
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let b = 0; b < g.batch; b++) {
      for (let i = 0; i < g.hw; i++) {
        const k = (b * g.channels + c) * g.hw + i;
        sumDy += grad(k);
        sumDyXhat += grad(k) * (x.data[k] - m) * inv;
      }
    }
    for (let b = 0; b < g.batch; b++) {
      for (let i = 0; i < g.hw; i++) {
        const k = (b * g.channels + c) * g.hw + i;
        const xhat = (x.data[k] - m) * inv;
        store(dx.data, k, ((gamma.data[c] * inv) / n) * (n * grad(k) - sumDy - xhat * sumDyXhat), opts.accumulate);
      }
    }
    store(dbeta.data, c, sumDy, opts.accumulate);
    store(dgamma.data, c, sumDyXhat, opts.accumulate);
  }
}
