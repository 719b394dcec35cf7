// The small vision transformer written in each peer's own API from the shared definition in
// bench/nets.ts (our `vit` preset, src/nn/transformer.ts): a patch embedding (a convolution with
// kernel = stride = patch, with bias) flattened to tokens in row-major patch order, a learned
// position embedding, pre-norm blocks (LayerNorm eps 1e-5; self-attention with one qkv Dense
// whose [T, 3D] output is read as [T, 3, heads, dh], softmax(q·kᵀ/sqrt(dh))·v, a proj Dense;
// LayerNorm, Dense, GELU (tanh approximation), Dense; residual adds), a final LayerNorm, the
// mean over tokens, Dense(10). Each returns a training step (plain SGD, softmax cross-entropy).
import type * as tfc from '@tensorflow/tfjs-core';
import type { Array as JArray } from '@jax-js/jax';
import { initialWeights, nchwToNhwc, netBatch, peerWeights, VIT, vitParams } from './nets.ts';
import { jaxSgdStep, tfjsSgdStep, type PeerStep } from './peer-net.ts';

type TF = typeof import('@tensorflow/tfjs-core');
type Jax = typeof import('@jax-js/jax');

const LN_EPS = 1e-5;

/** The shapes both peers need: batch, tokens, width, heads, head width, patch grid. */
function dims() {
  const [C, H, W] = VIT.inputShape;
  const p = VIT.patch;
  return { B: VIT.batch, C, H, W, p, T: (H / p) * (W / p), D: VIT.width, heads: VIT.heads, dh: VIT.width / VIT.heads };
}

/** The ViT in TF.js: NHWC images, the patch kernel [p, p, C, D], Dense [in, out]; optimizer.minimize. */
export function tfjsVit(tf: TF): PeerStep {
  const { B, C, H, W, p, T, D, heads, dh } = dims();
  const specs = vitParams();
  const weights = peerWeights(specs, initialWeights(specs, VIT.seed), 'HWIO');
  const vars = new Map([...weights].map(([name, w]) => [name, tf.variable(tf.tensor(w.data, w.shape), true, name)]));
  const v = (name: string) => vars.get(name)!;
  const { x, labels } = netBatch(VIT);
  const xs = tf.tensor4d(nchwToNhwc(x, [B, C, H, W]), [B, H, W, C]);
  const ys = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), VIT.classes), 'float32'));

  /** Over the last axis of [B*T, D]. */
  const layerNorm = (t: tfc.Tensor, path: string): tfc.Tensor => {
    const { mean, variance } = tf.moments(t, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(t, mean), tf.rsqrt(tf.add(variance, LN_EPS))), v(`${path}.weight`)), v(`${path}.bias`));
  };
  const dense = (t: tfc.Tensor, path: string): tfc.Tensor => tf.add(tf.matMul(t as tfc.Tensor2D, v(`${path}.weight`) as tfc.Tensor2D), v(`${path}.bias`));
  const gelu = (t: tfc.Tensor): tfc.Tensor => {
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(t, tf.mul(0.044715, tf.pow(t, 3))));
    return tf.mul(tf.mul(0.5, t), tf.add(1, tf.tanh(inner)));
  };
  /** Tokens [B*T, D] in, [B*T, D] out. */
  const attention = (t: tfc.Tensor, path: string): tfc.Tensor => {
    const qkv = tf.transpose(tf.reshape(dense(t, `${path}.qkv`), [B, T, 3, heads, dh]), [2, 0, 3, 1, 4]); // [3, B, heads, T, dh]
    const [q, k, val] = tf.unstack(qkv);
    const weights = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh))); // [B, heads, T, T]
    const out = tf.transpose(tf.matMul(weights, val), [0, 2, 1, 3]); // [B, T, heads, dh]
    return dense(tf.reshape(out, [B * T, D]), `${path}.proj`);
  };
  const lossFn = (): tfc.Scalar => {
    const patches = tf.add(tf.conv2d(xs, v('patches.weight') as tfc.Tensor4D, p, 'valid'), v('patches.bias')); // [B, H/p, W/p, D]
    let t = tf.reshape(tf.add(tf.reshape(patches, [B, T, D]), v('pos')), [B * T, D]);
    for (let i = 0; i < VIT.depth; i++) {
      const at = `blocks.${i}`;
      t = tf.add(t, attention(layerNorm(t, `${at}.ln1`), `${at}.attn`));
      t = tf.add(t, dense(gelu(dense(layerNorm(t, `${at}.ln2`), `${at}.fc1`)), `${at}.fc2`));
    }
    const feature = tf.mean(tf.reshape(layerNorm(t, 'norm'), [B, T, D]), 1);
    return tf.losses.softmaxCrossEntropy(ys, dense(feature, 'head')) as tfc.Scalar;
  };
  return tfjsSgdStep(tf, lossFn, VIT.lr, [...vars.values(), xs, ys]);
}

