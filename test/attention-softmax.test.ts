// The scaled softmax of attention scores (softmax(scale * x) over the last dimension, fused) vs the
// CPU reference, scalar and vec4 entries, on odd shapes and ranks; large scaled logits of either
// sign (stability); gradients that accumulate; the reference's backward vs finite differences; bad
// shapes and scales rejected with the kernel's name and the tensors.
import { describe, expect, it } from 'vitest';
import { scaledSoftmaxBackward, scaledSoftmaxForward } from '../src/kernels/softmax.ts';
import * as ref from '../src/reference/softmax.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

// Last dimensions 1, 3, 7, 63 (the scalar entries) and 4, 64 (vec4); an attention-like rank-4
// [batch, heads, tokens, tokens]; 1000 rows (not a multiple of the 64-row workgroup).
const CASES: { shape: number[]; scale: number; range: number }[] = [
  { shape: [1, 1], scale: 0.5, range: 3 },
  { shape: [5, 3], scale: 1 / Math.sqrt(3), range: 3 },
  { shape: [33, 7], scale: -0.75, range: 3 },
  { shape: [3, 5, 63], scale: 0.125, range: 3 },
  { shape: [1000, 4], scale: 2, range: 3 },
  { shape: [2, 4, 64, 64], scale: 0.25, range: 3 },
  // Scaled logits up to +-80, past exp's f32 range: only a shifted exponent stays finite; the
  // negative scale checks that the shift is the maximum of scale * x, not scale * max(x).
  { shape: [7, 64], scale: 4, range: 20 },
  { shape: [7, 65], scale: -4, range: 20 },
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('scaled softmax vs reference', () => {
  CASES.forEach(({ shape, scale, range }, i) => {
    it(`[${shape.join(', ')}], scale ${scale.toFixed(3)}`, async () => {
      const e = await getEngine();
      const n = size(shape);
      const C = shape[shape.length - 1];
      const xs = randomUniform(n, 80 + i, -range, range);
      const dys = randomUniform(n, 90 + i);
      const [x, y, dy, dx] = [e.tensor(shape, xs, 'x'), e.tensor(shape, undefined, 'y'), e.tensor(shape, dys, 'dy'), e.tensor(shape, undefined, 'dx')];
      e.runOnce(await scaledSoftmaxForward(e, x, y, scale));
      e.runOnce(await scaledSoftmaxBackward(e, y, dy, dx, scale));
      const gy = await y.read();
      const wy = new Float32Array(n);
      ref.scaledSoftmaxForward(xs, wy, scale, C);
      expectClose(gy, wy, { atol: 1e-7, rtol: 1e-5 }, 'scaled_softmax_forward');
      // Backward from the GPU's own y, so that only the backward kernel is under test.
      const wdx = new Float32Array(n);
      ref.scaledSoftmaxBackward(gy, dys, wdx, scale, C);
      expectClose(await dx.read(), wdx, { atol: 1e-7, rtol: 1e-4 }, 'scaled_softmax_backward');
      for (const t of [x, y, dy, dx]) t.dispose();
    });
  });

  for (const C of [7, 8]) {
    it(`backward with accumulate adds into dx, C = ${C}`, async () => {
      const e = await getEngine();
      const shape = [9, C];
      const n = size(shape);
      const ys = randomUniform(n, 100 + C, 0, 0.3);
      const dys = randomUniform(n, 110 + C);
      const prefill = randomUniform(n, 120 + C);
      const [y, dy, dx] = [e.tensor(shape, ys, 'y'), e.tensor(shape, dys, 'dy'), e.tensor(shape, prefill, 'dx')];
      e.runOnce(await scaledSoftmaxBackward(e, y, dy, dx, 0.3, { accumulate: true }));
      const want = Float32Array.from(prefill);
      ref.scaledSoftmaxBackward(ys, dys, want, 0.3, C, { accumulate: true });
      const alone = new Float32Array(n);
      ref.scaledSoftmaxBackward(ys, dys, alone, 0.3, C);
      expectClose(
        want,
        Float32Array.from(prefill, (v, k) => v + alone[k]),
        { atol: 1e-7, rtol: 1e-6 },
        'reference dx with accumulate',
      );
      expectClose(await dx.read(), want, {}, 'scaled_softmax_backward dx with accumulate');
      for (const t of [y, dy, dx]) t.dispose();
    });
  }

  it('rejects tensors of different shapes and a scale that is not finite, naming them', async () => {
    const e = await getEngine();
    const [x, y, y2] = [e.tensor([2, 3, 4], undefined, 'scores'), e.tensor([6, 4], undefined, 'probs'), e.tensor([2, 3, 4], undefined, 'probs')];
    await expect(scaledSoftmaxForward(e, x, y, 0.5)).rejects.toThrow(/softmax\.scaled_softmax_forward.*"scores" \[2, 3, 4\].*"probs" \[6, 4\].*one shape/);
    await expect(scaledSoftmaxForward(e, x, y2, NaN)).rejects.toThrow(/softmax\.scaled_softmax_forward: the scale NaN.*"scores" \[2, 3, 4\]/);
    await expect(scaledSoftmaxBackward(e, y2, x, y, 0.5)).rejects.toThrow(/softmax\.scaled_softmax_backward.*"probs" \[6, 4\]/);
    await expect(scaledSoftmaxBackward(e, y2, x, x, Infinity)).rejects.toThrow(/softmax\.scaled_softmax_backward: the scale Infinity/);
    for (const t of [x, y, y2]) t.dispose();
  });
});

describe('scaled softmax reference gradient by finite differences', () => {
  it('dx of sum(r * softmax(scale * x))', () => {
    const B = 3;
    const C = 5;
    const scale = -0.7;
    const x = Float64Array.from(randomUniform(B * C, 131, -2, 2));
    const r = Float64Array.from(randomUniform(B * C, 132));
    const loss = (xs: Float64Array) => {
      const y = new Float64Array(B * C);
      ref.scaledSoftmaxForward(xs, y, scale, C);
      return y.reduce((s, v, k) => s + r[k] * v, 0);
    };
    const y = new Float64Array(B * C);
    ref.scaledSoftmaxForward(x, y, scale, C);
    const dx = new Float64Array(B * C);
    ref.scaledSoftmaxBackward(y, r, dx, scale, C);
    checkGradient(loss, x, dx, {}, 'scaled softmax dx');
  });
});
