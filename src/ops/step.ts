// Flags of the per-step values uniform (shaders/_step.wgsl), as the kernels and the references read them.

/** Bit 0 of the flags: dropout is active in this step. */
export const STEP_DROPOUT = 1;