/**
 * The ViT in jax-js: NCHW and the patch kernel [D, C, p, p] as ours, Dense [in, out]; one jit per
 * step. Attention is written with matmul and softmax: jax-js's nn.dotProductAttention goes through
 * einsum, which needs iterator helpers that Node 20 lacks.
 */
export function jaxVit(jax: Jax): PeerStep {
  const { numpy: np, nn, lax } = jax;
  const { B, C, H, W, p, T, D, heads, dh } = dims();
  const specs = vitParams();
  const weights = peerWeights(specs, initialWeights(specs, VIT.seed), 'OIHW');
  type Params = Record<string, JArray>;
  const params: Params = Object.fromEntries([...weights].map(([name, w]) => [name, np.array(w.data).reshape(w.shape)]));
  const { x: xHost, labels } = netBatch(VIT);
  const x = np.array(xHost).reshape([B, C, H, W]);
  const y = np.array(labels, { dtype: np.int32 });

  const loss = (prm: Params, xb: JArray, yb: JArray): JArray => {
    const layerNorm = (t: JArray, path: string): JArray => {
      const centered = t.ref.sub(np.mean(t, -1, { keepdims: true }));
      const variance = np.mean(np.square(centered.ref), -1, { keepdims: true });
      return centered
        .mul(np.reciprocal(np.sqrt(variance.add(LN_EPS))))
        .mul(prm[`${path}.weight`])
        .add(prm[`${path}.bias`]);
    };
    const dense = (t: JArray, path: string): JArray => np.matmul(t, prm[`${path}.weight`]).add(prm[`${path}.bias`]);
    /** Tokens [B, T, D] in and out. */
    const attention = (t: JArray, path: string): JArray => {
      const qkv = dense(t, `${path}.qkv`).reshape([B, T, 3, heads, dh]).transpose([2, 0, 3, 1, 4]); // [3, B, heads, T, dh]
      const [q, k, v] = np.split(qkv, 3, 0).map((a) => a.reshape([B, heads, T, dh]));
      const weights = nn.softmax(np.matmul(q, k.transpose([0, 1, 3, 2])).mul(1 / Math.sqrt(dh)), -1); // [B, heads, T, T]
      return dense(np.matmul(weights, v).transpose([0, 2, 1, 3]).reshape([B, T, D]), `${path}.proj`);
    };
    const patches = lax.convGeneralDilated(xb, prm['patches.weight'], [p, p], 'VALID').add(prm['patches.bias'].reshape([1, D, 1, 1])); // [B, D, H/p, W/p]
    let t = patches.reshape([B, D, T]).transpose([0, 2, 1]).add(prm.pos);
    for (let i = 0; i < VIT.depth; i++) {
      const at = `blocks.${i}`;
      t = t.ref.add(attention(layerNorm(t, `${at}.ln1`), `${at}.attn`));
      t = t.ref.add(dense(nn.gelu(dense(layerNorm(t, `${at}.ln2`), `${at}.fc1`)), `${at}.fc2`));
    }
    const logits = dense(np.mean(layerNorm(t, 'norm'), 1), 'head');
    return nn
      .logSoftmax(logits)
      .mul(nn.oneHot(yb, VIT.classes))
      .sum()
      .mul(-1 / B);
  };
  return jaxSgdStep(jax, loss, params, x, y, VIT.lr);
}
