// Matmul kernels (every variant, every transpose combination, with and without the fused bias and
// activation, 2-D and batched, overwriting and accumulating) and the bias gradient vs the CPU
// reference; the reference's backward formulas vs finite differences; shape errors; the tuner's
// contract (not its choices).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src/gpu/engine.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { ACTIVATIONS, type Activation } from '../src/kernels/activation.ts';
import { batchedMatmul, biasGrad, chooseMatmulVariant, defaultMatmulVariant, matmul, MATMUL_VARIANTS, matmulShapeClass, matmulVariantsFor, stridedMatmul, type StridedDims, type StridedOperand } from '../src/kernels/matmul.ts';
import { hostTensor } from '../src/reference/host.ts';
import { adapterKey, forgetTuning, reloadTuneCache, timeDispatch } from '../src/kernels/tune.ts';
import * as ref from '../src/reference/matmul.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine, ODD_SHAPES_MNK } from './helpers.ts';

// Choices tuned by these tests go to a scratch cache, not the project's.
const cacheDir = mkdtempSync(join(tmpdir(), 'wgtrain-matmul-test-'));
const savedCacheDir = process.env.WGTRAIN_CACHE_DIR;
beforeAll(() => {
  process.env.WGTRAIN_CACHE_DIR = cacheDir;
  reloadTuneCache();
});
afterAll(() => {
  if (savedCacheDir === undefined) delete process.env.WGTRAIN_CACHE_DIR;
  else process.env.WGTRAIN_CACHE_DIR = savedCacheDir;
  reloadTuneCache();
  rmSync(cacheDir, { recursive: true, force: true });
});

const TRANSPOSES: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

/**
 * f32 sums of K products of values in [-1, 1] drift from the float64 reference by rounding errors
 * that grow like sqrt(K) times the size of the terms (and the order of summation differs between
 * variants), so the absolute tolerance scales with sqrt(K); GPU exp/tanh in the activations are
 * accurate to a few ulp, which rtol covers.
 */
const tolFor = (K: number) => ({ atol: 1e-5 * Math.sqrt(K), rtol: 1e-4 });

interface Case {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  activation?: Activation;
}

function caseName(c: Case): string {
  return `${c.M}x${c.N}x${c.K} ${c.transA ? 'T' : 'N'}${c.transB ? 'T' : 'N'}${c.bias ? ' +bias' : ''}${c.activation ? ` ${c.activation}` : ''}`;
}

// Inputs and the reference result per case, shared by the variants.
const expected = new Map<string, { a: Float32Array; b: Float32Array; bias: Float32Array; c: Float32Array }>();

function reference(c: Case) {
  const key = caseName(c);
  let r = expected.get(key);
  if (!r) {
    const a = randomUniform(c.M * c.K, c.M * 7 + c.K);
    const b = randomUniform(c.K * c.N, c.N * 13 + c.K);
    const bias = randomUniform(c.N, c.N + 5);
    const out = new Float32Array(c.M * c.N);
    ref.matmul(a, b, out, c.M, c.N, c.K, { transA: c.transA, transB: c.transB, bias: c.bias ? bias : undefined, activation: c.activation, alpha: 0.1 });
    r = { a, b, bias, c: out };
    expected.set(key, r);
  }
  return r;
}

async function runCase(e: Engine, variant: string, c: Case): Promise<void> {
  const r = reference(c);
  const a = e.tensor(c.transA ? [c.K, c.M] : [c.M, c.K], r.a, 'a');
  const b = e.tensor(c.transB ? [c.N, c.K] : [c.K, c.N], r.b, 'b');
  const bias = c.bias ? e.tensor([c.N], r.bias, 'bias') : undefined;
  const out = e.tensor([c.M, c.N], undefined, 'c');
  e.fill(out, NaN); // every element must be written
  e.runOnce(await matmul(e, a, b, out, { transA: c.transA, transB: c.transB, bias, activation: c.activation, alpha: 0.1, variant }));
  expectClose(await out.read(), r.c, tolFor(c.K), `matmul ${variant} ${caseName(c)}`);
  for (const t of [a, b, out, bias]) t?.dispose();
}

function supported(e: Engine, variant: string): boolean {
  return matmulVariantsFor(e).includes(variant);
}

