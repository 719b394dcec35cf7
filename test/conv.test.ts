// Convolution kernels vs the CPU reference on odd shapes, strides and paddings; the reference's
// gradients vs finite differences; bad shapes rejected with the kernel's name and both shapes.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/gpu/engine.ts';
import { grid1d } from '../src/gpu/engine.ts';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, conv2dOutputShape, conv2dParams } from '../src/kernels/conv2d.ts';
import * as ref from '../src/reference/conv2d.ts';
import { conv2dGeometry, type Conv2dOptions } from '../src/ops/conv.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

interface Case {
  b: number;
  ic: number;
  oc: number;
  h: number;
  w: number;
  k: [number, number];
  opts: Conv2dOptions;
  bias: boolean;
}

const CASES: Case[] = [
  { b: 1, ic: 1, oc: 1, h: 7, w: 9, k: [3, 3], opts: {}, bias: false },
  { b: 3, ic: 3, oc: 5, h: 7, w: 9, k: [3, 3], opts: { padding: 1, relu: true }, bias: true },
  { b: 1, ic: 5, oc: 3, h: 8, w: 8, k: [3, 3], opts: { stride: 2, padding: 1 }, bias: true },
  { b: 1, ic: 3, oc: 5, h: 8, w: 8, k: [3, 3], opts: { stride: 2 }, bias: false },
  { b: 3, ic: 3, oc: 5, h: 13, w: 5, k: [1, 1], opts: {}, bias: true },
  { b: 3, ic: 1, oc: 3, h: 13, w: 5, k: [5, 3], opts: { stride: [2, 1], padding: 2 }, bias: true },
  { b: 1, ic: 5, oc: 1, h: 6, w: 7, k: [2, 4], opts: { stride: [3, 2], padding: [1, 2] }, bias: false },
  { b: 2, ic: 6, oc: 9, h: 5, w: 5, k: [3, 3], opts: { padding: 2 }, bias: true },
  { b: 2, ic: 10, oc: 12, h: 5, w: 19, k: [3, 2], opts: { stride: [1, 2], padding: [0, 1] }, bias: true },
  { b: 3, ic: 3, oc: 16, h: 28, w: 28, k: [3, 3], opts: { padding: 1 }, bias: true },
];

function caseName(c: Case): string {
  const o = c.opts;
  return `x [${c.b}, ${c.ic}, ${c.h}, ${c.w}] w [${c.oc}, ${c.ic}, ${c.k.join(', ')}] stride ${JSON.stringify(o.stride ?? 1)} pad ${JSON.stringify(o.padding ?? 0)}${c.bias ? ' bias' : ''}${o.relu ? ' relu' : ''}`;
}

/** The same seeded data on the GPU and on the host. */
function both(e: Engine, shape: number[], seed: number, label: string) {
  const data = randomUniform(
    shape.reduce((a, b) => a * b, 1),
    seed,
  );
  return { gpu: e.tensor(shape, data, label), host: hostTensor(shape, data, label) };
}

