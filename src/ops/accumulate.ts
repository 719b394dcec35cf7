// Gradient accumulation (β = 0 or 1, as in GEMM's C = α·AB + β·C): where a value has several
// consumers, its gradient is the sum of theirs, so the first writer overwrites its output and the
// others add into it. Every gradient-writing kernel and its CPU reference take this option.

export interface AccumulateOptions {
  /**
   * Add the result into what the output already holds (out = out + v) instead of overwriting it
   * (out = v, the default). Without it the kernel never reads the output.
   */
  accumulate?: boolean;
}