describe('matmul variants vs reference', () => {
  for (const variant of MATMUL_VARIANTS) {
    describe(variant, () => {
      for (const [M, N, K] of ODD_SHAPES_MNK) {
        it(`${M}x${N}x${K}, all transposes, plain and with bias + gelu`, async (ctx) => {
          const e = await getEngine();
          if (!supported(e, variant)) ctx.skip();
          for (const [transA, transB] of TRANSPOSES) {
            await runCase(e, variant, { M, N, K, transA, transB, bias: false });
            await runCase(e, variant, { M, N, K, transA, transB, bias: true, activation: 'gelu' });
          }
        });
      }
    });
  }

  // The epilogue is shared by the variants of one shader file: check every activation once per file
  // (each bias/activation pair is a pipeline to compile, so bias alternates).
  for (const variant of ['blocked', 'quad16x8']) {
    it(`${variant}: every activation`, async (ctx) => {
      const e = await getEngine();
      if (!supported(e, variant)) ctx.skip();
      for (const [i, activation] of ACTIVATIONS.entries()) {
        await runCase(e, variant, { M: 37, N: 21, K: 19, transA: i % 2 === 1, transB: true, bias: i % 2 === 0, activation });
      }
    });
  }

  it('the default (tuned) choice computes the product too', async () => {
    const e = await getEngine();
    const r = reference({ M: 127, N: 33, K: 65, transA: false, transB: true, bias: true, activation: 'relu' });
    const a = e.tensor([127, 65], r.a, 'x');
    const b = e.tensor([33, 65], r.b, 'w');
    const bias = e.tensor([33], r.bias, 'b');
    const y = e.tensor([127, 33], undefined, 'y');
    e.runOnce(await matmul(e, a, b, y, { transB: true, bias, activation: 'relu' }));
    expectClose(await y.read(), r.c, tolFor(65), 'matmul default variant');
    for (const t of [a, b, bias, y]) t.dispose();
  });
});

