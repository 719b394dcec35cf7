// Loss planning: for one batch size, the target tensor, the fused loss+gradient dispatch, and the
// accumulation of each step's loss and correct count into a window of GPU slots that the host
// reads every few steps (never every step). The slot of a step follows the step number in the
// per-step values uniform, so nothing is written per step.
import type { BufferArg, Dispatch, Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { bceLogits, mse, softmaxCrossEntropy } from '../kernels/loss.ts';
import { sumAccumulateStep } from '../kernels/reduce.ts';

export type LossKind = 'softmax_cross_entropy' | 'mse' | 'bce_logits';
export const LOSSES: readonly LossKind[] = ['softmax_cross_entropy', 'mse', 'bce_logits'];

export interface LossPlan {
  kind: LossKind;
  /** [B] class indices (softmax CE) or [B, D] targets (MSE, BCE). */
  targets: Tensor;
  /** [2 * window]: per-step loss sums in slots [0, window), correct counts in [window, 2*window). */
  acc: Tensor;
  window: number;
  /** Loss + gradient, then accumulation into slot `step % window` (the step from the step uniform). */
  dispatches: Dispatch[];
  /** Whether accuracy is defined for this loss. */
  hasAccuracy: boolean;
  dispose(): void;
}

/** Values per sample in the target tensor. */
export function targetWidth(kind: LossKind, outputSize: number): number {
  return kind === 'softmax_cross_entropy' ? 1 : outputSize;
}

/** What a loss reads and writes of a model's plan: its prediction and that prediction's gradient. */
export interface LossTarget {
  batch: number;
  /** [batch, ...]: logits (or predictions) the loss reads. */
  prediction: Tensor;
  /** Same shape: the gradient the loss writes. */
  dPrediction: Tensor;
}

/** Settings of the loss beyond its kind. */
export interface LossOptions {
  /** Softmax cross-entropy only: the target is (1 - e) onehot + e / C. Default 0. */
  labelSmoothing?: number;
}

export async function planLoss(e: Engine, kind: LossKind, net: LossTarget, window: number, stepValues: BufferArg, opts: LossOptions = {}): Promise<LossPlan> {
  if (opts.labelSmoothing && kind !== 'softmax_cross_entropy') throw new Error(`Label smoothing applies to softmax cross-entropy, not to ${kind}.`);
  if (!LOSSES.includes(kind)) throw new Error(`Unknown loss "${kind}" (known: ${LOSSES.join(', ')}).`);
  const B = net.batch;
  const out = net.prediction;
  if (out.shape.length !== 2) throw new Error(`Loss ${kind}: the model output must be [batch, n], got [${out.shape.join(', ')}]; add a Flatten layer.`);
  const D = out.shape[1];
  const owned: Tensor[] = [];
  const t = (shape: number[], label: string) => {
    const x = e.zeros(shape, label);
    owned.push(x);
    return x;
  };
  const targets = kind === 'softmax_cross_entropy' ? t([B], 'labels') : t([B, D], 'targets');
  const losses = t([B], 'losses');
  const acc = t([2 * window], 'loss-acc');
  const dispatches: Dispatch[] = [];
  let correct: Tensor | null = null;
  if (kind === 'softmax_cross_entropy') {
    correct = t([B], 'correct');
    dispatches.push(await softmaxCrossEntropy(e, out, targets, losses, net.dPrediction, correct, { labelSmoothing: opts.labelSmoothing }));
  } else if (kind === 'bce_logits') {
    correct = t([B], 'correct');
    dispatches.push(await bceLogits(e, out, targets, losses, net.dPrediction, correct));
  } else {
    dispatches.push(await mse(e, out, targets, losses, net.dPrediction));
  }
  dispatches.push(await sumAccumulateStep(e, losses, acc, 0, window, stepValues));
  if (correct) dispatches.push(await sumAccumulateStep(e, correct, acc, window, window, stepValues));
  return {
    kind,
    targets,
    acc,
    window,
    dispatches,
    hasAccuracy: correct !== null,
    dispose() {
      dispatches.forEach((d) => d.dispose());
      owned.forEach((x) => x.dispose());
    },
  };
}
