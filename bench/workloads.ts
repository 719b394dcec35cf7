// The workloads, identical in every library: square and MLP-shaped matmuls, the MLP and the CNN
// that each library trains, and seeded inputs and initial weights (so that every library's
// losses can be compared).
import { Rng } from '../src/util/random.ts';
import type { Library } from './common.ts';

/** C[M,N] = op(A)·op(B), with op a transpose when the flag is set (A is [K,M] under transA, B is [N,K] under transB). */
export interface MatmulShape {
  benchmark: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

/** The MLP every library trains: 784-512-256-10, ReLU, batch 128, plain SGD. */
export const MLP = { layers: [784, 512, 256, 10], batch: 128, lr: 0.01, seed: 1234 } as const;

/**
 * The CNN every library trains, as our 'cnn' preset builds it: two blocks of Conv(3x3, pad 1,
 * bias) - ReLU - MaxPool(2) - BatchNorm (batch statistics) with 16 and 32 channels, then
 * Flatten - Dense(128) - ReLU - Dense(10); [1, 28, 28] inputs, batch 64, plain SGD.
 */
export const CNN = { preset: 'cnn', inputShape: [1, 28, 28] as number[], channels: [16, 32], hidden: 128, classes: 10, batch: 64, lr: 0.01, seed: 4321 } as const;

/** One synthetic CNN batch: pixels in [0, 1) ([batch, 1, 28, 28], the same values in NHWC since C = 1), labels in [0, 10). */
export function cnnBatch(): { x: Float32Array; labels: Int32Array } {
  const x = uniform(CNN.batch * 28 * 28, CNN.seed + 1, 0, 1);
  const r = new Rng(CNN.seed + 2);
  const labels = Int32Array.from({ length: CNN.batch }, () => r.int(CNN.classes));
  return { x, labels };
}
/**
 * Square matmuls for the given sizes, then the MLP's own products as that library's MLP issues
 * them: our Dense stores W as [out, in] (forward x·Wᵀ); TF.js and jax-js users store [in, out]
 * (forward x·W), which moves the transposes into their backward pass. Same shapes and FLOPs.
 */
export function matmulShapes(sizes: number[], library: Library): MatmulShape[] {
  const [d0, d1, d2, d3] = MLP.layers;
  const B = MLP.batch;
  const ours = library === 'ours';
  const mm = (benchmark: string, M: number, N: number, K: number, transA = false, transB = false): MatmulShape => ({ benchmark, M, N, K, transA, transB });
  return [
    ...sizes.map((n) => mm(`matmul-${n}`, n, n, n)),
    mm('matmul-mlp-fwd1', B, d1, d0, false, ours),
    mm('matmul-mlp-fwd2', B, d2, d1, false, ours),
    mm('matmul-mlp-fwd3', B, d3, d2, false, ours),
    // Backward of layer 2: dx = dz·W (ours) or dz·Wᵀ (peers).
    mm('matmul-mlp-bwd2-dx', B, d1, d2, false, !ours),
    // Backward of layer 1: dW = dzᵀ·x (ours, [out, in]) or xᵀ·dz (peers, [in, out]): the largest backward product.
    ours ? mm('matmul-mlp-bwd1-dw', d1, d0, B, true) : mm('matmul-mlp-bwd1-dw', d0, d1, B, true),
  ];
}

/** How a shape reads, for the JSON (e.g. "128x784 · (512x784)ᵀ"). */
export function describeShape(s: MatmulShape): string {
  const { a, b } = operandShapes(s);
  return `${s.transA ? `(${a.join('x')})ᵀ` : a.join('x')} · ${s.transB ? `(${b.join('x')})ᵀ` : b.join('x')}`;
}

export function matmulFlops(s: MatmulShape): number {
  return 2 * s.M * s.N * s.K;
}

/** Shapes of A and B as stored for a matmul shape. */
export function operandShapes(s: MatmulShape): { a: [number, number]; b: [number, number] } {
  return { a: s.transA ? [s.K, s.M] : [s.M, s.K], b: s.transB ? [s.N, s.K] : [s.K, s.N] };
}
// ---- seeded inputs, the same in every library ---------------------------------------------------

export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r.uniform(lo, hi);
  return out;
}

/** MLP weights in [in, out] layout (TF.js and jax-js); Glorot uniform, zero biases. */
export interface MlpWeights {
  /** w[i]: [layers[i], layers[i+1]] row-major. */
  w: Float32Array[];
  b: Float32Array[];
}

export function mlpWeights(): MlpWeights {
  const w: Float32Array[] = [];
  const b: Float32Array[] = [];
  for (let i = 0; i + 1 < MLP.layers.length; i++) {
    const nIn = MLP.layers[i];
    const nOut = MLP.layers[i + 1];
    const lim = Math.sqrt(6 / (nIn + nOut));
    w.push(uniform(nIn * nOut, MLP.seed + i, -lim, lim));
    b.push(new Float32Array(nOut));
  }
  return { w, b };
}

/** [in, out] row-major to [out, in] row-major (our Dense layout). */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** One synthetic batch: pixels in [0, 1), labels in [0, 10). */
export function mlpBatch(): { x: Float32Array; labels: Int32Array } {
  const x = uniform(MLP.batch * MLP.layers[0], MLP.seed + 100, 0, 1);
  const r = new Rng(MLP.seed + 200);
  const labels = new Int32Array(MLP.batch);
  for (let i = 0; i < labels.length; i++) labels[i] = r.int(MLP.layers[MLP.layers.length - 1]);
  return { x, labels };
}