describe('strided matmul (matrices inside larger tensors) vs loops', () => {
  // Attention's layout, with odd sizes: B samples of T tokens, H heads of width dh, qkv [B, T, 3D].
  const [B, T, H, dh] = [2, 7, 3, 5];
  const D = H * dh;
  type Op = Omit<StridedOperand, 'tensor'>;

  /** c[...] (+)= op(A)·op(B) element by element, for the same strides the kernel gets. */
  function loops(a: Float32Array, b: Float32Array, c: Float32Array, A: Op, Bo: Op, C: Omit<Op, 'col'>, d: StridedDims, accumulate: boolean) {
    for (let g = 0; g < d.groups; g++) {
      for (let h = 0; h < d.perGroup; h++) {
        for (let m = 0; m < d.M; m++) {
          for (let n = 0; n < d.N; n++) {
            let s = 0;
            for (let k = 0; k < d.K; k++) s += a[A.offset + g * A.group + h * A.matrix + m * A.row + k * A.col] * b[Bo.offset + g * Bo.group + h * Bo.matrix + k * Bo.row + n * Bo.col];
            const i = C.offset + g * C.group + h * C.matrix + m * C.row + n;
            c[i] = (accumulate ? c[i] : 0) + s;
          }
        }
      }
    }
  }

  const dims = (M: number, N: number, K: number): StridedDims => ({ M, N, K, groups: B, perGroup: H });
  const qkvAt = (part: number, transposed: boolean): Op => ({ offset: part * D, group: T * 3 * D, matrix: dh, row: transposed ? 1 : 3 * D, col: transposed ? 3 * D : 1 });
  const packed = (rows: number, cols: number, transposed = false): Op => ({ offset: 0, group: H * rows * cols, matrix: rows * cols, row: transposed ? 1 : cols, col: transposed ? cols : 1 });
  const CASES: { name: string; a: [number, Op]; b: [number, Op]; c: [number, Omit<Op, 'col'>]; d: StridedDims; accumulate: boolean }[] = [
    // S = q·kᵀ from one [B, T, 3D] tensor into packed [B, H, T, T].
    { name: 'q·kᵀ', a: [B * T * 3 * D, qkvAt(0, false)], b: [B * T * 3 * D, qkvAt(1, true)], c: [B * H * T * T, packed(T, T)], d: dims(T, T, dh), accumulate: false },
    // out = P·v into the heads' columns of [B, T, D] (rows D apart).
    { name: 'P·v', a: [B * H * T * T, packed(T, T)], b: [B * T * 3 * D, qkvAt(2, false)], c: [B * T * D, { offset: 0, group: T * D, matrix: dh, row: D }], d: dims(T, dh, T), accumulate: false },
    // dk += dSᵀ·q into the k columns of a [B, T, 3D] gradient, the rest left alone.
    { name: 'dSᵀ·q +=', a: [B * H * T * T, packed(T, T, true)], b: [B * T * 3 * D, qkvAt(0, false)], c: [B * T * 3 * D, { offset: D, group: T * 3 * D, matrix: dh, row: 3 * D }], d: dims(T, dh, T), accumulate: true },
  ];

  for (const variant of MATMUL_VARIANTS) {
    it(`${variant}: attention's products, reading and writing strided views, other elements untouched`, async (ctx) => {
      const e = await getEngine();
      if (!supported(e, variant)) ctx.skip();
      for (const [i, c] of CASES.entries()) {
        const a = randomUniform(c.a[0], 10 + i);
        const b = randomUniform(c.b[0], 20 + i);
        const want = randomUniform(c.c[0], 30 + i); // what lies outside the written matrices must stay
        const [ta, tb, tc] = [e.tensor([c.a[0]], a, 'a'), e.tensor([c.b[0]], b, 'b'), e.tensor([c.c[0]], want, 'c')];
        loops(a, b, want, c.a[1], c.b[1], c.c[1], c.d, c.accumulate);
        e.runOnce(await stridedMatmul(e, { tensor: ta, ...c.a[1] }, { tensor: tb, ...c.b[1] }, { tensor: tc, ...c.c[1] }, c.d, { accumulate: c.accumulate, variant }));
        expectClose(await tc.read(), want, tolFor(c.d.K), `${variant} ${c.name}`);
        for (const t of [ta, tb, tc]) t.dispose();
      }
    });
  }

  it('refuses operands that reach past their tensor, naming it', async () => {
    const e = await getEngine();
    // k's last element (sample 1, head 2, token 6, column 4) is element 614 of a [B, T, 3D] qkv; q's is 599.
    const [qkv, s] = [e.tensor([614], undefined, 'qkv'), e.tensor([B * H * T * T], undefined, 'scores')];
    await expect(stridedMatmul(e, { tensor: qkv, ...qkvAt(0, false) }, { tensor: qkv, ...qkvAt(1, true) }, { tensor: s, ...packed(T, T) }, dims(T, T, dh))).rejects.toThrow(
      /matmul \(strided\): B "qkv" \[614\] holds 614 elements, but 2x3 matrices of 5x7 at offset 15 .* reach element 614/,
    );
    await expect(stridedMatmul(e, { tensor: qkv, ...qkvAt(0, false) }, { tensor: qkv, ...qkvAt(1, true) }, { tensor: s, ...packed(T, T) }, { ...dims(T, T, dh), K: 0 })).rejects.toThrow(/K = 0 must be a positive integer/);
    for (const t of [qkv, s]) t.dispose();
  });
});

