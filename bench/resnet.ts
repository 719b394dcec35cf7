// ResNet-20 written in each peer's own API, as that library's user would write it, from the shared
// definition in bench/nets.ts (our `resnet` preset, src/nn/resnet.ts): a 3x3 stem without bias,
// BatchNorm on batch statistics, ReLU; three stages of three basic blocks (conv3x3-BN-ReLU-
// conv3x3-BN plus the shortcut, identity or a 1x1 stride-2 conv + BN, then ReLU); global average
// pooling; Dense(10). Every 3x3 convolution pads 1 on each side as ours does (TF.js's and jax's
// 'SAME' would pad a stride-2 convolution on one side only). Each returns a training step (plain
// SGD, softmax cross-entropy, mean over the batch) that resolves to the loss read back.
import type * as tfc from '@tensorflow/tfjs-core';
import type { Array as JArray } from '@jax-js/jax';
import { initialWeights, nchwToNhwc, netBatch, peerWeights, RESNET, resnetBlocks, resnetParams } from './nets.ts';
import { jaxSgdStep, tfjsSgdStep, type PeerStep } from './peer-net.ts';

type TF = typeof import('@tensorflow/tfjs-core');
type Jax = typeof import('@jax-js/jax');

const BN_EPS = 1e-5;

/** ResNet-20 in TF.js: NHWC images, kernels [KH, KW, IC, OC], Dense [in, out]; optimizer.minimize. */
export function tfjsResnet(tf: TF): PeerStep {
  const specs = resnetParams();
  const weights = peerWeights(specs, initialWeights(specs, RESNET.seed), 'HWIO');
  const vars = new Map([...weights].map(([name, w]) => [name, tf.variable(tf.tensor(w.data, w.shape), true, name)]));
  const p = (name: string) => vars.get(name)!;
  const B = RESNET.batch;
  const [C, H, W] = RESNET.inputShape;
  const { x, labels } = netBatch(RESNET);
  const xs = tf.tensor4d(nchwToNhwc(x, [B, C, H, W]), [B, H, W, C]);
  const ys = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), RESNET.classes), 'float32'));

  const conv = (h: tfc.Tensor4D, name: string, stride: number): tfc.Tensor4D => {
    const k = p(name).shape[0];
    return tf.conv2d(h, p(name) as tfc.Tensor4D, stride, k === 3 ? 1 : 'valid');
  };
  const bn = (h: tfc.Tensor4D, path: string): tfc.Tensor4D => {
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    return tf.batchNorm4d(h, mean as tfc.Tensor1D, variance as tfc.Tensor1D, p(`${path}.bias`) as tfc.Tensor1D, p(`${path}.weight`) as tfc.Tensor1D, BN_EPS);
  };
  const block = (h: tfc.Tensor4D, { i, cin, cout, stride }: { i: number; cin: number; cout: number; stride: number }): tfc.Tensor4D => {
    const y = bn(conv(tf.relu(bn(conv(h, `blocks.${i}.conv1.weight`, stride), `blocks.${i}.bn1`)), `blocks.${i}.conv2.weight`, 1), `blocks.${i}.bn2`);
    const skip = cin !== cout || stride !== 1 ? bn(conv(h, `blocks.${i}.shortcut.0.weight`, stride), `blocks.${i}.shortcut.1`) : h;
    return tf.relu(tf.add(y, skip)) as tfc.Tensor4D;
  };
  const lossFn = (): tfc.Scalar => {
    let h = tf.relu(bn(conv(xs, 'stem.weight', 1), 'bn'));
    for (const b of resnetBlocks()) h = block(h, b);
    const logits = tf.add(tf.matMul(tf.mean(h, [1, 2]), p('head.weight')), p('head.bias'));
    return tf.losses.softmaxCrossEntropy(ys, logits) as tfc.Scalar;
  };
  return tfjsSgdStep(tf, lossFn, RESNET.lr, [...vars.values(), xs, ys]);
}

/** ResNet-20 in jax-js: NCHW and OIHW as ours, Dense [in, out]; one jit of valueAndGrad and the update. */
export function jaxResnet(jax: Jax): PeerStep {
  const { numpy: np, nn, lax } = jax;
  const specs = resnetParams();
  const weights = peerWeights(specs, initialWeights(specs, RESNET.seed), 'OIHW');
  type Params = Record<string, JArray>;
  const params: Params = Object.fromEntries([...weights].map(([name, w]) => [name, np.array(w.data).reshape(w.shape)]));
  const B = RESNET.batch;
  const { x: xHost, labels } = netBatch(RESNET);
  const x = np.array(xHost).reshape([B, ...RESNET.inputShape]);
  const y = np.array(labels, { dtype: np.int32 });

  const conv = (h: JArray, w: JArray, stride: number): JArray =>
    lax.convGeneralDilated(
      h,
      w,
      [stride, stride],
      w.shape[2] === 3
        ? [
            [1, 1],
            [1, 1],
          ]
        : 'VALID',
    );
  const bn = (h: JArray, g: JArray, b: JArray): JArray => {
    const perChannel = (t: JArray) => t.reshape([1, t.shape[0], 1, 1]);
    const centered = h.ref.sub(np.mean(h, [0, 2, 3], { keepdims: true }));
    const variance = np.mean(np.square(centered.ref), [0, 2, 3], { keepdims: true });
    return centered
      .mul(np.reciprocal(np.sqrt(variance.add(BN_EPS))))
      .mul(perChannel(g))
      .add(perChannel(b));
  };
  const loss = (p: Params, xb: JArray, yb: JArray): JArray => {
    const bnOf = (h: JArray, path: string) => bn(h, p[`${path}.weight`], p[`${path}.bias`]);
    let h = nn.relu(bnOf(conv(xb, p['stem.weight'], 1), 'bn'));
    for (const { i, cin, cout, stride } of resnetBlocks()) {
      const at = `blocks.${i}`;
      const z = bnOf(conv(nn.relu(bnOf(conv(h.ref, p[`${at}.conv1.weight`], stride), `${at}.bn1`)), p[`${at}.conv2.weight`], 1), `${at}.bn2`);
      const skip = cin !== cout || stride !== 1 ? bnOf(conv(h, p[`${at}.shortcut.0.weight`], stride), `${at}.shortcut.1`) : h;
      h = nn.relu(z.add(skip));
    }
    const logits = np.dot(np.mean(h, [2, 3]), p['head.weight']).add(p['head.bias']);
    return nn
      .logSoftmax(logits)
      .mul(nn.oneHot(yb, RESNET.classes))
      .sum()
      .mul(-1 / B);
  };
  return jaxSgdStep(jax, loss, params, x, y, RESNET.lr);
}
