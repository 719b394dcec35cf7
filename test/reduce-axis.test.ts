// Sums and means over adjacent axes (reduceAxes, both its per-output and its workgroup-per-output
// kernel) and their adjoint broadcastAxes vs the CPU reference on odd sizes, overwriting and
// accumulating, one of them past 65,535 workgroups; each reference is the other's gradient
// (finite differences); bad sizes rejected with the kernel's name and the shapes.
import { describe, expect, it } from 'vitest';
import { broadcastAxes, reduceAxes } from '../src/kernels/reduce.ts';
import type { ReduceAxesOptions } from '../src/ops/reduce.ts';
import { hostTensor } from '../src/reference/host.ts';
import * as ref from '../src/reference/reduce.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

/** [x's shape, the view]: a middle axis, the last, the first, a mean, a whole tensor, long sums with few outputs. */
const CASES: [number[], ReduceAxesOptions][] = [
  [[1], { outer: 1, reduce: 1, inner: 1 }],
  [[3, 5, 7], { outer: 3, reduce: 5, inner: 7 }],
  [[127, 33, 65], { outer: 127 * 33, reduce: 65, inner: 1 }],
  [[127, 33, 65], { outer: 1, reduce: 127, inner: 33 * 65, scale: 1 / 127 }],
  // Few outputs with long sums take reduce_axes_wide.
  [[100003], { outer: 1, reduce: 100003, inner: 1, scale: 1 / 100003 }],
  [[4, 5001, 3], { outer: 4, reduce: 5001, inner: 3 }],
];

const viewName = (o: ReduceAxesOptions) => `[${o.outer}, ${o.reduce}, ${o.inner}]${o.scale ? ` scale ${o.scale.toPrecision(3)}` : ''}`;

describe('reduceAxes and broadcastAxes vs reference', () => {
  CASES.forEach(([shape, view], ci) => {
    it(`x [${shape.join(', ')}] as ${viewName(view)}, overwriting and accumulating`, async () => {
      const e = await getEngine();
      const n = view.outer * view.reduce * view.inner;
      const m = view.outer * view.inner;
      const xData = randomUniform(n, ci + 1);
      const dyData = randomUniform(m, ci + 2);
      const [x, y, dy, dx] = [e.tensor(shape, xData, 'x'), e.tensor([m], undefined, 'y'), e.tensor([m], dyData, 'dy'), e.tensor(shape, undefined, 'dx')];
      // A sum of `reduce` values in [-1, 1], in another order than the reference's float64 sum.
      const tol = { atol: 1e-6 * Math.sqrt(view.reduce) * (view.scale ?? 1) + 1e-7, rtol: 1e-5 };
      for (const accumulate of [false, true]) {
        const yPrefill = randomUniform(m, ci + 3);
        const dxPrefill = randomUniform(n, ci + 4);
        if (accumulate) {
          e.write(y, yPrefill);
          e.write(dx, dxPrefill);
        } else {
          e.fill(y, NaN);
          e.fill(dx, NaN);
        }
        e.runOnce(await reduceAxes(e, x, y, { ...view, accumulate }));
        e.runOnce(await broadcastAxes(e, dy, dx, { ...view, accumulate }));
        const wantY = hostTensor([m], accumulate ? yPrefill : undefined);
        const wantDx = hostTensor(shape, accumulate ? dxPrefill : undefined);
        ref.reduceAxes(hostTensor(shape, xData), wantY, { ...view, accumulate });
        ref.broadcastAxes(hostTensor([m], dyData), wantDx, { ...view, accumulate });
        expectClose(await y.read(), wantY.data, tol, `reduceAxes${accumulate ? ' +=' : ''}`);
        expectClose(await dx.read(), wantDx.data, {}, `broadcastAxes${accumulate ? ' +=' : ''}`);
      }
      for (const t of [x, y, dy, dx]) t.dispose();
    });
  });

  it('more than 65,535 workgroups: a sum over pairs with 65,535 * 64 + 1 outputs, and its broadcast', async () => {
    const e = await getEngine();
    const view = { outer: 65535 * 64 + 1, reduce: 2, inner: 1 };
    const n = view.outer * 2;
    const xData = randomUniform(n, 70);
    const [x, y] = [e.tensor([view.outer, 2], xData, 'x'), e.tensor([view.outer], undefined, 'y')];
    const dx = e.tensor([view.outer, 2], undefined, 'dx');
    e.fill(y, NaN);
    e.fill(dx, NaN);
    e.runOnce(await reduceAxes(e, x, y, view));
    e.runOnce(await broadcastAxes(e, y, dx, { ...view, scale: 0.5 }));
    const wantY = hostTensor([view.outer]);
    ref.reduceAxes(hostTensor([view.outer, 2], xData), wantY, view);
    const wantDx = hostTensor([view.outer, 2]);
    ref.broadcastAxes(wantY, wantDx, { ...view, scale: 0.5 });
    expectClose(await y.read(), wantY.data, {}, 'reduceAxes over 65,535 workgroups');
    expectClose(await dx.read(), wantDx.data, {}, 'broadcastAxes of it');
    for (const t of [x, y, dx]) t.dispose();
  });
});

