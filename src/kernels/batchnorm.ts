// Batch normalisation kernels (shaders/batchnorm.wgsl): per-channel statistics over [B, C, ...]
// tensors (BatchNorm2d on NCHW), as validated, replayable dispatches. Reductions are fixed-order
// trees inside one workgroup per channel: deterministic.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { batchNormGeometry, checkTrainable, type BatchNormEvalOptions, type BatchNormGeometry, type BatchNormTrainOptions } from '../ops/batchnorm.ts';
import { withAccumulate } from './accumulate.ts';

export type { BatchNormEvalOptions, BatchNormTrainOptions } from '../ops/batchnorm.ts';

/** Invocations per workgroup: WG in the shader. */
const WG = 64;

function bnParams(g: BatchNormGeometry, eps: number, momentum = 0): Record<string, number> {
  return { batch: g.batch, channels: g.channels, hw: g.hw, eps, momentum };
}

function checkEps(what: string, eps: number): void {
  if (!(eps >= 0 && Number.isFinite(eps))) throw new Error(`${what}: eps must be a finite number >= 0 (got ${eps}).`);
}

/** The statistics the training forward saves for backward: [2C], means then inverse deviations. */
function checkSaved(what: string, saved: Tensor, channels: number): void {
  if (saved.size !== 2 * channels) throw new Error(`${what}: saved statistics need ${2 * channels} values (mean and invstd of ${channels} channels), got a tensor of [${saved.shape.join(', ')}].`);
}

/**
 * Training forward with batch statistics. x, y [B, C, ...]; gamma, beta, runningMean, runningVar
 * [C]; saved [2C]. Writes y, and into saved the batch mean per channel, then invstd = 1/sqrt(biased
 * var + eps) per channel (for backward), and updates runningMean/runningVar in place: running = (1 - momentum) * running +
 * momentum * batch, with the unbiased variance for runningVar (PyTorch semantics).
 */
export async function batchNormForwardTrain(e: Engine, x: Tensor, gamma: Tensor, beta: Tensor, y: Tensor, saved: Tensor, runningMean: Tensor, runningVar: Tensor, opts: BatchNormTrainOptions): Promise<Dispatch> {
  const what = 'Kernel batchnorm.batch_norm_forward_train';
  const g = batchNormGeometry(what, x, [gamma, beta, runningMean, runningVar], [y]);
  checkSaved(what, saved, g.channels);
  checkTrainable(what, g, x);
  checkEps(what, opts.eps);
  if (!(opts.momentum >= 0 && opts.momentum <= 1)) throw new Error(`${what}: momentum must be in [0, 1] (got ${opts.momentum}).`);
  const k = await e.kernel('batchnorm', 'batch_norm_forward_train', opts.relu ? { RELU: 1 } : {});
  const buffers = { x, gamma, beta, y, saved, running_mean: runningMean, running_var: runningVar };
  return e.dispatch(k, buffers, grid1d(g.channels * WG, WG), bnParams(g, opts.eps, opts.momentum));
}

/** Evaluation forward: y = (x - runningMean) / sqrt(runningVar + eps) * gamma + beta, per channel. */
export async function batchNormForwardEval(e: Engine, x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, y: Tensor, opts: BatchNormEvalOptions): Promise<Dispatch> {
  const what = 'Kernel batchnorm.batch_norm_forward_eval';
  const g = batchNormGeometry(what, x, [gamma, beta, runningMean, runningVar], [y]);
  checkEps(what, opts.eps);
  const k = await e.kernel('batchnorm', 'batch_norm_forward_eval', opts.relu ? { RELU: 1 } : {});
  const buffers = { x, gamma, beta, stat_mean: runningMean, stat_var: runningVar, y };
  return e.dispatch(k, buffers, grid1d(x.size, WG), bnParams(g, opts.eps));
}

/**
 * Backward of training-mode batch norm, from the mean and invstd the forward saved ([2C]):
 * dbeta = sum dy, dgamma = sum dy * xhat, dx = gamma * invstd / N * (N dy - dbeta - xhat * dgamma),
 * with xhat = (x - mean) * invstd and N = B * H * W. dx, dgamma, dbeta are overwritten, or all three
 * added to with accumulate. With `reluOutput` (the forward output of a BatchNorm with a fused ReLU)
 * dy is first masked where that output is 0.
 */
export async function batchNormBackward(e: Engine, x: Tensor, dy: Tensor, gamma: Tensor, saved: Tensor, dx: Tensor, dgamma: Tensor, dbeta: Tensor, opts: AccumulateOptions & { reluOutput?: Tensor } = {}): Promise<Dispatch> {
  const what = 'Kernel batchnorm.batch_norm_backward';
  const g = batchNormGeometry(what, x, [gamma, dgamma, dbeta], [dy, dx, ...(opts.reluOutput ? [opts.reluOutput] : [])]);
  checkSaved(what, saved, g.channels);
  const k = await e.kernel('batchnorm', 'batch_norm_backward', withAccumulate(opts.reluOutput ? { RELU: 1 } : {}, opts));
  // Without a fused ReLU the shader never reads y_relu: dy stands in for it.
  const buffers = { x, dy, gamma, saved_stats: saved, dx, dgamma, dbeta, y_relu: opts.reluOutput ?? dy };
  return e.dispatch(k, buffers, grid1d(g.channels * WG, WG), bnParams(g, 0));
}
