// Layer-norm kernels vs the CPU reference in both layouts (one invocation per row, scalar and vec4;
// one workgroup per row) on odd shapes; gradients that accumulate; rows far from zero; repeatable
// results; the reference's gradients vs finite differences; bad shapes rejected with the kernel's
// name and the tensors.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/gpu/engine.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { layerNormBackward, layerNormForward, layerNormParamGrad, type LayerNormVariant } from '../src/kernels/layernorm.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import * as ref from '../src/reference/layernorm.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

const VARIANTS: LayerNormVariant[] = ['row', 'workgroup'];
const EPS = 1e-5;

// [rows, D]: every D of 1, 3, 7, 63, 65, 257, 768 and every row count of 1, 5, 33, 1000. D = 1 has
// zero variance (y = beta, dx = 0); 63, 65, 257 are odd (the scalar entries) and 192, 768
// multiples of 4 (the vec4 entries); 1000 rows make grids that are not multiples of a workgroup.
const SHAPES: [number, number][] = [
  [1, 1],
  [1000, 1],
  [5, 3],
  [33, 7],
  [1000, 63],
  [5, 65],
  [33, 257],
  [1, 768],
  [33, 768],
  [5, 192],
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function both(e: Engine, shape: readonly number[], data: Float32Array, label: string) {
  return { gpu: e.tensor(shape, data, label), host: hostTensor(shape, data, label) };
}

/** Inputs of one problem: off-centre x (the mean matters, the variance is not 1), gamma around 1. */
function inputs(e: Engine, shape: number[], rowShape: number[], seed: number, offset = 1) {
  const D = shape[shape.length - 1];
  return {
    x: both(e, shape, randomUniform(size(shape), seed, offset, offset + 3), 'x'),
    dy: both(e, shape, randomUniform(size(shape), seed + 1), 'dy'),
    gamma: both(e, [D], randomUniform(D, seed + 2, 0.5, 1.5), 'gamma'),
    beta: both(e, [D], randomUniform(D, seed + 3), 'beta'),
    y: e.tensor(shape, undefined, 'y'),
    mean: e.tensor(rowShape, undefined, 'mean'),
    rstd: e.tensor(rowShape, undefined, 'rstd'),
    dx: e.tensor(shape, undefined, 'dx'),
    dgamma: e.tensor([D], undefined, 'dgamma'),
    dbeta: e.tensor([D], undefined, 'dbeta'),
  };
}

type Inputs = ReturnType<typeof inputs>;

function dispose(p: Inputs): void {
  for (const t of [p.x, p.dy, p.gamma, p.beta]) t.gpu.dispose();
  for (const t of [p.y, p.mean, p.rstd, p.dx, p.dgamma, p.dbeta]) t.dispose();
}

const host = (t: Tensor, data?: ArrayLike<number>) => hostTensor(t.shape, data, t.label);

describe('layernorm kernels vs reference', () => {
  for (const variant of VARIANTS) {
    SHAPES.forEach(([R, D], si) => {
      it(`${variant}: x [${R}, ${D}]`, async () => {
        const e = await getEngine();
        const p = inputs(e, [R, D], [R], 10 * si);
        e.runOnce(await layerNormForward(e, p.x.gpu, p.gamma.gpu, p.beta.gpu, p.y, p.mean, p.rstd, { eps: EPS, variant }));
        e.runOnce(await layerNormBackward(e, p.x.gpu, p.dy.gpu, p.gamma.gpu, p.mean, p.rstd, p.dx, { variant }));
        e.runOnce(await layerNormParamGrad(e, p.x.gpu, p.dy.gpu, p.mean, p.rstd, p.dgamma, p.dbeta));

        const want = { y: host(p.y), mean: host(p.mean), rstd: host(p.rstd), dx: host(p.dx), dgamma: host(p.dgamma), dbeta: host(p.dbeta) };
        ref.layerNormForward(p.x.host, p.gamma.host, p.beta.host, want.y, want.mean, want.rstd, { eps: EPS });
        expectClose(await p.y.read(), want.y.data, {}, 'layer_norm_forward y');
        expectClose(await p.mean.read(), want.mean.data, {}, 'layer_norm_forward mean');
        // rstd is 316 (1/sqrt(eps)) where a row is constant (D = 1): the default atol is far below its ulp.
        expectClose(await p.rstd.read(), want.rstd.data, { atol: 0, rtol: 1e-4 }, 'layer_norm_forward rstd');

        // The gradients from the GPU's own statistics, so that only the backward kernels are under test.
        const saved = { mean: host(p.mean, await p.mean.read()), rstd: host(p.rstd, await p.rstd.read()) };
        ref.layerNormBackward(p.x.host, p.dy.host, p.gamma.host, saved.mean, saved.rstd, want.dx);
        ref.layerNormParamGrad(p.x.host, p.dy.host, saved.mean, saved.rstd, want.dgamma, want.dbeta);
        expectClose(await p.dx.read(), want.dx.data, {}, 'layer_norm_backward dx');
        // Column sums of up to 1000 f32 products, added in another order than the float64 reference.
        expectClose(await p.dgamma.read(), want.dgamma.data, { atol: 1e-4, rtol: 1e-4 }, 'layer_norm_param_grad dgamma');
        expectClose(await p.dbeta.read(), want.dbeta.data, { atol: 1e-4, rtol: 1e-4 }, 'layer_norm_param_grad dbeta');
        dispose(p);
      });
    });
  }

  it('takes any rank: x [2, 3, 5, 12] with the statistics as [2, 3, 5]', async () => {
    const e = await getEngine();
    const shape = [2, 3, 5, 12];
    const p = inputs(e, shape, [2, 3, 5], 7);
    e.runOnce(await layerNormForward(e, p.x.gpu, p.gamma.gpu, p.beta.gpu, p.y, p.mean, p.rstd, { eps: EPS }));
    const want = { y: host(p.y), mean: host(p.mean), rstd: host(p.rstd) };
    ref.layerNormForward(p.x.host, p.gamma.host, p.beta.host, want.y, want.mean, want.rstd, { eps: EPS });
    expectClose(await p.y.read(), want.y.data, {}, 'layer_norm_forward y');
    expectClose(await p.rstd.read(), want.rstd.data, {}, 'layer_norm_forward rstd');
    dispose(p);
  });

  for (const variant of VARIANTS) {
    it(`${variant}: rows far from zero keep their variance (centred sums, not E[x^2] - E[x]^2)`, async () => {
      const e = await getEngine();
      // Values in [1000, 1003]: in f32, E[x^2] - E[x]^2 would cancel away about 6 of the 7 digits.
      const p = inputs(e, [33, 68], [33], 3, 1000);
      const q = inputs(e, [33, 67], [33], 4, 1000);
      for (const t of [p, q]) {
        e.runOnce(await layerNormForward(e, t.x.gpu, t.gamma.gpu, t.beta.gpu, t.y, t.mean, t.rstd, { eps: EPS, variant }));
        const want = { y: host(t.y), mean: host(t.mean), rstd: host(t.rstd) };
        ref.layerNormForward(t.x.host, t.gamma.host, t.beta.host, want.y, want.mean, want.rstd, { eps: EPS });
        // x itself holds only about 1e-4 of absolute precision at 1000 in f32 (the reference reads the same
        // f32 values, so this is the mean's rounding): xhat carries a few 1e-4 of relative error.
        expectClose(await t.y.read(), want.y.data, { atol: 1e-3, rtol: 1e-3 }, `layer_norm_forward y, D = ${t.x.gpu.shape[1]}`);
        expectClose(await t.rstd.read(), want.rstd.data, { atol: 0, rtol: 1e-3 }, `layer_norm_forward rstd, D = ${t.x.gpu.shape[1]}`);
        dispose(t);
      }
    });
  }

  it('gives the same bits on every run (fixed-order sums)', async () => {
    const e = await getEngine();
    const p = inputs(e, [1000, 65], [1000], 5);
    const runOnce = async () => {
      e.runOnce(await layerNormForward(e, p.x.gpu, p.gamma.gpu, p.beta.gpu, p.y, p.mean, p.rstd, { eps: EPS }));
      e.runOnce(await layerNormParamGrad(e, p.x.gpu, p.dy.gpu, p.mean, p.rstd, p.dgamma, p.dbeta));
      return [await p.y.read(), await p.dgamma.read(), await p.dbeta.read()];
    };
    const first = await runOnce();
    const second = await runOnce();
    first.forEach((a, i) => expect(Buffer.from(second[i].buffer).equals(Buffer.from(a.buffer))).toBe(true));
    dispose(p);
  });
});

describe('layernorm gradients that accumulate', () => {
  // Scalar and vec4 entries of both layouts: the outputs are pre-filled, and must end at prefill + gradient.
  for (const variant of VARIANTS) {
    for (const D of [7, 12]) {
      it(`${variant}, D = ${D}`, async () => {
        const e = await getEngine();
        const R = 9;
        const p = inputs(e, [R, D], [R], 20 + D);
        e.runOnce(await layerNormForward(e, p.x.gpu, p.gamma.gpu, p.beta.gpu, p.y, p.mean, p.rstd, { eps: EPS, variant }));
        const saved = { mean: host(p.mean, await p.mean.read()), rstd: host(p.rstd, await p.rstd.read()) };
        const prefill = { dx: randomUniform(R * D, 31), dgamma: randomUniform(D, 32), dbeta: randomUniform(D, 33) };
        e.write(p.dx, prefill.dx);
        e.write(p.dgamma, prefill.dgamma);
        e.write(p.dbeta, prefill.dbeta);
        e.runOnce(await layerNormBackward(e, p.x.gpu, p.dy.gpu, p.gamma.gpu, p.mean, p.rstd, p.dx, { accumulate: true, variant }));
        e.runOnce(await layerNormParamGrad(e, p.x.gpu, p.dy.gpu, p.mean, p.rstd, p.dgamma, p.dbeta, { accumulate: true }));

        const want = { dx: host(p.dx, prefill.dx), dgamma: host(p.dgamma, prefill.dgamma), dbeta: host(p.dbeta, prefill.dbeta) };
        ref.layerNormBackward(p.x.host, p.dy.host, p.gamma.host, saved.mean, saved.rstd, want.dx, { accumulate: true });
        ref.layerNormParamGrad(p.x.host, p.dy.host, saved.mean, saved.rstd, want.dgamma, want.dbeta, { accumulate: true });
        // The reference's accumulate is prefill + its own overwriting result.
        const alone = { dx: host(p.dx), dgamma: host(p.dgamma), dbeta: host(p.dbeta) };
        ref.layerNormBackward(p.x.host, p.dy.host, p.gamma.host, saved.mean, saved.rstd, alone.dx);
        ref.layerNormParamGrad(p.x.host, p.dy.host, saved.mean, saved.rstd, alone.dgamma, alone.dbeta);
        const sum = (a: ArrayLike<number>, b: ArrayLike<number>) => Float32Array.from(a, (v, i) => v + b[i]);
        expectClose(want.dx.data, sum(prefill.dx, alone.dx.data), { atol: 1e-6, rtol: 1e-6 }, 'reference dx with accumulate');
        expectClose(want.dgamma.data, sum(prefill.dgamma, alone.dgamma.data), { atol: 1e-6, rtol: 1e-6 }, 'reference dgamma with accumulate');

        expectClose(await p.dx.read(), want.dx.data, {}, 'layer_norm_backward dx with accumulate');
        expectClose(await p.dgamma.read(), want.dgamma.data, {}, 'layer_norm_param_grad dgamma with accumulate');
        expectClose(await p.dbeta.read(), want.dbeta.data, {}, 'layer_norm_param_grad dbeta with accumulate');
        dispose(p);
      });
    }
  }
});

describe('layernorm reference gradients by finite differences', () => {
  const shape = [2, 3, 5];
  const D = 5;
  const f64 = (s: number[], seed: number, lo = -1, hi = 1): HostTensor => ({ shape: s, data: Float64Array.from(randomUniform(size(s), seed, lo, hi)) });
  const x = f64(shape, 1, 0, 3);
  const gamma = f64([D], 2, 0.5, 1.5);
  const beta = f64([D], 3);
  const r = f64(shape, 4); // loss = sum(r * y), so dy = r
  const z = (s: number[]): HostTensor => ({ shape: s, data: new Float64Array(size(s)) });
  const forward = () => {
    const out = { y: z(shape), mean: z([2, 3]), rstd: z([2, 3]) };
    ref.layerNormForward(x, gamma, beta, out.y, out.mean, out.rstd, { eps: EPS });
    return out;
  };
  const loss = () => {
    const y = forward().y.data;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += r.data[i] * y[i];
    return s;
  };

  it('dx (through the row mean and variance)', () => {
    const { mean, rstd } = forward();
    const dx = z(shape);
    ref.layerNormBackward(x, r, gamma, mean, rstd, dx);
    checkGradient(loss, x.data as Float64Array, dx.data, {}, 'layernorm dx');
  });

  it('dgamma and dbeta', () => {
    const { mean, rstd } = forward();
    const dgamma = z([D]);
    const dbeta = z([D]);
    ref.layerNormParamGrad(x, r, mean, rstd, dgamma, dbeta);
    checkGradient(loss, gamma.data as Float64Array, dgamma.data, {}, 'layernorm dgamma');
    checkGradient(loss, beta.data as Float64Array, dbeta.data, {}, 'layernorm dbeta');
  });
});

describe('layernorm shape checks', () => {
  it('rejects wrong shapes, naming the kernel and the tensors', async () => {
    const e = await getEngine();
    const x = e.tensor([4, 3, 8], undefined, 'x');
    const y = e.tensor([4, 3, 8], undefined, 'y');
    const yBad = e.tensor([4, 3, 9], undefined, 'y');
    const c8 = e.tensor([8], undefined, 'c8');
    const gamma9 = e.tensor([9], undefined, 'gamma');
    const r12 = e.tensor([12], undefined, 'r12');
    const mean43 = e.tensor([4, 3], undefined, 'mean');
    const meanBad = e.tensor([3, 4], undefined, 'mean');
    await expect(layerNormForward(e, x, gamma9, c8, y, r12, r12, { eps: EPS })).rejects.toThrow(/layernorm\.layer_norm_forward.*"gamma" \[9\] should be \[8\].*"x" \[4, 3, 8\]/);
    await expect(layerNormForward(e, x, c8, c8, y, meanBad, r12, { eps: EPS })).rejects.toThrow(/layernorm\.layer_norm_forward.*"mean" \[3, 4\] should be \[12\] or \[4, 3\].*"x" \[4, 3, 8\]/);
    await expect(layerNormForward(e, x, c8, c8, y, r12, r12, { eps: -1 })).rejects.toThrow(/layernorm\.layer_norm_forward: eps/);
    await expect(layerNormBackward(e, x, yBad, c8, mean43, r12, y)).rejects.toThrow(/layernorm\.layer_norm_backward.*"y" \[4, 3, 9\] should be \[4, 3, 8\].*"x" \[4, 3, 8\]/);
    await expect(layerNormParamGrad(e, x, y, r12, r12, gamma9, c8)).rejects.toThrow(/layernorm\.layer_norm_param_grad.*"gamma" \[9\] should be \[8\]/);
    expect(() => ref.layerNormForward(hostTensor([4, 3, 8]), hostTensor([9], undefined, 'gamma'), hostTensor([8]), hostTensor([4, 3, 8]), hostTensor([12]), hostTensor([12]), { eps: EPS })).toThrow(
      /Reference layerNormForward.*"gamma" \[9\] should be \[8\]/,
    );
    for (const t of [x, y, yBad, c8, gamma9, r12, mean43, meanBad]) t.dispose();
  });
});