describe('batched matmul vs reference', () => {
  // [G, M, N, K, a batched, b batched]: 3-D and 2-D (shared) operands, odd sizes.
  const BATCHES: [number, number, number, number, boolean, boolean][] = [
    [1, 1, 1, 1, true, true],
    [3, 5, 7, 9, true, true],
    [4, 37, 21, 19, false, true],
    [5, 33, 65, 17, true, false],
  ];

  /** Runs one batched case; with `accumulate`, c starts from seeded values and must end at prefill + product. */
  async function batchedCase(e: Engine, variant: string | undefined, [G, M, N, K, aB, bB]: (typeof BATCHES)[number], transA: boolean, transB: boolean, accumulate: boolean) {
    const aShape = [...(aB ? [G] : []), ...(transA ? [K, M] : [M, K])];
    const bShape = [...(bB ? [G] : []), ...(transB ? [N, K] : [K, N])];
    const a = hostTensor(aShape, randomUniform((aB ? G : 1) * M * K, 1 + M), 'a');
    const b = hostTensor(bShape, randomUniform((bB ? G : 1) * K * N, 2 + N), 'b');
    const want = hostTensor([G, M, N], randomUniform(G * M * N, 3 + K), 'c');
    const [ta, tb] = [e.tensor(a.shape, a.data, 'a'), e.tensor(b.shape, b.data, 'b')];
    const tc = e.tensor(want.shape, accumulate ? want.data : undefined, 'c');
    if (!accumulate) e.fill(tc, NaN); // every element must be written
    ref.batchedMatmul(a, b, want, { transA, transB, accumulate });
    e.runOnce(await batchedMatmul(e, ta, tb, tc, { transA, transB, accumulate, variant }));
    const name = `batched ${variant ?? 'default'} G=${G} ${M}x${N}x${K} a${aB ? '3' : '2'}-D b${bB ? '3' : '2'}-D ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}${accumulate ? ' +=' : ''}`;
    expectClose(await tc.read(), want.data, tolFor(K), name);
    for (const t of [ta, tb, tc]) t.dispose();
  }

  for (const variant of MATMUL_VARIANTS) {
    it(`${variant}: 3-D and shared 2-D operands, every transpose, overwriting and accumulating`, async (ctx) => {
      const e = await getEngine();
      if (!supported(e, variant)) ctx.skip();
      for (const [i, shape] of BATCHES.entries()) {
        const [transA, transB] = TRANSPOSES[i % 4];
        await batchedCase(e, variant, shape, transA, transB, false);
        await batchedCase(e, variant, shape, !transA, transB, true);
      }
    });
  }

  it('the default (tuned) choice; 2-D matmul accumulates too', async () => {
    const e = await getEngine();
    await batchedCase(e, undefined, [7, 20, 12, 30, true, true], false, true, false);
    const [M, N, K] = [29, 13, 31];
    const a = randomUniform(M * K, 4);
    const b = randomUniform(K * N, 5);
    const want = randomUniform(M * N, 6);
    const [ta, tb, tc] = [e.tensor([M, K], a, 'a'), e.tensor([K, N], b, 'b'), e.tensor([M, N], want, 'c')];
    e.runOnce(await matmul(e, ta, tb, tc, { accumulate: true }));
    ref.matmul(a, b, want, M, N, K, { accumulate: true });
    expectClose(await tc.read(), want, tolFor(K), 'matmul accumulate (default variant)');
    for (const t of [ta, tb, tc]) t.dispose();
  });

  it('rejects bad batches, naming the kernel and the shapes', async () => {
    const e = await getEngine();
    const t = (shape: number[], label: string) => e.tensor(shape, undefined, label);
    const [a, b, c] = [t([3, 2, 4], 'q'), t([2, 4, 5], 'k'), t([3, 2, 5], 's')];
    await expect(batchedMatmul(e, a, b, c)).rejects.toThrow(/matmul \(batched\).*"k" \[2, 4, 5\] holds 2 matrices.*"s" \[3, 2, 5\] holds 3/);
    const [a2, c2] = [t([3, 2, 6], 'q6'), t([3, 2], 's2')];
    await expect(batchedMatmul(e, a2, t([4, 5], 'w'), c)).rejects.toThrow(/matmul \(batched\).*inner dimensions differ \(6 and 4\).*"q6" \[3, 2, 6\].*"w" \[4, 5\]/);
    await expect(batchedMatmul(e, a, t([4, 5], 'w2'), c2)).rejects.toThrow(/matmul \(batched\).*"s2" \[3, 2\] must be 3-D/);
    // G beyond the grid's z limit: the limit is named.
    const [ga, gb, gc] = [t([65536, 1, 1], 'ga'), t([1, 1], 'gb'), t([65536, 1, 1], 'gc')];
    await expect(batchedMatmul(e, ga, gb, gc)).rejects.toThrow(/matmul \(batched\).*"gc" \[65536, 1, 1\] holds 65536 matrices.*at most 65535/);
    for (const x of [a, b, c, a2, c2, ga, gb, gc]) x.dispose();
  });
});

