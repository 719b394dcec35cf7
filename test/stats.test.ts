// Tensor statistics kernels (shaders/stats.wgsl) against the CPU reference on odd sizes: the
// record (count, mean, std, min, max, norm, values <= 0, non-finite values, change since a copy)
// and the histogram; tensors far from zero, with NaN and Inf, constant; records side by side in one
// buffer; the same bits on every run.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/gpu/engine.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { STAT_PARTIALS_SIZE, statGroups, tensorStats } from '../src/kernels/stats.ts';
import { STAT_RECORD, STAT_SLOTS } from '../src/ops/stats.ts';
import * as ref from '../src/reference/stats.ts';
import { randomUniform } from '../src/util/random.ts';
import { expectClose, getEngine } from './helpers.ts';

interface Outs {
  partials: Tensor;
  values: Tensor;
  counts: Tensor;
  dispose(): void;
}

function outs(e: Engine, records: number, counts: number): Outs {
  const partials = e.zeros([STAT_PARTIALS_SIZE], 'partials');
  // Filled with garbage: the kernels must overwrite their record and zero their histogram.
  const values = e.tensor([records * STAT_RECORD], new Float32Array(records * STAT_RECORD).fill(-7), 'values');
  const c = e.tensor([counts], new Float32Array(new Uint32Array(counts).fill(12345).buffer), 'counts');
  return { partials, values, counts: c, dispose: () => [partials, values, c].forEach((t) => t.dispose()) };
}

const u32 = (f: Float32Array) => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));

/**
 * Compare a GPU record with the reference's. Sums are f32 in a tree: mean and norm within
 * ~1e-6 of the tensor's scale, std relative to itself (the shift keeps it accurate far from zero);
 * min, max and counts exact.
 */
function expectRecord(got: ArrayLike<number>, want: Float64Array, scale: number, what: string): void {
  const s = STAT_SLOTS;
  for (const k of ['count', 'min', 'max', 'nonPositive', 'nonFinite'] as const) expect(got[s[k]], `${what}: ${k}`).toBe(Math.fround(want[s[k]]));
  expectClose([got[s.mean]], [want[s.mean]], { atol: 2e-6 * scale, rtol: 1e-5 }, `${what}: mean`);
  // The std of a tensor with mean -10 and spread 1e-3 must keep 3 digits: the kernel sums around a shift.
  expectClose([got[s.std]], [want[s.std]], { atol: 1e-6 * want[s.std] + 1e-30, rtol: 2e-4 }, `${what}: std`);
  expectClose([got[s.norm], got[s.deltaNorm], got[s.prevNorm]], [want[s.norm], want[s.deltaNorm], want[s.prevNorm]], { atol: 1e-30, rtol: 2e-5 }, `${what}: norms`);
}

/**
 * Histogram counts against the reference's: the totals agree exactly; a value whose position
 * (v - lo) · bins / (hi - lo) is within 1e-4 of a bin edge may land on either side of it in f32,
 * so each such value allows one count to move. With these inputs that is rarely any.
 */
function expectHistogram(got: number[], want: number[], x: ArrayLike<number>, lo: number, hi: number, what: string): void {
  expect(got.length, `${what}: bins`).toBe(want.length);
  expect(
    got.reduce((a, b) => a + b, 0),
    `${what}: total`,
  ).toBe(want.reduce((a, b) => a + b, 0));
  const bins = want.length;
  let nearEdge = 0;
  if (hi > lo) {
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i])) continue;
      const t = ((x[i] - lo) * bins) / (hi - lo);
      if (Math.abs(t - Math.round(t)) < 1e-4 && t > 0.5 && t < bins - 0.5) nearEdge++;
    }
  }
  const moved = got.reduce((a, g, i) => a + Math.abs(g - want[i]), 0);
  expect(moved, `${what}: counts ${JSON.stringify(got)} vs ${JSON.stringify(want)}`).toBeLessThanOrEqual(2 * nearEdge);
}