describe("reduce and broadcast references are each other's gradient (finite differences)", () => {
  const view = { outer: 2, reduce: 3, inner: 4, scale: 0.5 };
  it('d/dx of sum(w ⊙ reduceAxes(x)) is broadcastAxes(w)', () => {
    const x = { shape: [2, 3, 4], data: Float64Array.from(randomUniform(24, 1)) };
    const w = { shape: [2, 4], data: Float64Array.from(randomUniform(8, 2)) };
    const loss = () => {
      const y = { shape: [2, 4], data: new Float64Array(8) };
      ref.reduceAxes(x, y, view);
      return y.data.reduce((s, v, i) => s + v * w.data[i], 0);
    };
    const dx = { shape: [2, 3, 4], data: new Float64Array(24) };
    ref.broadcastAxes(w, dx, view);
    checkGradient(loss, x.data, dx.data, {}, 'dx');
  });

  it('d/dy of sum(w ⊙ broadcastAxes(y)) is reduceAxes(w)', () => {
    const y = { shape: [2, 4], data: Float64Array.from(randomUniform(8, 3)) };
    const w = { shape: [2, 3, 4], data: Float64Array.from(randomUniform(24, 4)) };
    const loss = () => {
      const out = { shape: [2, 3, 4], data: new Float64Array(24) };
      ref.broadcastAxes(y, out, view);
      return out.data.reduce((s, v, i) => s + v * w.data[i], 0);
    };
    const dy = { shape: [2, 4], data: new Float64Array(8) };
    ref.reduceAxes(w, dy, view);
    checkGradient(loss, y.data, dy.data, {}, 'dy');
  });
});

describe('reduce_axis errors name the kernel and the shapes', () => {
  it('rejects sizes that do not match the view', async () => {
    const e = await getEngine();
    const [x, y] = [e.tensor([3, 5, 7], undefined, 'act'), e.tensor([3, 6], undefined, 'sums')];
    await expect(reduceAxes(e, x, y, { outer: 3, reduce: 5, inner: 7 })).rejects.toThrow(/reduce_axis\.reduce_axes.*"act" \[3, 5, 7\].*"sums" \[3, 6\].*\[3, 5, 7\] and \[3, 7\]/);
    await expect(broadcastAxes(e, y, x, { outer: 3, reduce: 5, inner: 6 })).rejects.toThrow(/reduce_axis\.broadcast_axes.*"act" \[3, 5, 7\].*"sums" \[3, 6\]/);
    await expect(reduceAxes(e, x, y, { outer: 3, reduce: 0, inner: 7 })).rejects.toThrow(/reduce_axis\.reduce_axes.*reduce = 0/);
    x.dispose();
    y.dispose();
  });
});
