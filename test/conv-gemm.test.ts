// Implicit-GEMM convolution kernels vs the CPU reference on odd shapes (1x1x1 images, channels that
// are not multiples of any tile, strides, paddings 0 to 2, 1x1 to 5x5 kernels, batch 33, GEMM sides
// over 256), in both gradient modes (overwrite and accumulate); errors that name the kernel and the
// shapes; and the measured choice of algorithm.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/gpu/engine.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { CONV_GEMM_TILES, convGemmBackwardInput, convGemmBackwardWeight, convGemmForward, type ConvGemmTile } from '../src/kernels/conv-gemm.ts';
import { conv2dOutputShape, type Conv2dOptions } from '../src/ops/conv.ts';
import * as ref from '../src/reference/conv2d.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import { randomUniform } from '../src/util/random.ts';
import { expectClose, getEngine, type Tolerance } from './helpers.ts';

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
  { b: 1, ic: 1, oc: 1, h: 1, w: 1, k: [1, 1], opts: {}, bias: true },
  { b: 3, ic: 5, oc: 7, h: 7, w: 9, k: [3, 3], opts: { padding: 1, relu: true }, bias: true },
  { b: 2, ic: 3, oc: 19, h: 9, w: 8, k: [3, 3], opts: { stride: 2, padding: 1 }, bias: false },
  { b: 2, ic: 6, oc: 10, h: 11, w: 7, k: [1, 1], opts: { stride: 2 }, bias: false },
  { b: 3, ic: 5, oc: 3, h: 13, w: 5, k: [1, 1], opts: {}, bias: true },
  { b: 1, ic: 7, oc: 5, h: 8, w: 9, k: [5, 5], opts: { padding: 2 }, bias: true },
  { b: 2, ic: 2, oc: 9, h: 6, w: 7, k: [2, 4], opts: { stride: [3, 2], padding: [1, 2] }, bias: true },
  { b: 2, ic: 4, oc: 6, h: 5, w: 5, k: [3, 3], opts: { padding: 2, relu: true }, bias: true },
  { b: 33, ic: 3, oc: 17, h: 5, w: 6, k: [3, 3], opts: {}, bias: true },
  // M = B*OH*OW = 364 over 256, and dx's M = B*H*W too.
  { b: 2, ic: 3, oc: 33, h: 13, w: 14, k: [3, 3], opts: { padding: 1 }, bias: true },
  // N = OC = 260 over 256 (forward and weight gradient), K = OC*KH*KW = 2340 for the input gradient.
  { b: 1, ic: 2, oc: 260, h: 5, w: 4, k: [3, 3], opts: { padding: 1 }, bias: true },
  // K = IC*KH*KW = 333 over 256 (forward), and the weight gradient's M = 333 rows.
  { b: 2, ic: 37, oc: 6, h: 5, w: 5, k: [3, 3], opts: { stride: 2, padding: 1 }, bias: false },
];

