// Reduction kernels vs the CPU reference: deterministic accumulated sums and row argmax.
import { describe, expect, it } from 'vitest';
import { argmaxRows, sumAccumulate } from '../src/kernels/reduce.ts';
import * as ref from '../src/reference/reduce.ts';
import { Rng, randomUniform } from '../src/util/random.ts';
import { expectClose, getEngine } from './helpers.ts';

describe('sum_accumulate vs reference', () => {
  // 1, fewer than the 256 invocations, not a multiple of 256, and many elements per invocation.
  for (const n of [1, 7, 1000, 70_001]) {
    it(`n=${n}, accumulated over 3 replays into slot 2 of 5`, async () => {
      const e = await getEngine();
      const xs = randomUniform(n, 100 + n, -1, 1);
      const x = e.tensor([n], xs, 'x');
      const start = [0.5, -1, 3, 7, 0];
      const acc = e.tensor([5], start, 'acc');
      const d = await sumAccumulate(e, x, acc, 2);
      e.run(d, d, d);
      const want = Float64Array.from(start);
      for (let r = 0; r < 3; r++) ref.sumAccumulate(xs, want, 2);
      const got = await acc.read();
      // f32 partial sums of terms of either sign: the rounding error scales with the sum of |x|
      // (three replays of it), not with the smaller result; about 2e-9 of it is seen here.
      let absSum = 0;
      for (const v of xs) absSum += Math.abs(v);
      expectClose(got, want, { atol: 1e-7 * (1 + 3 * absSum), rtol: 1e-6 }, 'acc');
      expect(Array.from(got.filter((_, i) => i !== 2))).toEqual([0.5, -1, 7, 0]);
      d.dispose();
      x.dispose();
      acc.dispose();
    });
  }

  it('is deterministic: the same bits on every run', async () => {
    const e = await getEngine();
    const n = 100_003;
    const x = e.tensor([n], randomUniform(n, 5, -1e3, 1e3), 'x');
    const acc = e.zeros([4], 'acc');
    const d = await sumAccumulate(e, x, acc, 0);
    const results: number[] = [];
    for (let r = 0; r < 4; r++) {
      e.fill(acc, 0);
      e.run(d);
      results.push((await acc.read())[0]);
    }
    expect(new Set(results).size).toBe(1);
    d.dispose();
    x.dispose();
    acc.dispose();
  });

  it('setParams moves the slot between replays', async () => {
    const e = await getEngine();
    const x = e.tensor([3], [1, 2, 3], 'x');
    const acc = e.zeros([3], 'acc');
    const d = await sumAccumulate(e, x, acc, 0);
    e.run(d);
    // A uniform write is queued: work recorded before it must be submitted first.
    e.flush();
    d.setParams({ n: 3, slot: 2, window: 1 });
    e.run(d, d);
    expect(Array.from(await acc.read())).toEqual([6, 0, 12]);
    d.dispose();
    x.dispose();
    acc.dispose();
  });

  it('NaN in the input reaches the accumulator (for divergence guards)', async () => {
    const e = await getEngine();
    const x = e.tensor(
      [300],
      Float32Array.from({ length: 300 }, (_, i) => (i === 299 ? NaN : 1)),
      'x',
    );
    const acc = e.zeros([1], 'acc');
    e.runOnce(await sumAccumulate(e, x, acc, 0));
    expect(Number.isNaN((await acc.read())[0])).toBe(true);
    x.dispose();
    acc.dispose();
  });
});

describe('argmax_rows vs reference', () => {
  const SHAPES: [number, number][] = [
    [1, 1],
    [3, 5],
    [127, 33],
    [300, 270],
  ];
  for (const [B, C] of SHAPES) {
    it(`[${B}, ${C}]`, async () => {
      const e = await getEngine();
      // Values on a coarse grid so that many rows have ties: the first maximum must win.
      const r = new Rng(200 + B);
      const xs = Float32Array.from({ length: B * C }, () => r.int(8));
      const x = e.tensor([B, C], xs, 'x');
      const out = e.tensor([B], undefined, 'out');
      e.runOnce(await argmaxRows(e, x, out));
      const want = new Float32Array(B);
      ref.argmaxRows(xs, want);
      expectClose(await out.read(), want, { atol: 0, rtol: 0 }, 'argmax');
      x.dispose();
      out.dispose();
    });
  }
});

describe('shape checks', () => {
  it('rejects a bad slot or output size, naming the kernel and both shapes', async () => {
    const e = await getEngine();
    const x = e.tensor([4, 3], undefined, 'x');
    const acc = e.tensor([2], undefined, 'acc');
    const out = e.tensor([3], undefined, 'out');
    await expect(sumAccumulate(e, x, acc, 2)).rejects.toThrow(/reduce\.sum_accumulate.*slot 2.*"acc" \[2\].*"x" \[4, 3\]/);
    await expect(sumAccumulate(e, x, acc, -1)).rejects.toThrow(/reduce\.sum_accumulate/);
    await expect(argmaxRows(e, x, out)).rejects.toThrow(/reduce\.argmax_rows.*"x" \[4, 3\].*"out" \[3\]/);
    for (const t of [x, acc, out]) t.dispose();
  });
});
