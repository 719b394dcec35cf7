// Implicit-GEMM convolution kernels vs the CPU reference on odd shapes (1x1x1 images, channels that
// are not multiples of any tile, strides, paddings 0 to 2, 1x1 to 5x5 kernels, batch 33, GEMM sides
// over 256), in both gradient modes (overwrite and accumulate); errors that name the kernel and the
// shapes; and the measured choice of algorithm.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/gpu/engine.ts';
import { defineShader } from '../src/gpu/shaders.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { buildConvPass, chooseConvAlgorithms, convAlgorithmCandidates, type ConvPass, type ConvSpec } from '../src/kernels/conv-algorithm.ts';
import { CONV_GEMM_TILES, convGemmBackwardInput, convGemmBackwardWeight, convGemmForward, needsPlaneCheck, type ConvGemmTile } from '../src/kernels/conv-gemm.ts';
import { reloadTuneCache } from '../src/kernels/tune.ts';
import { conv2dGeometry, conv2dOutputShape, type Conv2dOptions } from '../src/ops/conv.ts';
import * as ref from '../src/reference/conv2d.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import { randomUniform } from '../src/util/random.ts';
import { expectClose, getEngine, type Tolerance } from './helpers.ts';

// Choices measured by these tests go to a scratch cache, not the project's.
const cacheDir = mkdtempSync(join(tmpdir(), 'wgtrain-conv-tune-'));
const saved = { dir: process.env.WGTRAIN_CACHE_DIR, tune: process.env.WGTRAIN_TUNE };
beforeAll(() => {
  process.env.WGTRAIN_CACHE_DIR = cacheDir;
  delete process.env.WGTRAIN_TUNE;
  reloadTuneCache();
});
afterAll(() => {
  for (const [k, v] of [
    ['WGTRAIN_CACHE_DIR', saved.dir],
    ['WGTRAIN_TUNE', saved.tune],
  ] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  reloadTuneCache();
  rmSync(cacheDir, { recursive: true, force: true });
});

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
  // 1x1 images, 40 of them: a tile's 32 rows span many images.
  { b: 40, ic: 3, oc: 5, h: 1, w: 1, k: [1, 1], opts: {}, bias: true },
  // Patch embeddings (stride = kernel, no padding): the windows tile the input exactly, so the
  // kernels skip the plane test; then one that leaves a remainder (9 = 2*4 + 1), where dx needs it.
  { b: 2, ic: 3, oc: 20, h: 8, w: 12, k: [4, 4], opts: { stride: 4 }, bias: true },
  { b: 2, ic: 3, oc: 5, h: 9, w: 8, k: [4, 4], opts: { stride: 4 }, bias: false },
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

describe('conv_gemm plane test', () => {
  it('is dropped only where no gather can fall off its plane (every small geometry, by enumeration)', () => {
    // Enumerate what each pass reads: forward and weight gradient x at oh*s - p + kh, the input
    // gradient dy at (ih + p - kh) / s for the taps that divide evenly.
    let dropped = 0;
    for (let n = 1; n <= 9; n++) {
      for (let k = 1; k <= Math.min(n + 2, 5); k++) {
        for (let s = 1; s <= 5; s++) {
          for (let p = 0; p <= 2; p++) {
            if (n + 2 * p < k) continue;
            const g = conv2dGeometry('test', { shape: [1, 1, n, 2] }, { shape: [1, 1, k, 1] }, { stride: [s, 1], padding: [p, 0] });
            let fwdLeaves = false;
            let dxLeaves = false;
            for (let o = 0; o < g.outH; o++) for (let t = 0; t < k; t++) if (o * s - p + t < 0 || o * s - p + t >= n) fwdLeaves = true;
            for (let i = 0; i < n; i++) {
              for (let t = 0; t < k; t++) {
                const q = i + p - t;
                if (q % s === 0 && (q < 0 || q / s >= g.outH)) dxLeaves = true;
              }
            }
            expect(needsPlaneCheck(g, 'forward'), `n ${n} k ${k} s ${s} p ${p}`).toBe(fwdLeaves);
            expect(needsPlaneCheck(g, 'backward_weight'), `n ${n} k ${k} s ${s} p ${p}`).toBe(fwdLeaves);
            expect(needsPlaneCheck(g, 'backward_input'), `n ${n} k ${k} s ${s} p ${p}`).toBe(dxLeaves);
            if (!dxLeaves) dropped++;
          }
        }
      }
    }
    expect(dropped).toBeGreaterThan(0);
  });
});

describe('conv_gemm shape checks', () => {
  it('names the kernel and the tensors with their shapes', async () => {
    const e = await getEngine();
    const x = e.tensor([2, 3, 8, 8], undefined, 'x');
    const w = e.tensor([4, 2, 3, 3], undefined, 'w');
    const y = e.tensor([2, 4, 6, 6], undefined, 'y');
    const dw = e.tensor([4, 3, 3, 3], undefined, 'dw');
    const db = e.tensor([5], undefined, 'db');
    await expect(convGemmForward(e, x, w, null, y)).rejects.toThrow(/conv_gemm\.conv_gemm_forward.*"x" \[2, 3, 8, 8\].*"w" \[4, 2, 3, 3\]/);
    await expect(convGemmBackwardInput(e, y, w, x)).rejects.toThrow(/conv_gemm\.conv_gemm_backward_input.*"x" \[2, 3, 8, 8\].*"w" \[4, 2, 3, 3\]/);
    await expect(convGemmBackwardWeight(e, x, y, dw, db)).rejects.toThrow(/conv_gemm\.conv_gemm_backward_weight.*"db" \[5\] should be \[4\]/);
    await expect(convGemmForward(e, x, dw, null, y, { stride: 2 })).rejects.toThrow(/conv_gemm_forward.*"y" \[2, 4, 6, 6\] should be \[2, 4, 3, 3\]/);
    await expect(convGemmForward(e, x, dw, null, y, { tile: '8x8' as ConvGemmTile })).rejects.toThrow(/conv_gemm_forward: no tile "8x8"/);
    for (const t of [x, w, y, dw, db]) t.dispose();
  });

  it('names the limit of its index arithmetic when a shape reaches it', async () => {
    const e = await getEngine();
    // K = IC*KH*KW = 2^22 exactly: only the shapes are checked, nothing is dispatched.
    const x = e.tensor([1, 65536, 8, 8], undefined, 'x');
    const w = e.tensor([1, 65536, 8, 8], undefined, 'w');
    const y = e.tensor([1, 1, 1, 1], undefined, 'y');
    await expect(convGemmForward(e, x, w, null, y)).rejects.toThrow(/conv_gemm_forward: K = IC\*KH\*KW = 4194304 reaches the kernel's index limit of 4194304/);
    for (const t of [x, w, y]) t.dispose();
  });
});

describe('conv algorithm choice', () => {
  const spec: ConvSpec = { input: [3, 5, 9, 8], weight: [18, 5, 3, 3], stride: 2, padding: 1, bias: true, relu: true };
  const opts = { stride: spec.stride, padding: spec.padding, relu: spec.relu };

  it('every algorithm computes every pass (the dispatches a layer plans with)', async () => {
    const e = await getEngine();
    const c: Case = { b: 3, ic: 5, oc: 18, h: 9, w: 8, k: [3, 3], opts, bias: true };
    const x = both(e, [c.b, c.ic, c.h, c.w], 1, 'x');
    const w = both(e, [c.oc, c.ic, 3, 3], 2, 'w');
    const bias = both(e, [c.oc], 3, 'bias');
    const yShape = conv2dOutputShape(x.host.shape, w.host.shape, opts);
    const dy = both(e, yShape, 4, 'dy');
    const want = { y: hostTensor(yShape), dx: hostTensor(x.host.shape), dw: hostTensor(w.host.shape), db: hostTensor([c.oc]) };
    ref.conv2dForward(x.host, w.host, bias.host, want.y, opts);
    ref.conv2dBackwardInput(dy.host, w.host, want.dx, opts);
    ref.conv2dBackwardWeight(x.host, dy.host, want.dw, want.db, opts);
    for (const algorithm of ['direct', 'im2col', 'gemm']) {
      const out = { y: e.tensor(yShape, undefined, 'y'), dx: e.tensor(x.host.shape, undefined, 'dx'), dw: e.tensor(w.host.shape, undefined, 'dw'), db: e.tensor([c.oc], undefined, 'db') };
      const io = { x: x.gpu, w: w.gpu, bias: bias.gpu, dy: dy.gpu, ...out };
      for (const pass of ['forward', 'backward_input', 'backward_weight'] as ConvPass[]) {
        const plan = await buildConvPass(e, pass, algorithm, io, opts);
        e.run(...plan.dispatches);
        plan.dispose();
      }
      expectClose(await out.y.read(), want.y.data, sumTol(45), `${algorithm} forward`);
      expectClose(await out.dx.read(), want.dx.data, sumTol(162), `${algorithm} input gradient`);
      expectClose(await out.dw.read(), want.dw.data, sumTol(60), `${algorithm} weight gradient`);
      expectClose(await out.db.read(), want.db.data, sumTol(60), `${algorithm} bias gradient`);
      for (const t of Object.values(out)) t.dispose();
    }
    for (const t of [x.gpu, w.gpu, bias.gpu, dy.gpu]) t.dispose();
  });

  it('a pass missing a tensor is refused, naming it', async () => {
    const e = await getEngine();
    const dy = e.tensor([1, 2, 3, 3], undefined, 'dy');
    const w = e.tensor([2, 1, 3, 3], undefined, 'w');
    await expect(buildConvPass(e, 'backward_input', 'gemm', { dy, w }, { padding: 1 })).rejects.toThrow(/backward_input \(gemm\): tensor "dx" was not given/);
    for (const t of [dy, w]) t.dispose();
  });

  it('measures each pass once, says why, and reuses the choice (in memory, then from disk)', async () => {
    const e = await getEngine();
    const first = await chooseConvAlgorithms(e, spec);
    for (const [pass, c] of Object.entries(first)) {
      expect(c.reason, pass).toMatch(/fastest measured: .*\d ms/);
      expect(c.reason, pass).toContain(c.tile ? `gemm:${c.tile}` : c.algorithm);
      // The chosen candidate was measured and was fastest.
      const mine = c.seconds[c.tile ? `gemm:${c.tile}` : c.algorithm];
      expect(mine, pass).toBeLessThan(Infinity);
      for (const s of Object.values(c.seconds)) expect(mine, pass).toBeLessThanOrEqual(s as number);
      if (c.algorithm === 'direct') expect(c.scratchBytes).toBe(0);
      if (c.algorithm === 'im2col') expect(c.scratchBytes).toBe(4 * 3 * 5 * 4 * (45 + 18)); // col [M, K] + rows [M, OC], M = 3*5*4
    }
    expect(await chooseConvAlgorithms(e, spec)).toEqual(first);
    // A new engine on the same adapter reads the choice from the disk cache.
    const other = await Engine.create({ log: () => {} });
    try {
      const again = await chooseConvAlgorithms(other, spec);
      for (const k of Object.keys(first) as (keyof typeof first)[]) {
        expect(again[k].algorithm).toBe(first[k].algorithm);
        expect(again[k].tile).toBe(first[k].tile);
        expect(again[k].reason).toMatch(/earlier run on this adapter/);
      }
    } finally {
      other.destroy();
    }
  });

  it('never picks a candidate that computes wrongly, however fast', async () => {
    // An implicit GEMM that sums only the first four k: the fastest forward by far, and wrong.
    const source = readFileSync(new URL('../shaders/conv_gemm.wgsl', import.meta.url), 'utf8');
    const broken = source.replace('for (var k = 0u; k < K; k += 4u) {', 'for (var k = 0u; k < min(K, 4u); k += 4u) {');
    expect(broken).not.toBe(source);
    defineShader('conv_gemm', broken);
    const e = await Engine.create({ log: () => {} });
    const warn = console.warn;
    const warnings: string[] = [];
    console.warn = (m: string) => warnings.push(m);
    try {
      const wide: ConvSpec = { input: [2, 16, 10, 10], weight: [32, 16, 3, 3], padding: 1, bias: false, relu: false };
      const c = await chooseConvAlgorithms(e, wide, { passes: ['forward'] });
      expect(c.forward.algorithm).not.toBe('gemm');
      const gemm = Object.entries(c.forward.seconds).filter(([v]) => v.startsWith('gemm'));
      expect(gemm.length).toBeGreaterThan(0);
      for (const [, s] of gemm) expect(s).toBe(Infinity);
      expect(c.forward.reason).toMatch(/gemm:\S+ failed its check/);
      expect(warnings.join('\n')).toMatch(/candidate gemm:\S+ computed y\[/);
    } finally {
      console.warn = warn;
      defineShader('conv_gemm', source);
      e.destroy();
    }
  });

  it('WGTRAIN_TUNE=0 takes the first candidate without measuring, and says so', async () => {
    const e = await getEngine();
    process.env.WGTRAIN_TUNE = '0';
    try {
      const fresh: ConvSpec = { input: [2, 3, 6, 5], weight: [7, 3, 3, 3], padding: 1, bias: false, relu: false };
      const c = await chooseConvAlgorithms(e, fresh);
      for (const pass of ['forward', 'backward_input', 'backward_weight'] as ConvPass[]) {
        const key = pass === 'forward' ? 'forward' : pass === 'backward_input' ? 'backwardInput' : 'backwardWeight';
        expect(`${c[key].algorithm}${c[key].tile ? `:${c[key].tile}` : ''}`).toBe(convAlgorithmCandidates(e, fresh, pass).heuristic);
        expect(c[key].seconds).toEqual({});
        expect(c[key].reason).toMatch(/WGTRAIN_TUNE=0/);
      }
    } finally {
      delete process.env.WGTRAIN_TUNE;
    }
  });

  it('offers im2col only when its col scratch fits the binding limit, gemm only with subgroups, every algorithm for sums', () => {
    const adapter = (limit: number, features: string[]) => ({ adapter: { name: 'test adapter', features, limits: { maxStorageBufferBindingSize: limit } } }) as unknown as Engine;
    const big = convAlgorithmCandidates(adapter(2 ** 30, ['subgroups']), spec, 'forward');
    expect(big.candidates).toEqual(['gemm:32x32', 'gemm:32x16', 'im2col', 'direct']);
    // col [B*OH*OW, IC*KH*KW] = [60, 45] floats: 10,800 bytes.
    const small = convAlgorithmCandidates(adapter(10799, ['subgroups']), spec, 'backward_weight');
    expect(small.candidates).not.toContain('im2col');
    expect(small.excluded.join()).toMatch(/im2col needs col .* = \[60, 45\], 10800 bytes, over the adapter's maxStorageBufferBindingSize of 10799/);
    const none = convAlgorithmCandidates(adapter(2 ** 30, []), spec, 'forward');
    expect(none.candidates).toEqual(['im2col', 'direct']);
    expect(none.excluded.join()).toMatch(/gemm needs 'subgroups'.*"test adapter"/);
    // Every algorithm adds into gradients: a layer whose gradients sum keeps all candidates.
    const summing = { ...spec, accumulate: true };
    for (const pass of ['forward', 'backward_input', 'backward_weight'] as const) {
      expect(convAlgorithmCandidates(adapter(2 ** 30, ['subgroups']), summing, pass).candidates, pass).toEqual(convAlgorithmCandidates(adapter(2 ** 30, ['subgroups']), spec, pass).candidates);
    }
  });
});
