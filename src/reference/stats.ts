// CPU reference for shaders/stats.wgsl: the statistics of one tensor in float64, plain loops, as
// src/ops/stats.ts defines them. Same name as the kernel wrapper (src/kernels/stats.ts).
import { histogramBin, STAT_RECORD, STAT_SLOTS } from '../ops/stats.ts';

export interface TensorStatsResult {
  /** The record, laid out as the kernel writes it (STAT_SLOTS). */
  record: Float64Array;
  /** `bins` counts over [min, max] of the finite values; empty with bins 0. */
  histogram: number[];
}

const finite = (v: number) => Number.isFinite(v);

/**
 * The record and histogram of x: figures over its finite values, non-finite ones counted apart;
 * with `prev` (a copy of x from before an update), also ||x - prev|| and ||prev||.
 */
export function tensorStats(x: ArrayLike<number>, opts: { bins: number; prev?: ArrayLike<number> }): TensorStatsResult {
  const r = new Float64Array(STAT_RECORD);
  let count = 0;
  let sum = 0;
  let lo = Infinity;
  let hi = -Infinity;
  let nonPositive = 0;
  let nonFinite = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!finite(v)) {
      nonFinite++;
      continue;
    }
    count++;
    sum += v;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
    if (v <= 0) nonPositive++;
  }
  const mean = count ? sum / count : 0;
  let m2 = 0;
  let sq = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!finite(v)) continue;
    m2 += (v - mean) * (v - mean);
    sq += v * v;
  }
  r[STAT_SLOTS.count] = count;
  r[STAT_SLOTS.mean] = mean;
  r[STAT_SLOTS.std] = count ? Math.sqrt(m2 / count) : 0;
  r[STAT_SLOTS.min] = count ? lo : 0;
  r[STAT_SLOTS.max] = count ? hi : 0;
  r[STAT_SLOTS.norm] = Math.sqrt(sq);
  r[STAT_SLOTS.nonPositive] = nonPositive;
  r[STAT_SLOTS.nonFinite] = nonFinite;
  if (opts.prev) {
    let dsq = 0;
    let psq = 0;
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - opts.prev[i];
      dsq += d * d;
      psq += opts.prev[i] * opts.prev[i];
    }
    r[STAT_SLOTS.deltaNorm] = Math.sqrt(dsq);
    r[STAT_SLOTS.prevNorm] = Math.sqrt(psq);
  }
  const histogram = new Array<number>(opts.bins).fill(0);
  if (opts.bins && count) {
    for (let i = 0; i < x.length; i++) if (finite(x[i])) histogram[histogramBin(x[i], lo, hi, opts.bins)]++;
  }
  return { record: r, histogram };
}
