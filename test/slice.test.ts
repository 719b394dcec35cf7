// Copies along one axis (sliceInto, sliceFrom) vs the CPU reference: concatenate three pieces of odd
// sizes along the first, a middle and the last axis and split them back, overwriting and
// accumulating; the reference backward passes (each copy's gradient is the other copy) vs finite
// differences; bad shapes rejected with the kernel's name and the shapes.
import { describe, expect, it } from 'vitest';
import { sliceFrom, sliceInto } from '../src/kernels/slice.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import * as ref from '../src/reference/slice.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const EXACT = { atol: 0, rtol: 0 };

/** [shape with the axis's size set by each piece, axis, the pieces' sizes along it]. */
const CASES: [number[], number, number[]][] = [
  [[0, 5, 7], 0, [1, 3, 2]],
  [[3, 0, 7], 1, [5, 1, 4]],
  [[3, 5, 0], -1, [7, 2, 3]],
  [[33, 0, 65], 1, [127, 1, 9]],
];

describe('slice kernels vs reference: concatenate, then split', () => {
  CASES.forEach(([template, axis, lens], ci) => {
    const ax = axis < 0 ? axis + template.length : axis;
    const shapeWith = (len: number) => template.map((d, i) => (i === ax ? len : d));
    const total = lens.reduce((a, b) => a + b, 0);
    it(`[${template.join(', ')}] along axis ${axis}, pieces ${lens.join(' + ')}`, async () => {
      const e = await getEngine();
      const pieces = lens.map((len, i) => {
        const data = randomUniform(size(shapeWith(len)), 10 * ci + i);
        return { gpu: e.tensor(shapeWith(len), data, `piece${i}`), host: hostTensor(shapeWith(len), data, `piece${i}`) };
      });
      const whole = e.tensor(shapeWith(total), undefined, 'whole');
      const prefill = randomUniform(size(shapeWith(total)), 10 * ci + 9);
      for (const accumulate of [false, true]) {
        // Concatenate: every piece into its place; together they write every element.
        if (accumulate) e.write(whole, prefill);
        else e.fill(whole, NaN);
        const want = hostTensor(shapeWith(total), accumulate ? prefill : undefined);
        let start = 0;
        for (const p of pieces) {
          e.runOnce(await sliceInto(e, p.gpu, whole, axis, start, { accumulate }));
          ref.sliceInto(p.host, want, axis, start, { accumulate });
          start += p.host.shape[ax];
        }
        expectClose(await whole.read(), want.data, accumulate ? {} : EXACT, `concatenate${accumulate ? ' +=' : ''}`);
      }
      // Split the (accumulated) whole back into pieces, overwriting and accumulating.
      const wholeHost = hostTensor(shapeWith(total), await whole.read());
      let start = 0;
      for (const [i, p] of pieces.entries()) {
        const out = e.tensor(p.host.shape, undefined, `out${i}`);
        for (const accumulate of [false, true]) {
          const prefillPiece = randomUniform(p.host.data.length, 50 + i);
          if (accumulate) e.write(out, prefillPiece);
          else e.fill(out, NaN);
          e.runOnce(await sliceFrom(e, whole, out, axis, start, { accumulate }));
          const want = hostTensor(p.host.shape, accumulate ? prefillPiece : undefined);
          ref.sliceFrom(wholeHost, want, axis, start, { accumulate });
          expectClose(await out.read(), want.data, accumulate ? {} : EXACT, `split piece ${i}${accumulate ? ' +=' : ''}`);
        }
        out.dispose();
        start += p.host.shape[ax];
      }
      for (const p of pieces) p.gpu.dispose();
      whole.dispose();
    });
  });
});