describe('conv2d kernels vs reference', () => {
  CASES.forEach((c, ci) => {
    it(caseName(c), async () => {
      const e = await getEngine();
      const seed = 100 * ci;
      const x = both(e, [c.b, c.ic, c.h, c.w], seed + 1, 'x');
      const w = both(e, [c.oc, c.ic, ...c.k], seed + 2, 'w');
      const bias = c.bias ? both(e, [c.oc], seed + 3, 'bias') : null;
      const yShape = conv2dOutputShape(x.host.shape, w.host.shape, c.opts);
      const dy = both(e, yShape, seed + 4, 'dy');
      const y = e.tensor(yShape, undefined, 'y');
      const dx = e.tensor(x.host.shape, undefined, 'dx');
      const dw = e.tensor(w.host.shape, undefined, 'dw');
      const db = c.bias ? e.tensor([c.oc], undefined, 'db') : null;

      e.runOnce(await conv2dForward(e, x.gpu, w.gpu, bias?.gpu ?? null, y, c.opts));
      e.runOnce(await conv2dBackwardInput(e, dy.gpu, w.gpu, dx, c.opts));
      e.runOnce(await conv2dBackwardWeight(e, x.gpu, dy.gpu, dw, db, c.opts));

      const wantY = hostTensor(yShape);
      const wantDx = hostTensor(x.host.shape);
      const wantDw = hostTensor(w.host.shape);
      const wantDb = c.bias ? hostTensor([c.oc]) : null;
      ref.conv2dForward(x.host, w.host, bias?.host ?? null, wantY, c.opts);
      ref.conv2dBackwardInput(dy.host, w.host, wantDx, c.opts);
      ref.conv2dBackwardWeight(x.host, dy.host, wantDw, wantDb, c.opts);

      expectClose(await y.read(), wantY.data, {}, 'conv2d_forward');
      expectClose(await dx.read(), wantDx.data, {}, 'conv2d_backward_input');
      // dw and db sum up to B*OH*OW = 2352 products in f32, in a different order from the reference.
      expectClose(await dw.read(), wantDw.data, { atol: 5e-5, rtol: 1e-4 }, 'conv2d_backward_weight');
      if (db && wantDb) expectClose(await db.read(), wantDb.data, { atol: 5e-5, rtol: 1e-4 }, 'conv2d db');
      for (const t of [x.gpu, w.gpu, bias?.gpu, dy.gpu, y, dx, dw, db]) t?.dispose();
    });
  });

  it('weight gradient is the same for every workgroup size the wrapper may pick', async () => {
    const e = await getEngine();
    const c = CASES[7]; // 10 -> 12 channels, uneven stride and padding
    const x = both(e, [c.b, c.ic, c.h, c.w], 71, 'x');
    const w = both(e, [c.oc, c.ic, ...c.k], 72, 'w');
    const yShape = conv2dOutputShape(x.host.shape, w.host.shape, c.opts);
    const dy = both(e, yShape, 73, 'dy');
    const dw = e.tensor(w.host.shape, undefined, 'dw');
    const db = e.tensor([c.oc], undefined, 'db');
    const wantDw = hostTensor(w.host.shape);
    const wantDb = hostTensor([c.oc]);
    ref.conv2dBackwardWeight(x.host, dy.host, wantDw, wantDb, c.opts);
    const g = conv2dGeometry('test', x.host, w.host, c.opts);
    const blocks = Math.ceil(c.oc / 8) * Math.ceil((c.ic * c.k[0] * c.k[1]) / 8);
    for (const RW of [1, 4, 64]) {
      // 64 is the most that fits: 288 bytes of workgroup memory each
      const k = await e.kernel('conv2d', 'conv2d_backward_weight_bias', { RW });
      e.runOnce(e.dispatch(k, { x: x.gpu, dy: dy.gpu, dw, db }, grid1d(blocks * RW, RW), conv2dParams(g)));
      expectClose(await dw.read(), wantDw.data, { atol: 5e-5, rtol: 1e-4 }, `dw with RW=${RW}`);
      expectClose(await db.read(), wantDb.data, { atol: 5e-5, rtol: 1e-4 }, `db with RW=${RW}`);
    }
    for (const t of [x.gpu, w.gpu, dy.gpu, dw, db]) t.dispose();
  });

  it('replays a dispatch and fuses ReLU only when asked', async () => {
    const e = await getEngine();
    const c = CASES[1];
    const x = both(e, [c.b, c.ic, c.h, c.w], 7, 'x');
    const w = both(e, [c.oc, c.ic, ...c.k], 8, 'w');
    const yShape = conv2dOutputShape(x.host.shape, w.host.shape, { padding: 1 });
    const y = e.tensor(yShape, undefined, 'y');
    const d = await conv2dForward(e, x.gpu, w.gpu, null, y, { padding: 1 });
    e.run(d);
    e.run(d);
    d.dispose();
    const want = hostTensor(yShape);
    ref.conv2dForward(x.host, w.host, null, want, { padding: 1 });
    const got = await y.read();
    expectClose(got, want.data, {}, 'conv2d_forward without relu');
    expect(got.some((v) => v < 0)).toBe(true);
    for (const t of [x.gpu, w.gpu, y]) t.dispose();
  });
});

