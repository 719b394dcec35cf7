// CPU reference for the fused multi-head attention op (src/nn/functional.ts `attention`): plain
// loops, the spec its strided products and scaled softmax are tested against. Per sample, qkv is
// [T, 3D] (q, k, v side by side, each D = heads x dh wide, head h in columns h*dh .. h*dh+dh-1);
// the output is [T, D]; P, the attention weights [heads, T, T], is kept for the backward pass.
import { store, type Floats } from './host.ts';
import { scaledSoftmaxBackward, scaledSoftmaxForward } from './softmax.ts';

/** Sizes of an attention over `batch` samples of `tokens` x 3 * width values, in `heads` heads. */
export interface AttentionSizes {
  batch: number;
  tokens: number;
  width: number;
  heads: number;
  /** Applied to q·kᵀ inside the softmax (1/sqrt(dh) for scaled dot-product attention). */
  scale: number;
}

/** qkv[b, t, part * D + h * dh + j]. */
const at = (z: AttentionSizes, b: number, t: number, part: number, h: number, j: number) => (b * z.tokens + t) * 3 * z.width + part * z.width + h * (z.width / z.heads) + j;

/** out [B, T, D] = softmax(scale · q kᵀ) v per head, with P [B, H, T, T] the softmax's output. */
export function attentionForward(qkv: ArrayLike<number>, out: Floats, P: Floats, z: AttentionSizes): void {
  const { batch: B, tokens: T, width: D, heads: H } = z;
  const dh = D / H;
  const S = new Float64Array(T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        for (let s = 0; s < T; s++) {
          let v = 0;
          for (let j = 0; j < dh; j++) v += qkv[at(z, b, t, 0, h, j)] * qkv[at(z, b, s, 1, h, j)];
          S[t * T + s] = v;
        }
      }
      const p = P.subarray((b * H + h) * T * T, (b * H + h + 1) * T * T);
      scaledSoftmaxForward(S, p, z.scale, T);
      for (let t = 0; t < T; t++) {
        for (let j = 0; j < dh; j++) {
          let v = 0;
          for (let s = 0; s < T; s++) v += p[t * T + s] * qkv[at(z, b, s, 2, h, j)];
          out[(b * T + t) * D + h * dh + j] = v;
        }
      }
    }
  }
}

/** dqkv [B, T, 3D] (+= with accumulate) from dOut [B, T, D], given the forward's qkv and P. */
export function attentionBackward(qkv: ArrayLike<number>, P: ArrayLike<number>, dOut: ArrayLike<number>, dqkv: Floats, z: AttentionSizes, opts: { accumulate?: boolean } = {}): void {
  const { batch: B, tokens: T, width: D, heads: H } = z;
  const dh = D / H;
  const dP = new Float64Array(T * T);
  const dS = new Float64Array(T * T);
  const g = new Float64Array(dqkv.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const p = (t: number, s: number) => P[(b * H + h) * T * T + t * T + s];
      const dO = (t: number, j: number) => dOut[(b * T + t) * D + h * dh + j];
      for (let t = 0; t < T; t++) {
        for (let s = 0; s < T; s++) {
          let v = 0;
          for (let j = 0; j < dh; j++) v += dO(t, j) * qkv[at(z, b, s, 2, h, j)];
          dP[t * T + s] = v;
        }
      }
      const ph = Float64Array.from({ length: T * T }, (_, i) => p(Math.floor(i / T), i % T));
      scaledSoftmaxBackward(ph, dP, dS, z.scale, T);
      for (let t = 0; t < T; t++) {
        for (let j = 0; j < dh; j++) {
          let dq = 0;
          let dk = 0;
          let dv = 0;
          for (let s = 0; s < T; s++) {
            dq += dS[t * T + s] * qkv[at(z, b, s, 1, h, j)];
            dk += dS[s * T + t] * qkv[at(z, b, s, 0, h, j)];
            dv += p(s, t) * dO(s, j);
          }
          g[at(z, b, t, 0, h, j)] = dq;
          g[at(z, b, t, 1, h, j)] = dk;
          g[at(z, b, t, 2, h, j)] = dv;
        }
      }
    }
  }
  for (let i = 0; i < g.length; i++) store(dqkv, i, g[i], opts.accumulate);
}