describe('biasGrad vs reference', () => {
  const shapes: [number, number][] = [
    [1, 1],
    [3, 5],
    [127, 33],
    [257, 263],
    [1000, 3],
  ];
  for (const [M, N] of shapes) {
    it(`${M}x${N}`, async () => {
      const e = await getEngine();
      const dyData = randomUniform(M * N, M + N);
      const dy = e.tensor([M, N], dyData, 'dy');
      const db = e.tensor([N], undefined, 'db');
      e.runOnce(await biasGrad(e, dy, db));
      const want = new Float32Array(N);
      ref.biasGrad(dyData, want, M, N);
      // A sum of M values in [-1, 1]: rounding grows like sqrt(M).
      expectClose(await db.read(), want, { atol: 1e-6 * Math.sqrt(M), rtol: 1e-5 }, `biasGrad ${M}x${N}`);
      dy.dispose();
      db.dispose();
    });
  }
});

describe("biasGrad accumulates; it sums a broadcast operand's gradient", () => {
  it('db += column sums of dy viewed as [rows, b.size]', async () => {
    const e = await getEngine();
    // y = a + b with a [B, T, D] and b [T, D]: db = sum over B of dy, i.e. biasGrad of dy viewed [B, T*D].
    const [B, T, D] = [5, 3, 7];
    const dyData = randomUniform(B * T * D, 21);
    const prefill = randomUniform(T * D, 22);
    const dy = e.tensor([B, T, D], dyData, 'dy');
    const db = e.tensor([T, D], prefill, 'db');
    e.runOnce(await biasGrad(e, dy.view([B, T * D]), db.view([T * D]), { accumulate: true }));
    const want = Float32Array.from(prefill);
    ref.biasGrad(dyData, want, B, T * D, { accumulate: true });
    // The reference, spelled out: prefill + the sum over the broadcast dimension.
    const direct = prefill.map((p, i) => p + [...Array(B).keys()].reduce((s, b) => s + dyData[b * T * D + i], 0));
    expectClose(want, direct, {}, 'reference biasGrad accumulate');
    expectClose(await db.read(), want, {}, 'biasGrad accumulate');
    dy.dispose();
    db.dispose();
  });
});

describe('Dense backward with the GPU kernels', () => {
  it('dX = dY·W, dW = dYᵀ·X, db = biasGrad(dY) match the reference backward of y = x·Wᵀ + b', async () => {
    const e = await getEngine();
    const [B, IN, OUT] = [37, 29, 11];
    const x = randomUniform(B * IN, 1);
    const w = randomUniform(OUT * IN, 2);
    const dy = randomUniform(B * OUT, 3);
    const want = { dx: new Float32Array(B * IN), dw: new Float32Array(OUT * IN), db: new Float32Array(OUT) };
    ref.matmulBackward(x, w, dy, want.dx, want.dw, want.db, B, OUT, IN, { transB: true });
    const t = {
      x: e.tensor([B, IN], x, 'x'),
      w: e.tensor([OUT, IN], w, 'W'),
      dy: e.tensor([B, OUT], dy, 'dy'),
      dx: e.tensor([B, IN], undefined, 'dx'),
      dw: e.tensor([OUT, IN], undefined, 'dW'),
      db: e.tensor([OUT], undefined, 'db'),
    };
    e.runOnce(await matmul(e, t.dy, t.w, t.dx));
    e.runOnce(await matmul(e, t.dy, t.x, t.dw, { transA: true }));
    e.runOnce(await biasGrad(e, t.dy, t.db));
    expectClose(await t.dx.read(), want.dx, tolFor(OUT), 'dx');
    expectClose(await t.dw.read(), want.dw, tolFor(B), 'dW');
    expectClose(await t.db.read(), want.db, tolFor(B), 'db');
    for (const v of Object.values(t)) v.dispose();
  });
});

describe('matmul reference gradients by finite differences', () => {
  const [M, N, K] = [3, 4, 5];
  for (const [transA, transB] of TRANSPOSES) {
    it(`C = op(A)·op(B) + bias, transA=${transA} transB=${transB}`, () => {
      const a = Float64Array.from(randomUniform(M * K, 11));
      const b = Float64Array.from(randomUniform(K * N, 12));
      const bias = Float64Array.from(randomUniform(N, 13));
      const w = Float64Array.from(randomUniform(M * N, 14)); // dL/dC for L = sum(w ⊙ C)
      const loss = () => {
        const c = new Float64Array(M * N);
        ref.matmul(a, b, c, M, N, K, { transA, transB, bias });
        return c.reduce((s, v, i) => s + v * w[i], 0);
      };
      const da = new Float64Array(M * K);
      const db = new Float64Array(K * N);
      const dbias = new Float64Array(N);
      ref.matmulBackward(a, b, w, da, db, dbias, M, N, K, { transA, transB });
      checkGradient(() => loss(), a, da, {}, 'dA');
      checkGradient(() => loss(), b, db, {}, 'dB');
      checkGradient(() => loss(), bias, dbias, {}, 'dbias');
    });
  }
});

