// Shape rules of the batched matmul, shared by the kernel wrapper (src/kernels/matmul.ts) and the
// CPU reference (src/reference/matmul.ts).
import { describe, type Shaped } from './shape.ts';

export interface TransposeOptions {
  /** A is stored [..., K, M] and used transposed. */
  transA?: boolean;
  /** B is stored [..., N, K] and used transposed. */
  transB?: boolean;
}

/** Sizes of a batched product: G matrices C[g] = op(A[g]) · op(B[g]), each [M, N] with inner size K. */
export interface BatchedMatmulGeometry {
  G: number;
  M: number;
  N: number;
  K: number;
  /** Whether A holds one matrix per g ([G, ., .]); false: one 2-D matrix shared by every g. */
  aBatched: boolean;
  bBatched: boolean;
}

/**
 * Check a batched product and derive its sizes: a [G, M, K] (or [G, K, M] with transA), b [G, K, N]
 * (or [G, N, K] with transB), c [G, M, N]. a or b may be 2-D, meaning the same matrix for every g.
 * Errors start with `what` (the kernel's name) and name the tensors with their shapes.
 */
export function batchedMatmulGeometry(what: string, a: Shaped, b: Shaped, c: Shaped, opts: TransposeOptions = {}): BatchedMatmulGeometry {
  const operands = `${describe(a)}${opts.transA ? 'ᵀ' : ''} · ${describe(b)}${opts.transB ? 'ᵀ' : ''}`;
  const product = `${operands} into ${describe(c)}`;
  if (c.shape.length !== 3) throw new Error(`${what}: output ${describe(c)} must be 3-D [G, M, N] (in ${product}).`);
  const G = c.shape[0];
  for (const [t, name] of [
    [a, 'A'],
    [b, 'B'],
  ] as const) {
    if (t.shape.length !== 2 && t.shape.length !== 3) {
      throw new Error(`${what}: ${name} ${describe(t)} must be 3-D [G, rows, cols], or 2-D for one matrix shared by the batch (in ${product}).`);
    }
    if (t.shape.length === 3 && t.shape[0] !== G) {
      throw new Error(`${what}: ${name} ${describe(t)} holds ${t.shape[0]} matrices but the output ${describe(c)} holds ${G} (in ${product}).`);
    }
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = opts.transA ? [ac, ar] : [ar, ac];
  const [K2, N] = opts.transB ? [bc, br] : [br, bc];
  if (K !== K2) throw new Error(`${what}: inner dimensions differ (${K} and ${K2}) in ${product}.`);
  if (c.shape[1] !== M || c.shape[2] !== N) throw new Error(`${what}: output ${describe(c)} must be [${G}, ${M}, ${N}] for ${operands}.`);
  return { G, M, N, K, aBatched: a.shape.length === 3, bBatched: b.shape.length === 3 };
}
