// CPU reference for shaders/loss.wgsl: plain loops in float64, same names and argument order as
// src/kernels/loss.ts (minus the engine). Row counts come from the per-sample arrays (losses has
// one value per row). Works on Float32Array and on Float64Array (for finite differences).

/** A writable array of numbers: Float32Array to mirror the GPU, Float64Array for gradient checks. */
export type Floats = Float32Array | Float64Array;

/** True when `v` is an integer class index in [0, n). */
export function isClassIndex(v: number, n: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < n;
}

/**
 * Softmax cross-entropy, mean over the batch, with label smoothing e (default 0: the target is
 * q = (1 - e) onehot + e / C). logits [B, C], labels [B] (class indices as numbers), losses [B],
 * dlogits [B, C], correct [B]. An invalid label gives losses[b] = NaN, zero gradient and
 * correct[b] = 0.
 */
export function softmaxCrossEntropy(logits: ArrayLike<number>, labels: ArrayLike<number>, losses: Floats, dlogits: Floats, correct: Floats, opts: { labelSmoothing?: number } = {}): void {
  const e = opts.labelSmoothing ?? 0;
  const B = labels.length;
  const C = logits.length / B;
  for (let b = 0; b < B; b++) {
    const base = b * C;
    let zmax = logits[base];
    let arg = 0;
    for (let c = 1; c < C; c++) {
      if (logits[base + c] > zmax) {
        zmax = logits[base + c];
        arg = c;
      }
    }
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(logits[base + c] - zmax);
    const label = labels[b];
    if (!isClassIndex(label, C)) {
      losses[b] = NaN;
      correct[b] = 0;
      for (let c = 0; c < C; c++) dlogits[base + c] = 0;
      continue;
    }
    // The smoothed target q_c = (1 - e) [c = label] + e / C; loss = logsumexp - sum_c q_c z_c.
    let qz = 0;
    for (let c = 0; c < C; c++) qz += ((c === label ? 1 - e : 0) + e / C) * (logits[base + c] - zmax);
    losses[b] = Math.log(sum) - qz;
    correct[b] = arg === label ? 1 : 0;
    for (let c = 0; c < C; c++) {
      const p = Math.exp(logits[base + c] - zmax) / sum;
      dlogits[base + c] = (p - ((c === label ? 1 - e : 0) + e / C)) / B;
    }
  }
}

/** Mean squared error. pred [B, D], target [B, D], losses [B] = mean_d (p - t)^2, dpred = 2 (p - t) / (B D). */
export function mse(pred: ArrayLike<number>, target: ArrayLike<number>, losses: Floats, dpred: Floats): void {
  const B = losses.length;
  const D = pred.length / B;
  for (let b = 0; b < B; b++) {
    let sum = 0;
    for (let d = 0; d < D; d++) {
      const i = b * D + d;
      const diff = pred[i] - target[i];
      sum += diff * diff;
      dpred[i] = (2 * diff) / (B * D);
    }
    losses[b] = sum / D;
  }
}

/**
 * Binary cross-entropy on logits. logits [B, D], targets [B, D] in [0, 1], losses [B] (mean over d),
 * dlogits = (sigmoid(z) - t) / (B D), correct [B] = fraction of d where (z > 0) == (t > 0.5).
 */
export function bceLogits(logits: ArrayLike<number>, targets: ArrayLike<number>, losses: Floats, dlogits: Floats, correct: Floats): void {
  const B = losses.length;
  const D = logits.length / B;
  for (let b = 0; b < B; b++) {
    let sum = 0;
    let hits = 0;
    for (let d = 0; d < D; d++) {
      const i = b * D + d;
      const z = logits[i];
      const t = targets[i];
      sum += Math.max(z, 0) - z * t + Math.log1p(Math.exp(-Math.abs(z)));
      // sigmoid(z) - t as (1 - t) sigmoid(z) - t sigmoid(-z), each sigmoid without cancellation.
      const ez = Math.exp(-Math.abs(z));
      const sPos = z >= 0 ? 1 / (1 + ez) : ez / (1 + ez);
      const sNeg = z >= 0 ? ez / (1 + ez) : 1 / (1 + ez);
      dlogits[i] = ((1 - t) * sPos - t * sNeg) / (B * D);
      if (z > 0 === t > 0.5) hits++;
    }
    losses[b] = sum / D;
    correct[b] = hits / D;
  }
}
