// CPU reference for the matmul family (shaders/matmul.wgsl, shaders/matmul_quad.wgsl) and the bias
// gradient (shaders/bias_grad.wgsl): plain loops with float64 accumulation, the same names and
// argument order as src/kernels/matmul.ts (minus the engine; the 2-D functions take flat arrays
// plus the sizes M, N, K, the batched ones HostTensors, whose shapes carry the sizes).
import type { Activation } from '../ops/activation.ts';
import { batchedMatmulGeometry, type TransposeOptions } from '../ops/matmul.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { activate } from './activation.ts';
import { store, type HostTensor } from './host.ts';

export interface MatmulOptions {
  /** A is stored [K, M] and used transposed. */
  transA?: boolean;
  /** B is stored [N, K] and used transposed. */
  transB?: boolean;
  /** [N], added to every row before the activation. */
  bias?: ArrayLike<number>;
  activation?: Activation;
  /** LeakyReLU slope, default 0.01. */
  alpha?: number;
  /** C = C + act(op(A)·op(B) + bias) instead of overwriting C. */
  accumulate?: boolean;
}

/**
 * C[M, N] = act(op(A) · op(B) + bias), with op(A) = A [M, K] or Aᵀ for A stored [K, M] (transA),
 * and op(B) = B [K, N] or Bᵀ for B stored [N, K] (transB).
 */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, c: Float32Array | Float64Array, M: number, N: number, K: number, opts: MatmulOptions = {}): void {
  const { transA = false, transB = false, bias, activation, alpha = 0.01, accumulate = false } = opts;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = transA ? a[k * M + m] : a[m * K + k];
        const bv = transB ? b[n * K + k] : b[k * N + n];
        s += av * bv;
      }
      if (bias) s += bias[n];
      store(c, m * N + n, activation ? activate(activation, s, alpha) : s, accumulate);
    }
  }
}

/** db[N] = column sums of dy[M, N]: the gradient of a bias added to every row (db += with accumulate). */
export function biasGrad(dy: ArrayLike<number>, db: Float32Array | Float64Array, M: number, N: number, opts: AccumulateOptions = {}): void {
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let m = 0; m < M; m++) s += dy[m * N + n];
    store(db, n, s, opts.accumulate);
  }
}

/**
 * C[g] = op(A[g]) · op(B[g]) for every g (C[g] += with accumulate). a [G, M, K] (or [G, K, M] with
 * transA), b [G, K, N] (or [G, N, K] with transB), c [G, M, N]; a 2-D a or b is the same matrix for
 * every g.
 */
export function batchedMatmul(a: HostTensor, b: HostTensor, c: HostTensor, opts: TransposeOptions & AccumulateOptions = {}): void {
  const { G, M, N, K, aBatched, bBatched } = batchedMatmulGeometry('Reference batchedMatmul', a, b, c, opts);
  for (let g = 0; g < G; g++) {
    const ag = aBatched ? a.data.subarray(g * M * K, (g + 1) * M * K) : a.data;
    const bg = bBatched ? b.data.subarray(g * K * N, (g + 1) * K * N) : b.data;
    matmul(ag, bg, c.data.subarray(g * M * N, (g + 1) * M * N), M, N, K, opts);
  }
}

/**
 * Gradients of C = op(A[g]) · op(B[g]) over a batch, given dC [G, M, N]: per g the formulas of
 * `matmulBackward`; a 2-D (shared) operand's gradient is the sum over g. da and db have a's and b's
 * shapes; with accumulate they are added to.
 */
export function batchedMatmulBackward(a: HostTensor, b: HostTensor, dc: HostTensor, da: HostTensor, db: HostTensor, opts: TransposeOptions & AccumulateOptions = {}): void {
  const { G, M, N, K, aBatched, bBatched } = batchedMatmulGeometry('Reference batchedMatmulBackward', a, b, dc, opts);
  const gda = new Float64Array(da.data.length);
  const gdb = new Float64Array(db.data.length);
  for (let g = 0; g < G; g++) {
    const ag = aBatched ? a.data.subarray(g * M * K, (g + 1) * M * K) : a.data;
    const bg = bBatched ? b.data.subarray(g * K * N, (g + 1) * K * N) : b.data;
    const dcg = dc.data.subarray(g * M * N, (g + 1) * M * N);
    const dag = aBatched ? gda.subarray(g * M * K, (g + 1) * M * K) : new Float64Array(M * K);
    const dbg = bBatched ? gdb.subarray(g * K * N, (g + 1) * K * N) : new Float64Array(K * N);
    matmulBackward(ag, bg, dcg, dag, dbg, null, M, N, K, opts);
    if (!aBatched) dag.forEach((v, i) => (gda[i] += v));
    if (!bBatched) dbg.forEach((v, i) => (gdb[i] += v));
  }
  gda.forEach((v, i) => store(da.data, i, v, opts.accumulate));
  gdb.forEach((v, i) => store(db.data, i, v, opts.accumulate));
}

/**
 * Gradients of C = op(A) · op(B) + bias (no activation: that is the activation kernel's backward),
 * given dC [M, N], written into da (A's stored shape), db (B's stored shape) and dbias [N]:
 *
 *   d op(A) = dC · op(B)ᵀ      d op(B) = op(A)ᵀ · dC      dbias = column sums of dC
 *
 * Each is the same matmul with transposes, which is how layers call the GPU kernels; e.g. the
 * Dense layer's y = x·Wᵀ + b (W stored [out, in], transB) gives dx = dy·W and dW = dyᵀ·x.
 */
export function matmulBackward(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dc: ArrayLike<number>,
  da: Float32Array | Float64Array,
  db: Float32Array | Float64Array,
  dbias: Float32Array | Float64Array | null,
  M: number,
  N: number,
  K: number,
  opts: { transA?: boolean; transB?: boolean } = {},
): void {
  const { transA = false, transB = false } = opts;
  // op(A) is [M, K]. Stored [M, K]: dA = dC · op(B)ᵀ. Stored [K, M]: dA = (dC · op(B)ᵀ)ᵀ = op(B) · dCᵀ.
  if (!transA) matmul(dc, b, da, M, K, N, { transB: !transB });
  else matmul(b, dc, da, K, M, N, { transA: transB, transB: true });
  // op(B) is [K, N]. Stored [K, N]: dB = op(A)ᵀ · dC. Stored [N, K]: dB = dCᵀ · op(A).
  if (!transB) matmul(a, dc, db, K, N, M, { transA: !transA });
  else matmul(dc, a, db, N, K, M, { transA: true, transB: transA });
  if (dbias) biasGrad(dc, dbias, M, N);
}
