// Dropout kernels vs the CPU reference: the GPU's hashed mask must match the reference's bit for
// bit, keep about 1 - p of the elements, and change with the seed.
import { describe, expect, it } from 'vitest';
import { GPUBufferUsageFlags } from '../src/gpu/buffers.ts';
import { dropoutBackward, dropoutForward, dropoutForwardStep, dropoutParams } from '../src/kernels/dropout.ts';
import { packStepValues } from '../src/kernels/step.ts';
import { dropoutStepSeed } from '../src/ops/step.ts';
import * as ref from '../src/reference/dropout.ts';
import { randomUniform } from '../src/util/random.ts';
import { expectClose, getEngine } from './helpers.ts';

const SIZES = [1, 7, 1000, 70_001];

/** Indices where two arrays differ in bits (NaN-safe, -0 vs 0 counts as different). */
function bitMismatches(a: Float32Array, b: Float32Array): number[] {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  const bad: number[] = [];
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) bad.push(i);
  return bad;
}

describe('pcg hash (reference)', () => {
  it('matches known pcg_hash values, the u32 wrap-around included', () => {
    // Values that other ports of the same pcg_hash agree on; large inputs exercise Math.imul.
    expect([0, 1, 0xdeadbeef, 0xffffffff].map(ref.pcg)).toEqual([129708002, 2831084092, 1730779506, 3861530882]);
  });
});

describe('dropout vs reference', () => {
  for (const p of [0, 0.1, 0.5, 0.77, 1]) {
    for (const n of SIZES) {
      it(`p=${p}, n=${n}`, async () => {
        const e = await getEngine();
        const seed = 12345 + n;
        const xs = randomUniform(n, 300 + n, -2, 2);
        const dys = randomUniform(n, 400 + n, -2, 2);
        const x = e.tensor([n], xs, 'x');
        const y = e.tensor([n], undefined, 'y');
        const mask = e.tensor([n], undefined, 'mask');
        const dy = e.tensor([n], dys, 'dy');
        const dx = e.tensor([n], undefined, 'dx');
        e.runOnce(await dropoutForward(e, x, y, mask, { p, seed }));
        e.runOnce(await dropoutBackward(e, dy, mask, dx));
        const wy = new Float32Array(n);
        const wmask = new Float32Array(n);
        const wdx = new Float32Array(n);
        ref.dropoutForward(xs, wy, wmask, { p, seed });
        ref.dropoutBackward(dys, wmask, wdx);
        const gmask = await mask.read();
        expect(bitMismatches(gmask, wmask).slice(0, 5), 'mask bits differ at').toEqual([]);
        // y and dx are single f32 products of the same operands: exact on both sides.
        expectClose(await y.read(), wy, { atol: 0, rtol: 0 }, 'y');
        expectClose(await dx.read(), wdx, { atol: 0, rtol: 0 }, 'dx');
        if (p === 0) expect(Array.from(gmask).every((v) => v === 1)).toBe(true);
        if (p === 1) expect(Array.from(gmask).every((v) => v === 0)).toBe(true);
        for (const t of [x, y, mask, dy, dx]) t.dispose();
      });
    }
  }
});

