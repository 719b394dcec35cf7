// Batch-norm kernels vs the CPU reference (training and evaluation forward, running statistics,
// backward); the reference's gradients vs finite differences; bad shapes rejected with the
// kernel's name and both shapes.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/gpu/engine.ts';
import { batchNormBackward, batchNormForwardEval, batchNormForwardTrain } from '../src/kernels/batchnorm.ts';
import * as ref from '../src/reference/batchnorm.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

const SHAPES: number[][] = [
  [1, 1, 7, 9],
  [3, 3, 13, 5],
  [3, 5, 7, 9],
  [2, 1, 1, 1],
  [5, 3], // [B, C]: no spatial dimensions
  [3, 5, 28, 28],
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const OPTS = { eps: 1e-5, momentum: 0.1 };

function both(e: Engine, shape: readonly number[], data: Float32Array, label: string) {
  return { gpu: e.tensor(shape, data, label), host: hostTensor(shape, data, label) };
}

describe('batchnorm kernels vs reference', () => {
  SHAPES.forEach((shape, si) => {
    it(`x [${shape.join(', ')}]`, async () => {
      const e = await getEngine();
      const c = shape[1];
      // Off-centre data, so that the mean matters and the variance is not 1.
      const x = both(e, shape, randomUniform(size(shape), si, 1, 4), 'x');
      const dy = both(e, shape, randomUniform(size(shape), 10 + si), 'dy');
      const gamma = both(e, [c], randomUniform(c, 20 + si, 0.5, 1.5), 'gamma');
      const beta = both(e, [c], randomUniform(c, 30 + si), 'beta');
      const runMean = both(e, [c], randomUniform(c, 40 + si), 'running_mean');
      const runVar = both(e, [c], randomUniform(c, 50 + si, 0.5, 2), 'running_var');
      const y = e.tensor(shape, undefined, 'y');
      const yEval = e.tensor(shape, undefined, 'y_eval');
      const saved = e.tensor([2, c], undefined, 'saved');
      const dx = e.tensor(shape, undefined, 'dx');
      const dgamma = e.tensor([c], undefined, 'dgamma');
      const dbeta = e.tensor([c], undefined, 'dbeta');

      e.runOnce(await batchNormForwardEval(e, x.gpu, gamma.gpu, beta.gpu, runMean.gpu, runVar.gpu, yEval, OPTS));
      e.runOnce(await batchNormForwardTrain(e, x.gpu, gamma.gpu, beta.gpu, y, saved, runMean.gpu, runVar.gpu, OPTS));
      e.runOnce(await batchNormBackward(e, x.gpu, dy.gpu, gamma.gpu, saved, dx, dgamma, dbeta));
      const stats = await saved.read();

      const want = {
        yEval: hostTensor(shape),
        y: hostTensor(shape),
        mean: hostTensor([c]),
        invstd: hostTensor([c]),
        dx: hostTensor(shape),
        dgamma: hostTensor([c]),
        dbeta: hostTensor([c]),
      };
      ref.batchNormForwardEval(x.host, gamma.host, beta.host, runMean.host, runVar.host, want.yEval, OPTS);
      ref.batchNormForwardTrain(x.host, gamma.host, beta.host, want.y, want.mean, want.invstd, runMean.host, runVar.host, OPTS);
      ref.batchNormBackward(x.host, dy.host, gamma.host, want.mean, want.invstd, want.dx, want.dgamma, want.dbeta);

      expectClose(await yEval.read(), want.yEval.data, {}, 'batch_norm_forward_eval');
      expectClose(await y.read(), want.y.data, {}, 'batch_norm_forward_train y');
      expectClose(stats.subarray(0, c), want.mean.data, {}, 'batch_norm_forward_train mean');
      // invstd of a variance taken as E[(x-K)^2] - E[x-K]^2 in f32: a few ulp of cancellation.
      expectClose(stats.subarray(c), want.invstd.data, { atol: 1e-5, rtol: 3e-4 }, 'batch_norm_forward_train invstd');
      expectClose(await runMean.gpu.read(), runMean.host.data, {}, 'running_mean');
      expectClose(await runVar.gpu.read(), runVar.host.data, {}, 'running_var');
      // dx and dgamma add up to B*H*W = 2352 f32 products in a different order from the reference.
      expectClose(await dx.read(), want.dx.data, { atol: 5e-5, rtol: 3e-4 }, 'batch_norm_backward dx');
      expectClose(await dgamma.read(), want.dgamma.data, { atol: 1e-4, rtol: 3e-4 }, 'batch_norm_backward dgamma');
      expectClose(await dbeta.read(), want.dbeta.data, { atol: 1e-4, rtol: 1e-4 }, 'batch_norm_backward dbeta');
      for (const t of [x, dy, gamma, beta, runMean, runVar]) t.gpu.dispose();
      for (const t of [y, yEval, saved, dx, dgamma, dbeta]) t.dispose();
    });
  });

  it('running statistics follow PyTorch: unbiased variance, momentum-weighted', async () => {
    const e = await getEngine();
    // One channel holding 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased var 5/3.
    const x = e.tensor([2, 1, 1, 2], [1, 2, 3, 4], 'x');
    const ones = e.tensor([1], [1], 'gamma');
    const zeros = e.tensor([1], [0], 'beta');
    const runMean = e.tensor([1], [0], 'running_mean');
    const runVar = e.tensor([1], [1], 'running_var');
    const y = e.tensor([2, 1, 1, 2], undefined, 'y');
    const saved = e.tensor([2, 1], undefined, 'saved');
    e.runOnce(await batchNormForwardTrain(e, x, ones, zeros, y, saved, runMean, runVar, { eps: 0, momentum: 0.1 }));
    const [mean, invstd] = await saved.read();
    expect(mean).toBeCloseTo(2.5, 6);
    expect(invstd).toBeCloseTo(1 / Math.sqrt(1.25), 6);
    expect((await runMean.read())[0]).toBeCloseTo(0.25, 6);
    expect((await runVar.read())[0]).toBeCloseTo(0.9 + 0.1 * (5 / 3), 6);
    for (const t of [x, ones, zeros, runMean, runVar, y, saved]) t.dispose();
  });
});

describe('batchnorm with a fused ReLU', () => {
  it('forward (train and eval) and backward vs the reference, accumulate included', async () => {
    const e = await getEngine();
    const shape = [3, 4, 5, 7];
    const c = shape[1];
    const x = both(e, shape, randomUniform(size(shape), 71, -1, 2), 'x');
    const dy = both(e, shape, randomUniform(size(shape), 72), 'dy');
    const gamma = both(e, [c], randomUniform(c, 73, 0.5, 1.5), 'gamma');
    const beta = both(e, [c], randomUniform(c, 74, -0.5, 0.5), 'beta');
    const runMean = both(e, [c], new Float32Array(c), 'running_mean');
    const runVar = both(e, [c], new Float32Array(c).fill(1), 'running_var');
    const opts = { ...OPTS, relu: true };
    const y = e.tensor(shape, undefined, 'y');
    const yEval = e.tensor(shape, undefined, 'y_eval');
    const saved = e.tensor([2, c], undefined, 'saved');
    const prefill = randomUniform(size(shape), 75);
    const dx = e.tensor(shape, prefill, 'dx');
    const dgamma = e.tensor([c], new Float32Array(c).fill(0.5), 'dgamma');
    const dbeta = e.tensor([c], new Float32Array(c).fill(-0.5), 'dbeta');
    e.runOnce(await batchNormForwardTrain(e, x.gpu, gamma.gpu, beta.gpu, y, saved, runMean.gpu, runVar.gpu, opts));
    e.runOnce(await batchNormForwardEval(e, x.gpu, gamma.gpu, beta.gpu, runMean.gpu, runVar.gpu, yEval, opts));
    e.runOnce(await batchNormBackward(e, x.gpu, dy.gpu, gamma.gpu, saved, dx, dgamma, dbeta, { accumulate: true, reluOutput: y }));
    const want = {
      y: hostTensor(shape),
      yEval: hostTensor(shape),
      mean: hostTensor([c]),
      invstd: hostTensor([c]),
      dx: hostTensor(shape, prefill),
      dgamma: hostTensor([c], new Float32Array(c).fill(0.5)),
      dbeta: hostTensor([c], new Float32Array(c).fill(-0.5)),
    };
    ref.batchNormForwardTrain(x.host, gamma.host, beta.host, want.y, want.mean, want.invstd, runMean.host, runVar.host, opts);
    ref.batchNormForwardEval(x.host, gamma.host, beta.host, runMean.host, runVar.host, want.yEval, opts);
    ref.batchNormBackward(x.host, dy.host, gamma.host, want.mean, want.invstd, want.dx, want.dgamma, want.dbeta, { accumulate: true, reluOutput: want.y });
    const gy = await y.read();
    expect(gy.some((v) => v === 0) && gy.some((v) => v > 0)).toBe(true); // the ReLU cuts some values
    expectClose(gy, want.y.data, {}, 'y (train)');
    expectClose(await yEval.read(), want.yEval.data, {}, 'y (eval)');
    // Sums over B*H*W = 105 values per channel in another order than the reference.
    expectClose(await dx.read(), want.dx.data, { atol: 5e-5, rtol: 3e-4 }, 'dx');
    expectClose(await dgamma.read(), want.dgamma.data, { atol: 1e-4, rtol: 3e-4 }, 'dgamma');
    expectClose(await dbeta.read(), want.dbeta.data, { atol: 1e-4, rtol: 1e-4 }, 'dbeta');
    for (const t of [x, dy, gamma, beta, runMean, runVar]) t.gpu.dispose();
    for (const t of [y, yEval, saved, dx, dgamma, dbeta]) t.dispose();
  });

  it('the reference backward is the gradient of sum(r * relu(batchnorm(x)))', () => {
    const shape = [3, 2, 2, 3];
    const f64 = (s: number[], seed: number, lo = -1, hi = 1): HostTensor => ({ shape: s, data: Float64Array.from(randomUniform(size(s), seed, lo, hi)) });
    const x = f64(shape, 11, -1, 2);
    const gamma = f64([2], 12, 0.5, 1.5);
    const beta = f64([2], 13, -0.3, 0.3);
    const r = f64(shape, 14);
    const stats = () => ({ shape: [2], data: new Float64Array(2) });
    const forward = (y: HostTensor, mean: HostTensor, invstd: HostTensor) => ref.batchNormForwardTrain(x, gamma, beta, y, mean, invstd, stats(), stats(), { eps: 1e-5, momentum: 0.1, relu: true });
    const loss = () => {
      const y = { shape, data: new Float64Array(size(shape)) };
      forward(y, stats(), stats());
      return y.data.reduce((s, v, i) => s + r.data[i] * v, 0);
    };
    const [mean, invstd] = [stats(), stats()];
    const y = { shape, data: new Float64Array(size(shape)) };
    forward(y, mean, invstd);
    const dx = { shape, data: new Float64Array(size(shape)) };
    const [dgamma, dbeta] = [stats(), stats()];
    ref.batchNormBackward(x, r, gamma, mean, invstd, dx, dgamma, dbeta, { reluOutput: y });
    checkGradient(loss, x.data as Float64Array, dx.data, {}, 'relu(batchnorm) dx');
    checkGradient(loss, gamma.data as Float64Array, dgamma.data, {}, 'relu(batchnorm) dgamma');
    checkGradient(loss, beta.data as Float64Array, dbeta.data, {}, 'relu(batchnorm) dbeta');
  });
});

describe('batchnorm reference gradients by finite differences', () => {
  const shape = [3, 2, 2, 3];
  const f64 = (s: number[], seed: number, lo = -1, hi = 1): HostTensor => ({ shape: s, data: Float64Array.from(randomUniform(size(s), seed, lo, hi)) });
  const x = f64(shape, 1, 0, 3);
  const gamma = f64([2], 2, 0.5, 1.5);
  const beta = f64([2], 3);
  const r = f64(shape, 4); // loss = sum(r * y), so dy = r
  const loss = () => {
    const y: HostTensor = { shape, data: new Float64Array(size(shape)) };
    const scratch = () => ({ shape: [2], data: new Float64Array(2) });
    ref.batchNormForwardTrain(x, gamma, beta, y, scratch(), scratch(), scratch(), scratch(), { eps: 1e-5, momentum: 0.1 });
    let s = 0;
    for (let i = 0; i < y.data.length; i++) s += r.data[i] * y.data[i];
    return s;
  };
  const grads = () => {
    const mean = { shape: [2], data: new Float64Array(2) };
    const invstd = { shape: [2], data: new Float64Array(2) };
    const y = { shape, data: new Float64Array(size(shape)) };
    ref.batchNormForwardTrain(x, gamma, beta, y, mean, invstd, { shape: [2], data: new Float64Array(2) }, { shape: [2], data: new Float64Array(2) }, { eps: 1e-5, momentum: 0.1 });
    const dx = { shape, data: new Float64Array(size(shape)) };
    const dgamma = { shape: [2], data: new Float64Array(2) };
    const dbeta = { shape: [2], data: new Float64Array(2) };
    ref.batchNormBackward(x, r, gamma, mean, invstd, dx, dgamma, dbeta);
    return { dx, dgamma, dbeta };
  };

  it('dx (through the batch mean and variance)', () => {
    checkGradient(loss, x.data as Float64Array, grads().dx.data, {}, 'batchnorm dx');
  });
  it('dgamma and dbeta', () => {
    const g = grads();
    checkGradient(loss, gamma.data as Float64Array, g.dgamma.data, {}, 'batchnorm dgamma');
    checkGradient(loss, beta.data as Float64Array, g.dbeta.data, {}, 'batchnorm dbeta');
  });
});

describe('batchnorm shape checks', () => {
  it('rejects a wrong channel count or output shape, naming the kernel and both shapes', async () => {
    const e = await getEngine();
    const x = e.tensor([2, 3, 4, 4], undefined, 'x');
    const c3 = e.tensor([3], undefined, 'c3');
    const gamma4 = e.tensor([4], undefined, 'gamma');
    const yBad = e.tensor([2, 3, 4, 5], undefined, 'y');
    const s6 = e.tensor([2, 3], undefined, 'saved');
    await expect(batchNormForwardTrain(e, x, gamma4, c3, x, s6, c3, c3, OPTS)).rejects.toThrow(/batchnorm\.batch_norm_forward_train.*"gamma" \[4\] should be \[3\].*"x" \[2, 3, 4, 4\]/);
    await expect(batchNormForwardEval(e, x, c3, c3, c3, c3, yBad, OPTS)).rejects.toThrow(/batchnorm\.batch_norm_forward_eval.*"y" \[2, 3, 4, 5\] should be \[2, 3, 4, 4\].*"x" \[2, 3, 4, 4\]/);
    await expect(batchNormBackward(e, x, yBad, c3, s6, x, c3, c3)).rejects.toThrow(/batchnorm\.batch_norm_backward.*"y" \[2, 3, 4, 5\].*"x" \[2, 3, 4, 4\]/);
    await expect(batchNormBackward(e, x, x, c3, c3, x, c3, c3)).rejects.toThrow(/batchnorm\.batch_norm_backward: saved statistics need 6 values \(mean and invstd of 3 channels\), got a tensor of \[3\]/);
    for (const t of [x, c3, gamma4, yBad, s6]) t.dispose();
  });

  it('rejects training on one value per channel', async () => {
    const e = await getEngine();
    const x = e.tensor([1, 3, 1, 1], undefined, 'x');
    const y = e.tensor([1, 3, 1, 1], undefined, 'y');
    const c3 = e.tensor([3], undefined, 'c3');
    const s6 = e.tensor([2, 3], undefined, 'saved');
    await expect(batchNormForwardTrain(e, x, c3, c3, y, s6, c3, c3, OPTS)).rejects.toThrow(/batch_norm_forward_train.*"x" \[1, 3, 1, 1\] has 1 value per channel/);
    for (const t of [x, y, c3, s6]) t.dispose();
  });
});
