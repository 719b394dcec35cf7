// CPU reference for shaders/batchnorm.wgsl: batch normalisation per channel over [B, C, ...]
// tensors (BatchNorm2d on NCHW), training forward, evaluation forward and backward, in plain
// loops with float64 sums (two passes for the variance). Same names and argument order as
// src/kernels/batchnorm.ts (minus the engine). Also home of the shape rules the wrappers share.
import { describe, expectShape, type HostTensor, type Shaped } from './conv2d.ts';

export interface BatchNormTrainOptions {
  /** Added to the variance before the square root; PyTorch's default is 1e-5. */
  eps: number;
  /** Weight of the batch statistics in the running averages; PyTorch's default is 0.1. */
  momentum: number;
}

export interface BatchNormEvalOptions {
  eps: number;
}

/** Sizes of a batch-norm problem: x is [batch, channels, ...spatial] with hw spatial values. */
export interface BatchNormGeometry {
  batch: number;
  channels: number;
  hw: number;
}

/** Check x [B, C, ...] (rank >= 2) and that every per-channel tensor is [C] and every full one has x's shape. */
export function batchNormGeometry(what: string, x: Shaped, perChannel: Shaped[], full: Shaped[]): BatchNormGeometry {
  if (x.shape.length < 2) throw new Error(`${what}: ${describe(x)} must have rank >= 2 ([B, C, ...], NCHW for BatchNorm2d).`);
  const [batch, channels] = x.shape;
  let hw = 1;
  for (const d of x.shape.slice(2)) hw *= d;
  for (const t of perChannel) expectShape(what, t, [channels], `(one per channel of ${describe(x)})`);
  for (const t of full) expectShape(what, t, x.shape, `(the shape of ${describe(x)})`);
  return { batch, channels, hw };
}

/** Training needs at least two values per channel: the running variance is unbiased (divides by N - 1). */
export function checkTrainable(what: string, g: BatchNormGeometry, x: Shaped): void {
  if (g.batch * g.hw < 2) {
    throw new Error(`${what}: ${describe(x)} has ${g.batch * g.hw} value per channel; training batch norm needs at least 2.`);
  }
}

const REF = (name: string) => `Reference ${name}`;

/**
 * y = (x - mean) * invstd * gamma + beta with the batch's per-channel mean and biased variance;
 * saves mean and invstd = 1/sqrt(var + eps) for backward, and updates the running averages
 * (running_var with the unbiased variance), as PyTorch does.
 */
export function batchNormForwardTrain(
  x: HostTensor,
  gamma: HostTensor,
  beta: HostTensor,
  y: HostTensor,
  mean: HostTensor,
  invstd: HostTensor,
  runningMean: HostTensor,
  runningVar: HostTensor,
  opts: BatchNormTrainOptions,
): void {
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
        y.data[k] = (x.data[k] - m) * inv * gamma.data[c] + beta.data[c];
      }
    }
    mean.data[c] = m;
    invstd.data[c] = inv;
    runningMean.data[c] = (1 - opts.momentum) * runningMean.data[c] + opts.momentum * m;
    runningVar.data[c] = (1 - opts.momentum) * runningVar.data[c] + (opts.momentum * v * n) / (n - 1);
  }
}

/** y = (x - runningMean) / sqrt(runningVar + eps) * gamma + beta. */
export function batchNormForwardEval(
  x: HostTensor,
  gamma: HostTensor,
  beta: HostTensor,
  runningMean: HostTensor,
  runningVar: HostTensor,
  y: HostTensor,
  opts: BatchNormEvalOptions,
): void {
  const g = batchNormGeometry(REF('batchNormForwardEval'), x, [gamma, beta, runningMean, runningVar], [y]);
  for (let k = 0; k < x.data.length; k++) {
    const c = Math.floor(k / g.hw) % g.channels;
    y.data[k] = ((x.data[k] - runningMean.data[c]) / Math.sqrt(runningVar.data[c] + opts.eps)) * gamma.data[c] + beta.data[c];
  }
}

/**
 * Gradients of training-mode batch norm (batch statistics), from the mean and invstd saved by
 * the forward pass: dbeta = sum dy, dgamma = sum dy * xhat,
 * dx = gamma * invstd / N * (N dy - dbeta - xhat * dgamma). All three are overwritten.
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
): void {
  const g = batchNormGeometry(REF('batchNormBackward'), x, [gamma, mean, invstd, dgamma, dbeta], [dy, dx]);
  const n = g.batch * g.hw;
  for (let c = 0; c < g.channels; c++) {
    const m = mean.data[c];
    const inv = invstd.data[c];
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let b = 0; b < g.batch; b++) {
      for (let i = 0; i < g.hw; i++) {
        const k = (b * g.channels + c) * g.hw + i;
        sumDy += dy.data[k];
        sumDyXhat += dy.data[k] * (x.data[k] - m) * inv;
      }
    }
    for (let b = 0; b < g.batch; b++) {
      for (let i = 0; i < g.hw; i++) {
        const k = (b * g.channels + c) * g.hw + i;
        const xhat = (x.data[k] - m) * inv;
        dx.data[k] = ((gamma.data[c] * inv) / n) * (n * dy.data[k] - sumDy - xhat * sumDyXhat);
      }
    }
    dbeta.data[c] = sumDy;
    dgamma.data[c] = sumDyXhat;
  }
}
