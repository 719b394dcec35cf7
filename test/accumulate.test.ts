// Gradients that accumulate: every gradient-writing kernel of the existing families, run with
// `accumulate` into outputs pre-filled with seeded values, must end at prefill + the overwriting
// reference's result; the references' own accumulate option must agree. (The matmul family and
// bias_grad are covered in test/matmul.test.ts, the primitives in their own files.)
import { describe, expect, it } from 'vitest';
import type { Dispatch, Engine } from '../src/gpu/engine.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { ACTIVATIONS, activationBackward } from '../src/kernels/activation.ts';
import { batchNormBackward } from '../src/kernels/batchnorm.ts';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dOutputShape } from '../src/kernels/conv2d.ts';
import { dropoutBackward } from '../src/kernels/dropout.ts';
import { col2im, colShape, im2colGeometry } from '../src/kernels/im2col.ts';
import { avgPool2dBackward, globalAvgPoolBackward, maxPool2dBackward, pool2dOutputShape } from '../src/kernels/pool.ts';
import { softmaxBackward } from '../src/kernels/softmax.ts';
import type { Pool2dOptions } from '../src/ops/pooling.ts';
import * as refAct from '../src/reference/activation.ts';
import * as refBn from '../src/reference/batchnorm.ts';
import * as refConv from '../src/reference/conv2d.ts';
import * as refDrop from '../src/reference/dropout.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import * as refIm2col from '../src/reference/im2col.ts';
import * as refPool from '../src/reference/pool.ts';
import * as refSoftmax from '../src/reference/softmax.ts';
import { randomUniform } from '../src/util/random.ts';
import { expectClose, getEngine, type Tolerance } from './helpers.ts';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Inputs of a case: seeded data, on the GPU and on the host. */
function inputs(e: Engine, specs: Record<string, { shape: number[]; data?: Float32Array }>, seed: number) {
  const gpu: Record<string, Tensor> = {};
  const host: Record<string, HostTensor> = {};
  Object.entries(specs).forEach(([label, s], i) => {
    const data = s.data ?? randomUniform(size(s.shape), seed + i);
    gpu[label] = e.tensor(s.shape, data, label);
    host[label] = hostTensor(s.shape, data, label);
  });
  return { gpu, host };
}

/**
 * Pre-fill the outputs (label -> shape) with seeded values, run the kernel with accumulate, and
 * compare with prefill + the reference run without it; also check that the reference with
 * accumulate gives that same sum.
 */
async function checkAccumulate(
  e: Engine,
  name: string,
  outputs: Record<string, number[]>,
  gpu: (outs: Record<string, Tensor>) => Promise<Dispatch>,
  ref: (outs: Record<string, HostTensor>, accumulate: boolean) => void,
  tol: Tolerance = {},
): Promise<void> {
  const labels = Object.keys(outputs);
  const prefill = labels.map((l, i) => randomUniform(size(outputs[l]), 900 + i, -2, 2));
  const outs = Object.fromEntries(labels.map((l, i) => [l, e.tensor(outputs[l], prefill[i], l)]));
  e.runOnce(await gpu(outs));
  const fresh = Object.fromEntries(labels.map((l) => [l, hostTensor(outputs[l], undefined, l)]));
  for (const t of Object.values(fresh)) t.data.fill(NaN); // the overwriting reference must not read its outputs
  ref(fresh, false);
  const summed = Object.fromEntries(labels.map((l, i) => [l, hostTensor(outputs[l], prefill[i], l)]));
  ref(summed, true);
  for (const [i, l] of labels.entries()) {
    const want = prefill[i].map((p, j) => p + fresh[l].data[j]);
    expectClose(summed[l].data, want, { atol: 1e-6, rtol: 1e-6 }, `${name}: reference ${l} with accumulate`);
    expectClose(await outs[l].read(), want, tol, `${name}: ${l} with accumulate`);
    outs[l].dispose();
  }
}

function disposeAll(ts: Record<string, Tensor>): void {
  for (const t of Object.values(ts)) t.dispose();
}

