// CPU reference for shaders/clip.wgsl: gradient clipping by global norm, in float64.

/** Scale every gradient in place by min(1, maxNorm / (norm + 1e-6)), norm the global L2 norm; returns the norm. */
export function clipByGlobalNorm(grads: (Float32Array | Float64Array)[], maxNorm: number): number {
  let sq = 0;
  for (const g of grads) for (const v of g) sq += v * v;
  const norm = Math.sqrt(sq);
  const factor = Math.min(1, maxNorm / (norm + 1e-6));
  for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= factor;
  return norm;
}