describe('batched matmul reference gradients by finite differences', () => {
  // One batched and one shared operand each way round, with transposes: the shared operand's
  // gradient is the sum over the batch.
  const cases: [boolean, boolean, boolean, boolean][] = [
    [true, true, false, false],
    [true, false, true, false],
    [false, true, false, true],
  ];
  for (const [aB, bB, transA, transB] of cases) {
    it(`a ${aB ? '3' : '2'}-D, b ${bB ? '3' : '2'}-D, transA=${transA} transB=${transB}`, () => {
      const [G, M, N, K] = [3, 2, 4, 3];
      const aShape = [...(aB ? [G] : []), ...(transA ? [K, M] : [M, K])];
      const bShape = [...(bB ? [G] : []), ...(transB ? [N, K] : [K, N])];
      const a = {
        shape: aShape,
        data: Float64Array.from(
          randomUniform(
            aShape.reduce((x, y) => x * y),
            31,
          ),
        ),
      };
      const b = {
        shape: bShape,
        data: Float64Array.from(
          randomUniform(
            bShape.reduce((x, y) => x * y),
            32,
          ),
        ),
      };
      const w = { shape: [G, M, N], data: Float64Array.from(randomUniform(G * M * N, 33)) }; // dL/dC for L = sum(w ⊙ C)
      const loss = () => {
        const c = { shape: [G, M, N], data: new Float64Array(G * M * N) };
        ref.batchedMatmul(a, b, c, { transA, transB });
        return c.data.reduce((s, v, i) => s + v * w.data[i], 0);
      };
      const da = { shape: aShape, data: new Float64Array(a.data.length) };
      const db = { shape: bShape, data: new Float64Array(b.data.length) };
      ref.batchedMatmulBackward(a, b, w, da, db, { transA, transB });
      checkGradient(loss, a.data, da.data, {}, 'dA');
      checkGradient(loss, b.data, db.data, {}, 'dB');
    });
  }
});

describe('shape errors name the kernel and both shapes', () => {
  const make = (e: Engine, shape: number[], label: string): Tensor => e.tensor(shape, undefined, label);

  it('rejects a wrong-size output', async () => {
    const e = await getEngine();
    const [a, b, c] = [make(e, [2, 7], 'a'), make(e, [7, 5], 'b'), make(e, [3, 3], 'c')];
    await expect(matmul(e, a, b, c)).rejects.toThrow(/matmul.*"c" \[3, 3\].*\[2, 5\].*"a" \[2, 7\].*"b" \[7, 5\]/);
    for (const t of [a, b, c]) t.dispose();
  });

  it('rejects a wrong-size bias', async () => {
    const e = await getEngine();
    const [a, b, c, bias] = [make(e, [2, 7], 'a'), make(e, [5, 7], 'b'), make(e, [2, 5], 'c'), make(e, [7], 'bias')];
    await expect(matmul(e, a, b, c, { transB: true, bias })).rejects.toThrow(/matmul.*"bias" \[7\].*\[5\].*"c" \[2, 5\]/);
    for (const t of [a, b, c, bias]) t.dispose();
  });

  it('rejects mismatched inner dimensions, naming both operands', async () => {
    const e = await getEngine();
    const [a, b, c] = [make(e, [2, 7], 'x'), make(e, [5, 6], 'w'), make(e, [2, 5], 'y')];
    await expect(matmul(e, a, b, c, { transB: true })).rejects.toThrow(/matmul.*\(7 and 6\).*"x" \[2, 7\].*"w" \[5, 6\]/);
    for (const t of [a, b, c]) t.dispose();
  });

  it('rejects tensors that are not 2-D', async () => {
    const e = await getEngine();
    const [a, b, c] = [make(e, [2, 3, 4], 'x'), make(e, [4, 5], 'w'), make(e, [6, 5], 'y')];
    await expect(matmul(e, a, b, c)).rejects.toThrow(/matmul.*"x" \[2, 3, 4\] is 3-D/);
    for (const t of [a, b, c]) t.dispose();
  });

  it('rejects an unknown variant', async () => {
    const e = await getEngine();
    const [a, b, c] = [make(e, [2, 3], 'a'), make(e, [3, 4], 'b'), make(e, [2, 4], 'c')];
    await expect(matmul(e, a, b, c, { variant: 'nope' })).rejects.toThrow(/matmul.*no variant "nope"/);
    for (const t of [a, b, c]) t.dispose();
  });

  it('biasGrad rejects a wrong-size db', async () => {
    const e = await getEngine();
    const [dy, db] = [make(e, [4, 6], 'dy'), make(e, [4], 'db')];
    await expect(biasGrad(e, dy, db)).rejects.toThrow(/bias_grad.*"db" \[4\].*\[6\].*"dy" \[4, 6\]/);
    dy.dispose();
    db.dispose();
  });
});