describe('accumulating backward kernels: prefill + result', () => {
  it('activationBackward, every activation', async () => {
    const e = await getEngine();
    const shape = [3, 5, 7];
    const { gpu, host } = inputs(e, { x: { shape }, dy: { shape } }, 1);
    for (const act of ACTIVATIONS) {
      await checkAccumulate(
        e,
        `${act}_backward`,
        { dx: shape },
        (o) => activationBackward(e, act, gpu.x, gpu.dy, o.dx, 0.1, { accumulate: true }),
        (o, accumulate) => refAct.activationBackward(act, host.x.data, host.dy.data, o.dx.data, 0.1, { accumulate }),
      );
    }
    disposeAll(gpu);
  });

  it('conv2dBackwardInput and conv2dBackwardWeight (dw with and without db)', async () => {
    const e = await getEngine();
    const opts = { stride: [2, 1] as [number, number], padding: 1 };
    const [xShape, wShape] = [
      [3, 5, 9, 7],
      [6, 5, 3, 2],
    ];
    const yShape = conv2dOutputShape(xShape, wShape, opts);
    const { gpu, host } = inputs(e, { x: { shape: xShape }, w: { shape: wShape }, dy: { shape: yShape } }, 10);
    // Sums of up to IC*KH*KW (input) or B*OH*OW (weights) products of values in [-1, 1].
    const tol = { atol: 1e-5 * Math.sqrt(size(yShape)), rtol: 1e-4 };
    await checkAccumulate(
      e,
      'conv2d_backward_input',
      { dx: xShape },
      (o) => conv2dBackwardInput(e, gpu.dy, gpu.w, o.dx, { ...opts, accumulate: true }),
      (o, accumulate) => refConv.conv2dBackwardInput(host.dy, host.w, o.dx, { ...opts, accumulate }),
      tol,
    );
    await checkAccumulate(
      e,
      'conv2d_backward_weight_bias',
      { dw: wShape, db: [wShape[0]] },
      (o) => conv2dBackwardWeight(e, gpu.x, gpu.dy, o.dw, o.db, { ...opts, accumulate: true }),
      (o, accumulate) => refConv.conv2dBackwardWeight(host.x, host.dy, o.dw, o.db, { ...opts, accumulate }),
      tol,
    );
    await checkAccumulate(
      e,
      'conv2d_backward_weight',
      { dw: wShape },
      (o) => conv2dBackwardWeight(e, gpu.x, gpu.dy, o.dw, null, { ...opts, accumulate: true }),
      (o, accumulate) => refConv.conv2dBackwardWeight(host.x, host.dy, o.dw, null, { ...opts, accumulate }),
      tol,
    );
    disposeAll(gpu);
  });

  it('col2im', async () => {
    const e = await getEngine();
    const opts = { kernel: [3, 2] as [number, number], stride: 2, padding: 1 };
    const xShape = [2, 3, 7, 9];
    const g = im2colGeometry('test', { shape: xShape }, opts);
    const { gpu, host } = inputs(e, { dcol: { shape: colShape(g) } }, 20);
    await checkAccumulate(
      e,
      'col2im',
      { dx: xShape },
      (o) => col2im(e, gpu.dcol, o.dx, { ...opts, accumulate: true }),
      (o, accumulate) => refIm2col.col2im(host.dcol, o.dx, { ...opts, accumulate }),
    );
    disposeAll(gpu);
  });

  it('batchNormBackward: dx, dgamma and dbeta together', async () => {
    const e = await getEngine();
    const shape = [3, 5, 7, 9];
    const c = [5];
    const { gpu, host } = inputs(
      e,
      {
        x: { shape, data: randomUniform(size(shape), 30, 1, 4) },
        dy: { shape },
        gamma: { shape: c, data: randomUniform(5, 31, 0.5, 1.5) },
        mean: { shape: c, data: randomUniform(5, 32, 2, 3) },
        invstd: { shape: c, data: randomUniform(5, 33, 0.5, 2) },
      },
      34,
    );
    // The kernel reads the forward's saved statistics as one [2C] buffer: means, then invstds.
    const saved = e.tensor([2, 5], Float32Array.from([...host.mean.data, ...host.invstd.data]), 'saved');
    await checkAccumulate(
      e,
      'batch_norm_backward',
      { dx: shape, dgamma: c, dbeta: c },
      (o) => batchNormBackward(e, gpu.x, gpu.dy, gpu.gamma, saved, o.dx, o.dgamma, o.dbeta, { accumulate: true }),
      (o, accumulate) => refBn.batchNormBackward(host.x, host.dy, host.gamma, host.mean, host.invstd, o.dx, o.dgamma, o.dbeta, { accumulate }),
      // Per-channel sums of B*H*W = 189 terms enter every dx: rounding grows with their count.
      { atol: 1e-4, rtol: 1e-4 },
    );
    disposeAll(gpu);
    saved.dispose();
  });

  it('softmaxBackward (a rank-3 tensor)', async () => {
    const e = await getEngine();
    const shape = [3, 5, 7];
    const y = new Float32Array(size(shape));
    refSoftmax.softmaxForward(randomUniform(y.length, 40, -3, 3), y, 7);
    const { gpu, host } = inputs(e, { y: { shape, data: y }, dy: { shape } }, 41);
    await checkAccumulate(
      e,
      'softmax_backward',
      { dx: shape },
      (o) => softmaxBackward(e, gpu.y, gpu.dy, o.dx, { accumulate: true }),
      (o, accumulate) => refSoftmax.softmaxBackward(host.y.data, host.dy.data, o.dx.data, 7, { accumulate }),
    );
    disposeAll(gpu);
  });

  // Overlapping windows take the general max-pool backward entry, tiling ones the loop-free entry.
  const POOLS: [string, number[], Pool2dOptions][] = [
    ['overlapping windows', [2, 3, 9, 7], { kernel: 3, stride: 2, padding: 1 }],
    ['tiling windows', [2, 3, 10, 11], { kernel: [2, 3] }],
  ];
  for (const [what, xShape, opts] of POOLS) {
    it(`maxPool2dBackward and avgPool2dBackward, ${what}`, async () => {
      const e = await getEngine();
      const yShape = pool2dOutputShape(xShape, opts);
      const x = hostTensor(xShape, randomUniform(size(xShape), 50), 'x');
      const argmax = hostTensor(yShape, undefined, 'argmax');
      refPool.maxPool2dForward(x, hostTensor(yShape), argmax, opts);
      const { gpu, host } = inputs(e, { dy: { shape: yShape }, argmax: { shape: yShape, data: Float32Array.from(argmax.data) } }, 51);
      await checkAccumulate(
        e,
        `max_pool2d_backward (${what})`,
        { dx: xShape },
        (o) => maxPool2dBackward(e, gpu.dy, gpu.argmax, o.dx, { ...opts, accumulate: true }),
        (o, accumulate) => refPool.maxPool2dBackward(host.dy, host.argmax, o.dx, { ...opts, accumulate }),
      );
      await checkAccumulate(
        e,
        `avg_pool2d_backward (${what})`,
        { dx: xShape },
        (o) => avgPool2dBackward(e, gpu.dy, o.dx, { ...opts, countIncludePad: false, accumulate: true }),
        (o, accumulate) => refPool.avgPool2dBackward(host.dy, o.dx, { ...opts, countIncludePad: false, accumulate }),
      );
      disposeAll(gpu);
    });
  }

  it('globalAvgPoolBackward and dropoutBackward', async () => {
    const e = await getEngine();
    const xShape = [3, 5, 7, 9];
    const mask = new Float32Array(size(xShape));
    refDrop.dropoutForward(new Float32Array(mask.length), new Float32Array(mask.length), mask, { p: 0.3, seed: 7 });
    const { gpu, host } = inputs(e, { dyPool: { shape: [3, 5] }, dy: { shape: xShape }, mask: { shape: xShape, data: mask } }, 60);
    await checkAccumulate(
      e,
      'global_avg_pool_backward',
      { dx: xShape },
      (o) => globalAvgPoolBackward(e, gpu.dyPool, o.dx, { accumulate: true }),
      (o, accumulate) => refPool.globalAvgPoolBackward(host.dyPool, o.dx, { accumulate }),
    );
    await checkAccumulate(
      e,
      'dropout_backward',
      { dx: xShape },
      (o) => dropoutBackward(e, gpu.dy, gpu.mask, o.dx, { accumulate: true }),
      (o, accumulate) => refDrop.dropoutBackward(host.dy.data, host.mask.data, o.dx.data, { accumulate }),
    );
    disposeAll(gpu);
  });
});

describe('accumulate leaves the overwriting pipelines alone', () => {
  it('accumulate: false compiles the same pipeline as no option, and it overwrites', async () => {
    const e = await getEngine();
    const shape = [5, 7];
    const { gpu, host } = inputs(e, { x: { shape }, dy: { shape } }, 70);
    const dx = e.tensor(shape, randomUniform(35, 71, 5, 6), 'dx');
    const plain = await activationBackward(e, 'tanh', gpu.x, gpu.dy, dx);
    const explicit = await activationBackward(e, 'tanh', gpu.x, gpu.dy, dx, 0.01, { accumulate: false });
    const accumulating = await activationBackward(e, 'tanh', gpu.x, gpu.dy, dx, 0.01, { accumulate: true });
    expect(explicit.kernel).toBe(plain.kernel);
    expect(accumulating.kernel).not.toBe(plain.kernel);
    e.runOnce(explicit);
    const want = new Float32Array(35);
    refAct.activationBackward('tanh', host.x.data, host.dy.data, want);
    expectClose(await dx.read(), want, {}, 'tanh_backward overwrites');
    plain.dispose();
    accumulating.dispose();
    dx.dispose();
    disposeAll(gpu);
  });
});