describe('dropout whose seed follows the step (the per-step values uniform)', () => {
  it('draws the mask of dropoutStepSeed(seedBase, step) at each step, and none when the flags switch it off', async () => {
    const e = await getEngine();
    const n = 1001;
    const seedBase = 0xabcdef12;
    const xs = randomUniform(n, 7, -2, 2);
    const x = e.tensor([n], xs, 'x');
    const y = e.tensor([n], undefined, 'y');
    const mask = e.tensor([n], undefined, 'mask');
    const buffer = e.pool.acquire(32, GPUBufferUsageFlags.uniform, 'step values');
    const sv = { buffer, byteLength: 32, label: 'step values' };
    const d = await dropoutForwardStep(e, x, y, mask, { p: 0.4, seedBase }, sv);
    const masks: Float32Array[] = [];
    for (const step of [0, 1, 7, 4_000_000_000]) {
      e.writeBuffer(sv, packStepValues({ step, dropout: true, lr: 0 }));
      e.run(d);
      const want = new Float32Array(n);
      ref.dropoutForward(xs, new Float32Array(n), want, { p: 0.4, seed: dropoutStepSeed(seedBase, step) });
      const got = await mask.read();
      expect(bitMismatches(got, want).slice(0, 5), `step ${step}: mask bits differ at`).toEqual([]);
      masks.push(got);
    }
    expect(bitMismatches(masks[0], masks[1]).length).toBeGreaterThan(n / 4); // a new mask each step
    e.writeBuffer(sv, packStepValues({ step: 3, dropout: false, lr: 0 }));
    e.run(d);
    expect(Array.from(await mask.read()).every((v) => v === 1)).toBe(true);
    expectClose(await y.read(), xs, { atol: 0, rtol: 0 }, 'y with dropout off');
    d.dispose();
    e.releaseBuffer(buffer);
    for (const t of [x, y, mask]) t.dispose();
  });
});

describe('dropout statistics', () => {
  it('keeps about 1 - p of a large tensor, and the seed changes the mask', async () => {
    const e = await getEngine();
    const n = 1 << 20;
    const x = e.tensor([n], new Float32Array(n).fill(1), 'x');
    const y = e.tensor([n], undefined, 'y');
    const mask = e.tensor([n], undefined, 'mask');
    const p = 0.3;
    const d = await dropoutForward(e, x, y, mask, { p, seed: 1 });
    e.run(d);
    const m1 = await mask.read();
    const kept = m1.reduce((s, v) => s + (v !== 0 ? 1 : 0), 0) / n;
    // Binomial standard deviation sqrt(p(1-p)/n) ~ 4.5e-4: 5 sigma.
    expect(Math.abs(kept - (1 - p))).toBeLessThan(2.3e-3);
    // The kept values are scaled so that the mean is preserved.
    expect(m1.find((v) => v !== 0)).toBe(Math.fround(1 / (1 - p)));
    const mean = (await y.read()).reduce((s, v) => s + v, 0) / n;
    expect(Math.abs(mean - 1)).toBeLessThan(5e-3);

    d.setParams(dropoutParams({ p, seed: 2 }, n));
    e.run(d);
    const m2 = await mask.read();
    let differ = 0;
    let keptBoth = 0;
    for (let i = 0; i < n; i++) {
      if ((m1[i] !== 0) !== (m2[i] !== 0)) differ++;
      if (m1[i] !== 0 && m2[i] !== 0) keptBoth++;
    }
    // Independent masks disagree on 2p(1-p) = 42% of elements and both keep (1-p)^2 = 49%.
    expect(differ / n).toBeGreaterThan(0.4);
    expect(differ / n).toBeLessThan(0.44);
    expect(keptBoth / n).toBeGreaterThan(0.47);
    expect(keptBoth / n).toBeLessThan(0.51);
    d.dispose();
    for (const t of [x, y, mask]) t.dispose();
  });

  it('rejects p outside [0, 1] and seeds that are not u32', () => {
    expect(() => dropoutParams({ p: 1.5, seed: 0 }, 4)).toThrow(/dropout\.dropout_forward.*p = 1\.5/);
    expect(() => dropoutParams({ p: 0.5, seed: -1 }, 4)).toThrow(/dropout\.dropout_forward.*seed -1/);
  });
});

describe('shape checks', () => {
  it('rejects mismatched sizes, naming the kernel and both shapes', async () => {
    const e = await getEngine();
    const x = e.tensor([4, 3], undefined, 'x');
    const y = e.tensor([12], undefined, 'y');
    const mask = e.tensor([11], undefined, 'mask');
    await expect(dropoutForward(e, x, y, mask, { p: 0.5, seed: 1 })).rejects.toThrow(/dropout\.dropout_forward.*"x" \[4, 3\].*"mask" \[11\]/);
    await expect(dropoutBackward(e, y, mask, x)).rejects.toThrow(/dropout\.dropout_backward.*"y" \[12\].*"mask" \[11\]/);
    for (const t of [x, y, mask]) t.dispose();
  });
});