function caseName(c: Case): string {
  const o = c.opts;
  return `x [${c.b}, ${c.ic}, ${c.h}, ${c.w}] w [${c.oc}, ${c.ic}, ${c.k.join(', ')}] stride ${JSON.stringify(o.stride ?? 1)} pad ${JSON.stringify(o.padding ?? 0)}${c.bias ? ' bias' : ''}${o.relu ? ' relu' : ''}`;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The same seeded data on the GPU and on the host. */
function both(e: Engine, shape: number[], seed: number, label: string): { gpu: Tensor; host: HostTensor } {
  const data = randomUniform(size(shape), seed);
  return { gpu: e.tensor(shape, data, label), host: hostTensor(shape, data, label) };
}

/**
 * Tolerance for sums of `terms` products of values in [-1, 1], in f32 and in another order than
 * the reference's float64: rounding grows with the number of terms (about sqrt(terms) ulps of the
 * partial sums, which reach sqrt(terms) in size), so the absolute part scales with `terms`.
 */
function sumTol(terms: number): Tolerance {
  return { atol: Math.max(1e-5, 2e-7 * terms), rtol: 1e-4 };
}

/** Every pass of one case, with one tile (or each pass's default), checked against the reference. */
async function checkCase(e: Engine, c: Case, seed: number, tile?: ConvGemmTile): Promise<void> {
  const x = both(e, [c.b, c.ic, c.h, c.w], seed + 1, 'x');
  const w = both(e, [c.oc, c.ic, ...c.k], seed + 2, 'w');
  const bias = c.bias ? both(e, [c.oc], seed + 3, 'bias') : null;
  const yShape = conv2dOutputShape(x.host.shape, w.host.shape, c.opts);
  const dy = both(e, yShape, seed + 4, 'dy');
  // Gradient buffers start from known values, so that accumulate mode can be checked against them.
  const dx0 = randomUniform(size(x.host.shape), seed + 5);
  const dw0 = randomUniform(size(w.host.shape), seed + 6);
  const db0 = randomUniform(c.oc, seed + 7);
  const y = e.tensor(yShape, undefined, 'y');
  const dx = e.tensor(x.host.shape, dx0, 'dx');
  const dw = e.tensor(w.host.shape, dw0, 'dw');
  const db = c.bias ? e.tensor([c.oc], db0, 'db') : null;
  const grad = { stride: c.opts.stride, padding: c.opts.padding, tile };

  const wantY = hostTensor(yShape);
  const wantDx = hostTensor(x.host.shape);
  const wantDw = hostTensor(w.host.shape);
  const wantDb = hostTensor([c.oc]);
  ref.conv2dForward(x.host, w.host, bias?.host ?? null, wantY, c.opts);
  ref.conv2dBackwardInput(dy.host, w.host, wantDx, c.opts);
  ref.conv2dBackwardWeight(x.host, dy.host, wantDw, c.bias ? wantDb : null, c.opts);
  const plus = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v + b[i]);
  const positions = c.b * yShape[2] * yShape[3];
  const tolY = sumTol(c.ic * c.k[0] * c.k[1]);
  const tolDx = sumTol(c.oc * c.k[0] * c.k[1]);
  const tolDw = sumTol(positions);
  const name = (pass: string) => `${pass}${tile ? ` (tile ${tile})` : ''}`;

  for (const accumulate of [true, false]) {
    const mode = accumulate ? ' accumulate' : '';
    e.runOnce(await convGemmBackwardInput(e, dy.gpu, w.gpu, dx, { ...grad, accumulate }));
    const weight = await convGemmBackwardWeight(e, x.gpu, dy.gpu, dw, db, { ...grad, accumulate });
    e.run(...weight);
    for (const d of weight) d.dispose();
    expectClose(await dx.read(), accumulate ? plus(dx0, wantDx.data) : wantDx.data, tolDx, name(`conv_gemm_backward_input${mode}`));
    expectClose(await dw.read(), accumulate ? plus(dw0, wantDw.data) : wantDw.data, tolDw, name(`conv_gemm_backward_weight${mode}`));
    if (db) expectClose(await db.read(), accumulate ? plus(db0, wantDb.data) : wantDb.data, tolDw, name(`conv_gemm db${mode}`));
  }
  e.runOnce(await convGemmForward(e, x.gpu, w.gpu, bias?.gpu ?? null, y, { ...c.opts, tile }));
  expectClose(await y.read(), wantY.data, tolY, name('conv_gemm_forward'));
  for (const t of [x.gpu, w.gpu, bias?.gpu, dy.gpu, y, dx, dw, db]) t?.dispose();
}

describe('conv_gemm kernels vs reference', () => {
  CASES.forEach((c, ci) => {
    it(caseName(c), async () => {
      await checkCase(await getEngine(), c, 100 * ci);
    });
  });

  it('every tile computes the same (stride 2, padding 1, channels off every tile)', async () => {
    const e = await getEngine();
    const c: Case = { b: 2, ic: 5, oc: 21, h: 9, w: 7, k: [3, 3], opts: { stride: 2, padding: 1, relu: true }, bias: true };
    for (const tile of CONV_GEMM_TILES) await checkCase(e, c, 7, tile);
  });
});
