// Flags of the per-step values uniform (shaders/_step.wgsl), as the kernels and the references read them.

/** Bit 0 of the flags: dropout is active in this step. */
export const STEP_DROPOUT = 1;

/**
 * The seed of a dropout layer's mask at a (0-based) training step, from the layer's own seed: what
 * the GPU derives from the step in the per-step values uniform (shaders/dropout.wgsl), in u32
 * arithmetic. A resumed run draws the same masks as an uninterrupted one.
 */
export function dropoutStepSeed(seedBase: number, step: number): number {
  return ((seedBase ^ 0x9e3779b9) + Math.imul(step + 1, 0x85ebca6b)) >>> 0;
}