describe('tuning', () => {
  it('times a dispatch', async () => {
    const e = await getEngine();
    const [a, b, c] = [e.tensor([64, 64], randomUniform(4096, 1), 'a'), e.tensor([64, 64], randomUniform(4096, 2), 'b'), e.tensor([64, 64], undefined, 'c')];
    const d = await matmul(e, a, b, c, { variant: 'blocked' });
    const s = await timeDispatch(e, d, { repeats: 2 });
    expect(s).toBeGreaterThan(0);
    expect(s).toBeLessThan(10);
    d.dispose();
    for (const t of [a, b, c]) t.dispose();
  });

  it('measures once per shape class, remembers the choice, and writes it to the disk cache', async () => {
    const e = await getEngine();
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-tune-'));
    const saved = { dir: process.env.WGTRAIN_CACHE_DIR!, tune: process.env.WGTRAIN_TUNE };
    process.env.WGTRAIN_CACHE_DIR = dir;
    delete process.env.WGTRAIN_TUNE;
    reloadTuneCache();
    forgetTuning(e);
    try {
      const v = await chooseMatmulVariant(e, 40, 50, 60, { transB: true });
      expect(matmulVariantsFor(e)).toContain(v);
      const file = JSON.parse(readFileSync(join(dir, 'tune.json'), 'utf8'));
      expect(file[adapterKey(e.adapter)][`matmul@2:${matmulShapeClass(40, 50, 60, false, true)}`]).toBe(v);
      // Same class (same log2 buckets and transposes): remembered, not measured again.
      expect(await chooseMatmulVariant(e, 39, 63, 33, { transB: true })).toBe(v);
      // A new process (simulated) reads the choice back from disk.
      forgetTuning(e);
      reloadTuneCache();
      expect(await chooseMatmulVariant(e, 40, 50, 60, { transB: true })).toBe(v);
      // A batch of products is its own class, timed as a batch.
      const vb = await chooseMatmulVariant(e, 40, 50, 60, { transB: true, G: 100 });
      const classes = Object.keys(JSON.parse(readFileSync(join(dir, 'tune.json'), 'utf8'))[adapterKey(e.adapter)]);
      expect(classes).toEqual([`matmul@2:${matmulShapeClass(40, 50, 60, false, true)}`, `matmul@2:${matmulShapeClass(40, 50, 60, false, true, 100)}`]);
      expect(classes[1]).toMatch(/\.g7$/);
      expect(matmulVariantsFor(e)).toContain(vb);
    } finally {
      process.env.WGTRAIN_CACHE_DIR = saved.dir;
      if (saved.tune !== undefined) process.env.WGTRAIN_TUNE = saved.tune;
      forgetTuning(e);
      reloadTuneCache();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('WGTRAIN_TUNE=0 uses the heuristic without measuring', async () => {
    const e = await getEngine();
    const saved = process.env.WGTRAIN_TUNE;
    process.env.WGTRAIN_TUNE = '0';
    forgetTuning(e);
    try {
      expect(await chooseMatmulVariant(e, 300, 200, 100)).toBe(defaultMatmulVariant(e, 300, 200));
    } finally {
      if (saved === undefined) delete process.env.WGTRAIN_TUNE;
      else process.env.WGTRAIN_TUNE = saved;
      forgetTuning(e);
    }
  });
});