describe('slice kernels past 65,535 workgroups', () => {
  it('sliceInto [4097, 4096] into [4097, 4099] at 2 along the last axis: the rest of dst untouched', async () => {
    const e = await getEngine();
    const [srcShape, dstShape] = [
      [4097, 4096], // 16,781,312 values copied: over 65,535 workgroups of 256
      [4097, 4099],
    ];
    const srcData = randomUniform(size(srcShape), 95);
    const prefill = randomUniform(size(dstShape), 96);
    const src = e.tensor(srcShape, srcData, 'src');
    const dst = e.tensor(dstShape, prefill, 'dst');
    e.runOnce(await sliceInto(e, src, dst, -1, 2));
    const want = hostTensor(dstShape, prefill);
    ref.sliceInto(hostTensor(srcShape, srcData), want, -1, 2);
    expectClose(await dst.read(), want.data, EXACT, 'slice_into over 65,535 workgroups');
    src.dispose();
    dst.dispose();
  });
});

describe('slice reference backward passes by finite differences', () => {
  const f64 = (shape: number[], seed: number) => ({ shape, data: Float64Array.from(randomUniform(size(shape), seed)) });
  const dot = (a: HostTensor, w: HostTensor) => {
    let s = 0;
    for (let i = 0; i < a.data.length; i++) s += a.data[i] * w.data[i];
    return s;
  };

  it("concatenate [2, 3, 4] and [2, 1, 4] along axis 1: each piece's gradient is sliceFrom of dy", () => {
    const [a, b] = [f64([2, 3, 4], 1), f64([2, 1, 4], 2)];
    const w = f64([2, 4, 4], 3); // dL/dy for L = sum(w ⊙ y)
    const loss = () => {
      const y = { shape: [2, 4, 4], data: new Float64Array(32) };
      ref.sliceInto(a, y, 1, 0);
      ref.sliceInto(b, y, 1, 3);
      return dot(y, w);
    };
    const [da, db] = [
      { shape: a.shape, data: new Float64Array(24) },
      { shape: b.shape, data: new Float64Array(8) },
    ];
    ref.sliceFrom(w, da, 1, 0);
    ref.sliceFrom(w, db, 1, 3);
    checkGradient(loss, a.data, da.data, {}, 'da');
    checkGradient(loss, b.data, db.data, {}, 'db');
  });

  it('pieces of [3, 5] along the last axis, 0:2, 2:5 and an overlapping 1:4: dx sums sliceInto of each dy', () => {
    const x = f64([3, 5], 4);
    const pieces: [number, number, HostTensor][] = [
      [0, 2, f64([3, 2], 5)],
      [2, 3, f64([3, 3], 6)],
      [1, 3, f64([3, 3], 7)],
    ];
    const loss = () =>
      pieces.reduce((sum, [start, len, w]) => {
        const p = { shape: [3, len], data: new Float64Array(3 * len) };
        ref.sliceFrom(x, p, -1, start);
        return sum + dot(p, w);
      }, 0);
    // The first two pieces cover x and write it; the overlapping third adds its share.
    const dx = { shape: [3, 5], data: new Float64Array(15).fill(NaN) };
    pieces.forEach(([start, , w], i) => ref.sliceInto(w, dx, -1, start, { accumulate: i === 2 }));
    checkGradient(loss, x.data, dx.data, {}, 'dx');
  });
});

describe('slice errors name the kernel and the shapes', () => {
  it('rejects a piece that does not fit, unequal other dimensions and a bad axis', async () => {
    const e = await getEngine();
    const t = (shape: number[], label: string) => e.tensor(shape, undefined, label);
    const [whole, piece, odd] = [t([4, 6, 5], 'cat'), t([4, 3, 5], 'part'), t([4, 3, 2], 'odd')];
    await expect(sliceInto(e, piece, whole, 1, 4)).rejects.toThrow(/slice\.slice_into.*"part" \[4, 3, 5\] at 4 along axis 1 does not fit in "cat" \[4, 6, 5\]/);
    await expect(sliceFrom(e, whole, odd, 1, 0)).rejects.toThrow(/slice\.slice_from.*"odd" \[4, 3, 2\] and "cat" \[4, 6, 5\].*except axis 1/);
    await expect(sliceInto(e, piece, whole, 3, 0)).rejects.toThrow(/slice\.slice_into.*axis 3 is not an axis of "cat" \[4, 6, 5\]/);
    for (const v of [whole, piece, odd]) v.dispose();
  });
});