describe('conv2d reference gradients by finite differences', () => {
  // Tiny shapes with uneven stride and padding on both axes.
  const opts: Conv2dOptions = { stride: [2, 1], padding: [1, 2] };
  const xShape = [2, 2, 5, 4];
  const wShape = [3, 2, 3, 2];
  const yShape = conv2dOutputShape(xShape, wShape, opts);
  const f64 = (shape: number[], seed: number, label: string): HostTensor => ({
    shape,
    label,
    data: Float64Array.from(
      randomUniform(
        shape.reduce((a, b) => a * b, 1),
        seed,
      ),
    ),
  });
  const x = f64(xShape, 1, 'x');
  const w = f64(wShape, 2, 'w');
  const b = f64([wShape[0]], 3, 'b');
  const r = f64(yShape, 4, 'r'); // loss = sum(r * y), so dy = r
  const loss = () => {
    const y: HostTensor = { shape: yShape, data: new Float64Array(r.data.length) };
    ref.conv2dForward(x, w, b, y, opts);
    let s = 0;
    for (let i = 0; i < y.data.length; i++) s += r.data[i] * y.data[i];
    return s;
  };

  it('dx', () => {
    const dx: HostTensor = { shape: xShape, data: new Float64Array(x.data.length) };
    ref.conv2dBackwardInput(r, w, dx, opts);
    checkGradient(loss, x.data as Float64Array, dx.data, {}, 'conv2d dx');
  });

  it('dw and db', () => {
    const dw: HostTensor = { shape: wShape, data: new Float64Array(w.data.length) };
    const db: HostTensor = { shape: [wShape[0]], data: new Float64Array(wShape[0]) };
    ref.conv2dBackwardWeight(x, r, dw, db, opts);
    checkGradient(loss, w.data as Float64Array, dw.data, {}, 'conv2d dw');
    checkGradient(loss, b.data as Float64Array, db.data, {}, 'conv2d db');
  });
});

describe('conv2d shape checks', () => {
  it('rejects a wrong channel count, naming the kernel and both shapes', async () => {
    const e = await getEngine();
    const x = e.tensor([2, 3, 8, 8], undefined, 'x');
    const w = e.tensor([4, 2, 3, 3], undefined, 'w');
    const y = e.tensor([2, 4, 6, 6], undefined, 'y');
    await expect(conv2dForward(e, x, w, null, y)).rejects.toThrow(/conv2d\.conv2d_forward.*"x" \[2, 3, 8, 8\].*"w" \[4, 2, 3, 3\]/);
    await expect(conv2dBackwardWeight(e, x, y, w, null)).rejects.toThrow(/conv2d\.conv2d_backward_weight.*"x" \[2, 3, 8, 8\].*"w" \[4, 2, 3, 3\]/);
    for (const t of [x, w, y]) t.dispose();
  });

  it('rejects an input smaller than the kernel, naming the kernel and both shapes', async () => {
    const e = await getEngine();
    const x = e.tensor([1, 1, 2, 5], undefined, 'x');
    const w = e.tensor([4, 1, 3, 3], undefined, 'w');
    const y = e.tensor([1, 4, 1, 3], undefined, 'y');
    await expect(conv2dForward(e, x, w, null, y)).rejects.toThrow(/conv2d\.conv2d_forward.*"x" \[1, 1, 2, 5\].*smaller than the 3x3 kernel.*"w" \[4, 1, 3, 3\]/);
    await expect(conv2dBackwardInput(e, y, w, x)).rejects.toThrow(/conv2d\.conv2d_backward_input.*"x" \[1, 1, 2, 5\].*"w" \[4, 1, 3, 3\]/);
    // With padding 1 the same input fits.
    await expect(conv2dForward(e, x, w, null, y, { padding: 1 })).rejects.toThrow(/"y" \[1, 4, 1, 3\] should be \[1, 4, 2, 5\]/);
    for (const t of [x, w, y]) t.dispose();
  });

  it('rejects a wrong output, bias or gradient shape', async () => {
    const e = await getEngine();
    const x = e.tensor([2, 3, 8, 8], undefined, 'x');
    const w = e.tensor([4, 3, 3, 3], undefined, 'w');
    const bias = e.tensor([5], undefined, 'bias');
    const y = e.tensor([2, 4, 6, 6], undefined, 'y');
    const dyBad = e.tensor([2, 4, 6, 5], undefined, 'dy');
    await expect(conv2dForward(e, x, w, bias, y)).rejects.toThrow(/conv2d\.conv2d_forward_bias.*"bias" \[5\] should be \[4\].*"w" \[4, 3, 3, 3\]/);
    await expect(conv2dBackwardInput(e, dyBad, w, x)).rejects.toThrow(/conv2d_backward_input.*"dy" \[2, 4, 6, 5\] should be \[2, 4, 6, 6\].*"x" \[2, 3, 8, 8\]/);
    await expect(conv2dForward(e, x, w, null, y, { stride: 0 })).rejects.toThrow(/conv2d_forward.*stride/);
    for (const t of [x, w, bias, y, dyBad]) t.dispose();
  });
});
