// Batch normalisation's options and shape rules, shared by the kernels, the layer and the CPU reference.
import { describe, expectShape, type Shaped } from './shape.ts';

export interface BatchNormTrainOptions {
  /** Added to the variance before the square root; PyTorch's default is 1e-5. */
  eps: number;
  /** Weight of the batch statistics in the running averages; PyTorch's default is 0.1. */
  momentum: number;
  /** A ReLU after the normalisation, fused: y = max(0, normalised). */
  relu?: boolean;
}

export interface BatchNormEvalOptions {
  eps: number;
  /** A ReLU after the normalisation, fused. */
  relu?: boolean;
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
