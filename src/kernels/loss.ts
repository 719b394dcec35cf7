// Loss kernels (shaders/loss.wgsl): per-sample losses and the gradient of the mean loss in one
// dispatch. Shapes are checked here, before anything reaches the GPU.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import { shapeStr, type Tensor } from '../gpu/tensor.ts';

const WG = 64;

function tensorStr(t: Tensor): string {
  return `"${t.label}" ${shapeStr(t.shape)}`;
}

/** Throws unless `t` is 2-D; returns [rows, cols]. */
function matrix(kernel: string, t: Tensor, what: string): [number, number] {
  if (t.shape.length !== 2) throw new Error(`Kernel ${kernel}: ${tensorStr(t)} must be 2-D ${what}.`);
  return [t.shape[0], t.shape[1]];
}

/** Throws unless `a` and `b` have the same shape. */
function sameShape(kernel: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`Kernel ${kernel}: ${tensorStr(a)} and ${tensorStr(b)} must have the same shape.`);
  }
}

/** Throws unless `perRow` holds one value per row of `rows`. */
function onePerRow(kernel: string, rows: Tensor, perRow: Tensor): void {
  if (perRow.size !== rows.shape[0]) {
    throw new Error(`Kernel ${kernel}: ${tensorStr(perRow)} must hold one value per row of ${tensorStr(rows)} (${rows.shape[0]} values).`);
  }
}

/**
 * Softmax cross-entropy, mean over the batch, with label smoothing e (`labelSmoothing`, default 0):
 * the target is q = (1 - e) onehot + e / C; losses[b] = logsumexp(z_b) - q·z_b,
 * dlogits = (softmax(z) - q) / B, correct[b] = 1 when the first argmax is the label.
 * logits [B, C], labels [B] (class indices as f32), losses [B], dlogits [B, C], correct [B].
 * An invalid label (not an integer in [0, C)) gives losses[b] = NaN and a zero gradient row.
 */
export async function softmaxCrossEntropy(e: Engine, logits: Tensor, labels: Tensor, losses: Tensor, dlogits: Tensor, correct: Tensor, opts: { labelSmoothing?: number } = {}): Promise<Dispatch> {
  const smoothing = opts.labelSmoothing ?? 0;
  const name = 'loss.softmax_cross_entropy';
  if (!(smoothing >= 0 && smoothing < 1)) throw new Error(`Kernel ${name}: label smoothing ${smoothing} must be in [0, 1).`);
  const [B, C] = matrix(name, logits, '[B, C]');
  onePerRow(name, logits, labels);
  onePerRow(name, logits, losses);
  onePerRow(name, logits, correct);
  sameShape(name, logits, dlogits);
  const k = await e.kernel('loss', 'softmax_cross_entropy', { WG });
  return e.dispatch(k, { logits, labels, losses, dlogits, correct }, grid1d(B, WG), { rows: B, cols: C, smoothing });
}

/**
 * Mean squared error: losses[b] = mean_d (pred - target)^2, dpred = 2 (pred - target) / (B D).
 * pred and target [B, ...] with the same shape (D = the product of the trailing dimensions), losses [B].
 */
export async function mse(e: Engine, pred: Tensor, target: Tensor, losses: Tensor, dpred: Tensor): Promise<Dispatch> {
  const name = 'loss.mse';
  sameShape(name, pred, target);
  sameShape(name, pred, dpred);
  onePerRow(name, pred, losses);
  const B = pred.shape[0];
  const k = await e.kernel('loss', 'mse', { WG });
  return e.dispatch(k, { pred, targets: target, losses, dpred }, grid1d(B, WG), { rows: B, cols: pred.size / B, smoothing: 0 });
}

/**
 * Binary cross-entropy on logits (stable): losses[b] = mean_d [max(z,0) - z t + log(1 + e^-|z|)],
 * dlogits = (sigmoid(z) - t) / (B D), correct[b] = fraction of d where (z > 0) == (t > 0.5).
 * logits and targets [B, ...] with the same shape, losses and correct [B].
 */
export async function bceLogits(e: Engine, logits: Tensor, targets: Tensor, losses: Tensor, dlogits: Tensor, correct: Tensor): Promise<Dispatch> {
  const name = 'loss.bce_logits';
  sameShape(name, logits, targets);
  sameShape(name, logits, dlogits);
  onePerRow(name, logits, losses);
  onePerRow(name, logits, correct);
  const B = logits.shape[0];
  const k = await e.kernel('loss', 'bce_logits', { WG });
  return e.dispatch(k, { logits, targets, losses, dlogits, correct }, grid1d(B, WG), { rows: B, cols: logits.size / B, smoothing: 0 });
}
