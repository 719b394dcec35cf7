// Pooling kernels vs the CPU reference on odd shapes, strides and paddings (max pool ties
// included); the reference's gradients vs finite differences; bad shapes rejected with the
// kernel's name and both shapes.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/gpu/engine.ts';
import { avgPool2dBackward, avgPool2dForward, globalAvgPoolBackward, globalAvgPoolForward, maxPool2dBackward, maxPool2dForward, pool2dOutputShape } from '../src/kernels/pool.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import * as ref from '../src/reference/pool.ts';
import type { Pool2dOptions } from '../src/ops/pooling.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

interface Case {
  x: [number, number, number, number];
  opts: Pool2dOptions;
}

const CASES: Case[] = [
  { x: [1, 1, 7, 9], opts: { kernel: 2 } },
  { x: [3, 3, 8, 8], opts: { kernel: 3, stride: 2 } },
  { x: [3, 5, 13, 5], opts: { kernel: 3, stride: 2, padding: 1 } },
  { x: [1, 3, 7, 9], opts: { kernel: [3, 2], stride: [1, 2], padding: [1, 1] } },
  { x: [1, 5, 6, 6], opts: { kernel: 1 } },
  { x: [2, 3, 9, 7], opts: { kernel: 4, stride: 3, padding: 2 } },
  { x: [3, 5, 28, 28], opts: { kernel: 2 } },
  // Tiling windows (stride = kernel, no padding) take the loop-free backward kernel; leftovers get 0.
  { x: [2, 3, 10, 11], opts: { kernel: [2, 3] } },
  { x: [1, 2, 40, 37], opts: { kernel: 3, stride: 3 } },
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function both(e: Engine, shape: readonly number[], data: Float32Array, label: string) {
  return { gpu: e.tensor(shape, data, label), host: hostTensor(shape, data, label) };
}

/** Values on a coarse grid, so that windows often hold equal maxima. */
function withTies(n: number, seed: number): Float32Array {
  return randomUniform(n, seed).map((v) => Math.round(v * 2) / 2);
}

describe('pool kernels vs reference', () => {
  CASES.forEach((c, ci) => {
    const name = `x [${c.x.join(', ')}] ${JSON.stringify(c.opts)}`;

    it(`max pool ${name}`, async () => {
      const e = await getEngine();
      const yShape = pool2dOutputShape(c.x, c.opts);
      // Even cases have many ties: argmax must pick the first maximum in row-major order.
      const xs = ci % 2 === 0 ? withTies(size(c.x), ci) : randomUniform(size(c.x), ci);
      const x = both(e, c.x, xs, 'x');
      const dy = both(e, yShape, randomUniform(size(yShape), 50 + ci), 'dy');
      const y = e.tensor(yShape, undefined, 'y');
      const argmax = e.tensor(yShape, undefined, 'argmax');
      const dx = e.tensor(c.x, undefined, 'dx');
      e.runOnce(await maxPool2dForward(e, x.gpu, y, argmax, c.opts));
      e.runOnce(await maxPool2dBackward(e, dy.gpu, argmax, dx, c.opts));
      const wantY = hostTensor(yShape);
      const wantArg = hostTensor(yShape);
      const wantDx = hostTensor(c.x);
      ref.maxPool2dForward(x.host, wantY, wantArg, c.opts);
      ref.maxPool2dBackward(dy.host, wantArg, wantDx, c.opts);
      expectClose(await y.read(), wantY.data, { atol: 0, rtol: 0 }, 'max_pool2d_forward y');
      expectClose(await argmax.read(), wantArg.data, { atol: 0, rtol: 0 }, 'max_pool2d_forward argmax');
      expectClose(await dx.read(), wantDx.data, {}, 'max_pool2d_backward');
      for (const t of [x.gpu, dy.gpu, y, argmax, dx]) t.dispose();
    });

    for (const countIncludePad of [true, false]) {
      it(`avg pool ${name} countIncludePad=${countIncludePad}`, async () => {
        const e = await getEngine();
        const opts = { ...c.opts, countIncludePad };
        const yShape = pool2dOutputShape(c.x, opts);
        const x = both(e, c.x, randomUniform(size(c.x), 10 + ci), 'x');
        const dy = both(e, yShape, randomUniform(size(yShape), 60 + ci), 'dy');
        const y = e.tensor(yShape, undefined, 'y');
        const dx = e.tensor(c.x, undefined, 'dx');
        e.runOnce(await avgPool2dForward(e, x.gpu, y, opts));
        e.runOnce(await avgPool2dBackward(e, dy.gpu, dx, opts));
        const wantY = hostTensor(yShape);
        const wantDx = hostTensor(c.x);
        ref.avgPool2dForward(x.host, wantY, opts);
        ref.avgPool2dBackward(dy.host, wantDx, opts);
        expectClose(await y.read(), wantY.data, {}, 'avg_pool2d_forward');
        expectClose(await dx.read(), wantDx.data, {}, 'avg_pool2d_backward');
        for (const t of [x.gpu, dy.gpu, y, dx]) t.dispose();
      });
    }
  });

  it('count_include_pad changes the border windows only', async () => {
    const e = await getEngine();
    const xShape = [1, 1, 4, 4];
    const x = e.tensor(xShape, new Float32Array(16).fill(1), 'x');
    const y = e.tensor([1, 1, 4, 4], undefined, 'y');
    e.runOnce(await avgPool2dForward(e, x, y, { kernel: 3, stride: 1, padding: 1, countIncludePad: true }));
    const incl = await y.read();
    expect(incl[0]).toBeCloseTo(4 / 9, 6); // corner: 4 of 9 window elements are inside
    expect(incl[5]).toBeCloseTo(1, 6); // interior
    e.runOnce(await avgPool2dForward(e, x, y, { kernel: 3, stride: 1, padding: 1, countIncludePad: false }));
    expect(Array.from(await y.read())).toEqual(new Array(16).fill(1));
    x.dispose();
    y.dispose();
  });

  for (const shape of [
    [3, 5, 7, 9],
    [1, 1, 1, 1],
    [2, 3, 28, 28],
  ] as const) {
    it(`global avg pool x [${shape.join(', ')}]`, async () => {
      const e = await getEngine();
      const yShape = [shape[0], shape[1]];
      const x = both(e, shape, randomUniform(size(shape), 5), 'x');
      const dy = both(e, yShape, randomUniform(size(yShape), 6), 'dy');
      const y = e.tensor(yShape, undefined, 'y');
      const dx = e.tensor(shape, undefined, 'dx');
      e.runOnce(await globalAvgPoolForward(e, x.gpu, y));
      e.runOnce(await globalAvgPoolBackward(e, dy.gpu, dx));
      const wantY = hostTensor(yShape);
      const wantDx = hostTensor(shape);
      ref.globalAvgPoolForward(x.host, wantY);
      ref.globalAvgPoolBackward(dy.host, wantDx);
      expectClose(await y.read(), wantY.data, {}, 'global_avg_pool_forward');
      expectClose(await dx.read(), wantDx.data, {}, 'global_avg_pool_backward');
      for (const t of [x.gpu, dy.gpu, y, dx]) t.dispose();
    });
  }
});

describe('pool reference gradients by finite differences', () => {
  const f64 = (shape: readonly number[], seed: number): HostTensor => ({ shape, data: Float64Array.from(randomUniform(size(shape), seed)) });
  /** loss = sum(r * pool(x)) for the pooling `forward`; returns the loss function and r. */
  const lossOf = (x: HostTensor, yShape: readonly number[], forward: (x: HostTensor, y: HostTensor) => void) => {
    const r = f64(yShape, 99);
    const loss = () => {
      const y: HostTensor = { shape: yShape, data: new Float64Array(size(yShape)) };
      forward(x, y);
      let s = 0;
      for (let i = 0; i < y.data.length; i++) s += y.data[i] * r.data[i];
      return s;
    };
    return { loss, r };
  };

  it('max pool (random inputs: no ties)', () => {
    const opts: Pool2dOptions = { kernel: 3, stride: 2, padding: 1 };
    const x = f64([2, 2, 5, 6], 1);
    const yShape = pool2dOutputShape(x.shape, opts);
    const argmax: HostTensor = { shape: yShape, data: new Float64Array(size(yShape)) };
    const { loss, r } = lossOf(x, yShape, (xx, y) => ref.maxPool2dForward(xx, y, argmax, opts));
    loss();
    const dx: HostTensor = { shape: x.shape, data: new Float64Array(size(x.shape)) };
    ref.maxPool2dBackward(r, argmax, dx, opts);
    checkGradient(loss, x.data as Float64Array, dx.data, {}, 'max pool dx');
  });

  for (const countIncludePad of [true, false]) {
    it(`avg pool, countIncludePad=${countIncludePad}`, () => {
      const opts = { kernel: [3, 2] as [number, number], stride: [2, 1] as [number, number], padding: 1, countIncludePad };
      const x = f64([2, 2, 5, 4], 2);
      const yShape = pool2dOutputShape(x.shape, opts);
      const { loss, r } = lossOf(x, yShape, (xx, y) => ref.avgPool2dForward(xx, y, opts));
      const dx: HostTensor = { shape: x.shape, data: new Float64Array(size(x.shape)) };
      ref.avgPool2dBackward(r, dx, opts);
      checkGradient(loss, x.data as Float64Array, dx.data, {}, 'avg pool dx');
    });
  }

  it('global avg pool', () => {
    const x = f64([2, 3, 3, 4], 3);
    const { loss, r } = lossOf(x, [2, 3], (xx, y) => ref.globalAvgPoolForward(xx, y));
    const dx: HostTensor = { shape: x.shape, data: new Float64Array(size(x.shape)) };
    ref.globalAvgPoolBackward(r, dx);
    checkGradient(loss, x.data as Float64Array, dx.data, {}, 'global avg pool dx');
  });
});

describe('pool shape checks', () => {
  it('rejects a wrong channel count, naming the kernel and both shapes', async () => {
    const e = await getEngine();
    const x = e.tensor([2, 3, 8, 8], undefined, 'x');
    const y = e.tensor([2, 4, 4, 4], undefined, 'y');
    const arg = e.tensor([2, 3, 4, 4], undefined, 'argmax');
    await expect(maxPool2dForward(e, x, y, arg, { kernel: 2 })).rejects.toThrow(/pool\.max_pool2d_forward.*"y" \[2, 4, 4, 4\] should be \[2, 3, 4, 4\].*"x" \[2, 3, 8, 8\]/);
    await expect(avgPool2dBackward(e, y, x, { kernel: 2 })).rejects.toThrow(/pool\.avg_pool2d_backward.*"y" \[2, 4, 4, 4\].*"x" \[2, 3, 8, 8\]/);
    const g = e.tensor([2, 4], undefined, 'g');
    await expect(globalAvgPoolForward(e, x, g)).rejects.toThrow(/pool\.global_avg_pool_forward.*"g" \[2, 4\] should be \[2, 3\].*"x" \[2, 3, 8, 8\]/);
    for (const t of [x, y, arg, g]) t.dispose();
  });

  it('rejects an input smaller than the window, and padding over half the window', async () => {
    const e = await getEngine();
    const x = e.tensor([1, 2, 2, 5], undefined, 'x');
    const y = e.tensor([1, 2, 1, 1], undefined, 'y');
    await expect(avgPool2dForward(e, x, y, { kernel: 3 })).rejects.toThrow(/pool\.avg_pool2d_forward.*"x" \[1, 2, 2, 5\].*smaller than the 3x3 window/);
    await expect(maxPool2dForward(e, x, y, y, { kernel: 2, padding: 2 })).rejects.toThrow(/pool\.max_pool2d_forward.*padding \[2, 2\] is more than half the 2x2 window.*"x" \[1, 2, 2, 5\]/);
    for (const t of [x, y]) t.dispose();
  });
});