async function run(e: Engine, xs: Float32Array, opts: { bins: number; prev?: Float32Array; record?: number; records?: number; groups?: number }) {
  const record = opts.record ?? 0;
  const bins = opts.bins;
  const o = outs(e, opts.records ?? record + 1, Math.max(1, (record + 1) * bins));
  const x = e.tensor([xs.length], xs, 'x');
  const prev = opts.prev ? e.tensor([xs.length], opts.prev, 'prev') : undefined;
  const ds = await tensorStats(e, x, o, { record, bins, hist: record * bins, prev, groups: opts.groups });
  e.run(...ds);
  const values = await o.values.read();
  const counts = u32(await o.counts.read());
  ds.forEach((d) => d.dispose());
  [x, prev].forEach((t) => t?.dispose());
  o.dispose();
  return { rec: values.subarray(record * STAT_RECORD, (record + 1) * STAT_RECORD), hist: counts.slice(record * bins, (record + 1) * bins), values, counts };
}

describe('tensor_stats vs reference', () => {
  // 1, fewer than a workgroup, one workgroup's worth, several workgroups, and many values per
  // invocation; each with the adapter's own workgroup count, one workgroup, an odd count, and the
  // 64 a GPU gets (more workgroups than a small tensor has values for).
  for (const [n, bins] of [
    [1, 1],
    [7, 5],
    [1000, 32],
    [70_001, 7],
    [300_007, 256],
  ] as const) {
    it(`n=${n}, ${bins} bins, uniform in [-1, 2)`, async () => {
      const e = await getEngine();
      const xs = randomUniform(n, 40 + n, -1, 2);
      const want = ref.tensorStats(xs, { bins });
      for (const groups of [statGroups(e, n), 1, 7, 64]) {
        const got = await run(e, xs, { bins, groups });
        expectRecord(got.rec, want.record, 2, `n=${n}, ${groups} workgroups`);
        expectHistogram(got.hist, want.histogram, xs, got.rec[STAT_SLOTS.min], got.rec[STAT_SLOTS.max], `n=${n}, ${groups} workgroups`);
      }
    });
  }

  it('keeps the spread of a tensor far from zero (mean -10, spread 1e-3)', async () => {
    const e = await getEngine();
    const n = 12_345;
    const xs = randomUniform(n, 3, -10.001, -9.999);
    const got = await run(e, xs, { bins: 9 });
    const want = ref.tensorStats(xs, { bins: 9 });
    expectRecord(got.rec, want.record, 10, 'far from zero');
    expect(got.rec[STAT_SLOTS.nonPositive]).toBe(n);
  });

  it('counts NaN and Inf apart and leaves them out of every other figure', async () => {
    const e = await getEngine();
    const n = 5_003;
    const xs = randomUniform(n, 9, -3, 3);
    for (const [i, v] of [
      [0, NaN],
      [101, Infinity],
      [2_500, -Infinity],
      [5_002, NaN],
    ] as const)
      xs[i] = v;
    const got = await run(e, xs, { bins: 11 });
    const want = ref.tensorStats(xs, { bins: 11 });
    expect(got.rec[STAT_SLOTS.nonFinite]).toBe(4);
    expect(got.rec[STAT_SLOTS.count]).toBe(n - 4);
    expectRecord(got.rec, want.record, 3, 'with NaN and Inf');
    expectHistogram(got.hist, want.histogram, xs, got.rec[STAT_SLOTS.min], got.rec[STAT_SLOTS.max], 'with NaN and Inf');
  });

  it('a constant tensor: std 0, every value in bin 0; a tensor of only NaN: count 0 and zero figures', async () => {
    const e = await getEngine();
    const c = await run(e, new Float32Array(333).fill(-2.5), { bins: 4 });
    expect(Array.from(c.rec.subarray(0, 8))).toEqual([333, -2.5, 0, -2.5, -2.5, Math.fround(2.5 * Math.sqrt(333)), 333, 0]);
    expect(c.hist).toEqual([333, 0, 0, 0]);
    const nan = await run(e, new Float32Array(70).fill(NaN), { bins: 3 });
    expect(Array.from(nan.rec.subarray(0, 8))).toEqual([0, 0, 0, 0, 0, 0, 0, 70]);
    expect(nan.hist).toEqual([0, 0, 0]);
  });

  it('with a saved copy: the change since it and its norm', async () => {
    const e = await getEngine();
    const n = 40_009;
    const before = randomUniform(n, 21, -0.5, 0.5);
    const after = Float32Array.from(before, (v, i) => v - 1e-3 * Math.sin(i));
    const got = await run(e, after, { bins: 0, prev: before });
    const want = ref.tensorStats(after, { bins: 0, prev: before });
    expectRecord(got.rec, want.record, 0.5, 'delta');
    expect(got.rec[STAT_SLOTS.deltaNorm]).toBeGreaterThan(0);
  });

  it('a copy by the queue, then an update in place: the record compares against the copy', async () => {
    const e = await getEngine();
    const n = 3_001;
    const w0 = randomUniform(n, 5, -1, 1);
    const w = e.tensor([n], w0, 'w');
    const prev = e.zeros([n], 'prev');
    const o = outs(e, 1, 1);
    const ds = await tensorStats(e, w, o, { record: 0, bins: 0, prev });
    e.copyToBuffer(w, prev.buffer);
    const w1 = Float32Array.from(w0, (v) => v * 0.5);
    e.write(w, w1);
    e.run(...ds);
    const got = await o.values.read();
    const want = ref.tensorStats(w1, { bins: 0, prev: w0 });
    expectRecord(got, want.record, 1, 'copy then update');
    ds.forEach((d) => d.dispose());
    [w, prev].forEach((t) => t.dispose());
    o.dispose();
  });

  it('records side by side: each writes its own slots and zeroes its own counts on every replay', async () => {
    const e = await getEngine();
    const a = randomUniform(999, 1, 0, 1);
    const b = randomUniform(77, 2, -5, -1);
    const o = outs(e, 3, 2 * 6);
    const ta = e.tensor([a.length], a, 'a');
    const tb = e.tensor([b.length], b, 'b');
    const ds = [...(await tensorStats(e, ta, o, { record: 2, bins: 6, hist: 6 })), ...(await tensorStats(e, tb, o, { record: 0, bins: 6, hist: 0 }))];
    e.run(...ds);
    e.run(...ds); // a replay must not add to the first one's counts
    const values = await o.values.read();
    const counts = u32(await o.counts.read());
    const ra = ref.tensorStats(a, { bins: 6 });
    const rb = ref.tensorStats(b, { bins: 6 });
    expectRecord(values.subarray(2 * STAT_RECORD), ra.record, 1, 'record 2');
    expectRecord(values.subarray(0, STAT_RECORD), rb.record, 5, 'record 0');
    expect(Array.from(values.subarray(STAT_RECORD, 2 * STAT_RECORD))).toEqual(new Array(STAT_RECORD).fill(-7));
    expectHistogram(counts.slice(6), ra.histogram, a, values[2 * STAT_RECORD + STAT_SLOTS.min], values[2 * STAT_RECORD + STAT_SLOTS.max], 'hist a');
    expectHistogram(counts.slice(0, 6), rb.histogram, b, values[STAT_SLOTS.min], values[STAT_SLOTS.max], 'hist b');
    ds.forEach((d) => d.dispose());
    [ta, tb].forEach((t) => t.dispose());
    o.dispose();
  });

  it('is deterministic: the same bits on every run', async () => {
    const e = await getEngine();
    const xs = randomUniform(90_001, 77, -1e3, 1e3);
    const runs = [];
    for (let r = 0; r < 3; r++) runs.push(await run(e, xs, { bins: 16 }));
    for (const r of runs.slice(1)) {
      expect(Array.from(r.values)).toEqual(Array.from(runs[0].values));
      expect(r.counts).toEqual(runs[0].counts);
    }
  });

  it('refuses bins outside 1..256 and records outside the buffer, naming them', async () => {
    const e = await getEngine();
    const o = outs(e, 2, 300);
    const x = e.tensor([5], [1, 2, 3, 4, 5], 'x');
    await expect(tensorStats(e, x, o, { record: 0, bins: 257 })).rejects.toThrow(/histogram bins must be a whole number from 1 to 256, got 257/);
    await expect(tensorStats(e, x, o, { record: 2, bins: 0 })).rejects.toThrow(/record 2 does not fit "values" \[20\]/);
    await expect(tensorStats(e, x, o, { record: 1, bins: 8, hist: 295 })).rejects.toThrow(/histogram counts \[295, 303\) do not fit "counts" \[300\]/);
    await expect(tensorStats(e, x, o, { record: 0, bins: 0, groups: 65 })).rejects.toThrow(/groups must be a whole number from 1 to 64, got 65/);
    x.dispose();
    o.dispose();
  });
});
