// Statistics of one tensor, for watching training: what a record of them holds and how values
// fall into histogram bins. The kernels (shaders/stats.wgsl through src/kernels/stats.ts), the
// recorder that reads them back (src/train/stats.ts) and the CPU reference (src/reference/stats.ts)
// all follow these rules.
//
// A record is STAT_RECORD f32 values; a histogram is `bins` u32 counts over [min, max] of the same
// record. Non-finite values (NaN, ±Inf) are counted apart and left out of everything else, so that
// one overflow shows as a count instead of turning every figure into NaN.

/** Where each figure sits in a record. */
export const STAT_SLOTS = {
  /** Finite values. */
  count: 0,
  mean: 1,
  /** Population standard deviation (divided by count, not count - 1). */
  std: 2,
  min: 3,
  max: 4,
  /** L2 norm of the finite values. */
  norm: 5,
  /** Values <= 0: the zeros of a ReLU's output, the leaky side of a LeakyReLU's. */
  nonPositive: 6,
  /** NaN and ±Inf values. */
  nonFinite: 7,
  /** ||x - prev||: the change since a saved copy (a weight's last update); 0 without one. */
  deltaNorm: 8,
  /** ||prev||: the saved copy's norm (the weight before its update); 0 without one. */
  prevNorm: 9,
} as const;

/** f32 values per record. */
export const STAT_RECORD = 10;

/** The most histogram bins a record may have (a workgroup array in the kernel). */
export const MAX_HISTOGRAM_BINS = 256;

/** Throws unless `bins` is a whole number in 1..MAX_HISTOGRAM_BINS. */
export function checkBins(what: string, bins: number): void {
  if (!Number.isInteger(bins) || bins < 1 || bins > MAX_HISTOGRAM_BINS) {
    throw new Error(`${what}: histogram bins must be a whole number from 1 to ${MAX_HISTOGRAM_BINS}, got ${bins}.`);
  }
}

/**
 * The bin of a finite value v among `bins` equal bins over [lo, hi]: floor((v - lo) · bins /
 * (hi - lo)), the last bin closed (v = hi counts in it). When hi = lo every value is in bin 0.
 */
export function histogramBin(v: number, lo: number, hi: number, bins: number): number {
  const width = hi - lo;
  if (!(width > 0)) return 0;
  const t = Math.floor((v - lo) * (bins / width));
  return Math.min(Math.max(t, 0), bins - 1);
}
