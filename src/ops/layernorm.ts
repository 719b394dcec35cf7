// Layer normalisation's options and shape rules, shared by the kernels (src/kernels/layernorm.ts),
// the layer and the CPU reference (src/reference/layernorm.ts).
import { describe, expectShape, type Shaped } from './shape.ts';

export interface LayerNormOptions {
  /** Added to the variance before the square root; PyTorch's default is 1e-5. */
  eps: number;
}

/** Sizes of a layer-norm problem: x is `rows` rows of `cols` values (cols = x's last dimension). */
export interface LayerNormGeometry {
  rows: number;
  cols: number;
}

/**
 * Check x [..., D] (rank >= 1), every per-column tensor [D], every per-row tensor [R] or x's
 * leading dimensions (x [B, T, D]: [B*T] or [B, T]), and every full tensor x's shape.
 */
export function layerNormGeometry(what: string, x: Shaped, perColumn: Shaped[], perRow: Shaped[], full: Shaped[]): LayerNormGeometry {
  if (x.shape.length < 1) throw new Error(`${what}: ${describe(x)} must have rank >= 1 (normalised over its last dimension).`);
  const cols = x.shape[x.shape.length - 1];
  const leading = x.shape.slice(0, -1);
  const rows = leading.reduce((a, b) => a * b, 1);
  for (const t of perColumn) expectShape(what, t, [cols], `(one value per column of ${describe(x)})`);
  for (const t of perRow) {
    const flat = t.shape.length === 1 && t.shape[0] === rows;
    const asLeading = leading.length > 1 && t.shape.length === leading.length && t.shape.every((d, i) => d === leading[i]);
    if (!flat && !asLeading) {
      const alt = leading.length > 1 ? ` or [${leading.join(', ')}]` : '';
      throw new Error(`${what}: ${describe(t)} should be [${rows}]${alt} (one value per row of ${describe(x)}).`);
    }
  }
  for (const t of full) expectShape(what, t, x.shape, `(the shape of ${describe(x)})`);
  return { rows, cols };
}

/** eps must be a finite number >= 0. */
export function checkLayerNormEps(what: string, eps: number): void {
  if (!(eps >= 0 && Number.isFinite(eps))) throw new Error(`${what}: eps must be a finite number >= 0 (got ${eps}).`);
}
