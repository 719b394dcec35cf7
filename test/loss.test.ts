// Loss and softmax kernels vs the CPU reference, the reference's gradients vs finite differences,
// invalid labels, and shape checks.
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../src/gpu/tensor.ts';
import { bceLogits, mse, softmaxCrossEntropy } from '../src/kernels/loss.ts';
import { softmaxBackward, softmaxForward } from '../src/kernels/softmax.ts';
import * as ref from '../src/reference/loss.ts';
import * as refSoftmax from '../src/reference/softmax.ts';
import { Rng, randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

// [B, C]: one element, a few, not multiples of the 64-row workgroup, and over 256 in both.
const SHAPES: [number, number][] = [
  [1, 1],
  [3, 5],
  [127, 33],
  [300, 270],
];

function randomLabels(B: number, C: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: B }, () => r.int(C));
}

/** 0/1 targets with a few soft values in between. */
function randomTargets(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => (r.next() < 0.2 ? r.next() : r.int(2)));
}

async function readAll(...ts: Tensor[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const t of ts) out.push(await t.read());
  return out;
}

describe('softmax_cross_entropy vs reference', () => {
  for (const [B, C] of SHAPES) {
    it(`[${B}, ${C}]`, async () => {
      const e = await getEngine();
      // Logits up to +-30: exp would overflow past 88 without the max subtracted; 30 keeps
      // softmax probabilities resolvable in f32 while exercising the stable path.
      const zs = randomUniform(B * C, 11 + B, -30, 30);
      const ls = randomLabels(B, C, 12 + B);
      const logits = e.tensor([B, C], zs, 'logits');
      const labels = e.tensor([B], ls, 'labels');
      const losses = e.tensor([B], undefined, 'losses');
      const dlogits = e.tensor([B, C], undefined, 'dlogits');
      const correct = e.tensor([B], undefined, 'correct');
      e.runOnce(await softmaxCrossEntropy(e, logits, labels, losses, dlogits, correct));
      const [gl, gd, gc] = await readAll(losses, dlogits, correct);
      const wl = new Float32Array(B);
      const wd = new Float32Array(B * C);
      const wc = new Float32Array(B);
      ref.softmaxCrossEntropy(zs, ls, wl, wd, wc);
      // Losses reach ~60 here; exp/log on the GPU are a few ulp, summed over up to 270 terms.
      expectClose(gl, wl, { atol: 1e-4, rtol: 1e-4 }, 'losses');
      expectClose(gd, wd, { atol: 1e-6, rtol: 1e-4 }, 'dlogits');
      expectClose(gc, wc, { atol: 0, rtol: 0 }, 'correct');
      for (const t of [logits, labels, losses, dlogits, correct]) t.dispose();
    });
  }

  it('label smoothing 0.1 on [33, 7] matches the reference; a smoothing outside [0, 1) is refused', async () => {
    const e = await getEngine();
    const [B, C] = [33, 7];
    const zs = randomUniform(B * C, 21, -5, 5);
    const ls = randomLabels(B, C, 22);
    const logits = e.tensor([B, C], zs, 'logits');
    const labels = e.tensor([B], ls, 'labels');
    const losses = e.tensor([B], undefined, 'losses');
    const dlogits = e.tensor([B, C], undefined, 'dlogits');
    const correct = e.tensor([B], undefined, 'correct');
    e.runOnce(await softmaxCrossEntropy(e, logits, labels, losses, dlogits, correct, { labelSmoothing: 0.1 }));
    const [gl, gd] = await readAll(losses, dlogits);
    const wl = new Float32Array(B);
    const wd = new Float32Array(B * C);
    ref.softmaxCrossEntropy(zs, ls, wl, wd, new Float32Array(B), { labelSmoothing: 0.1 });
    expectClose(gl, wl, { atol: 1e-5, rtol: 1e-4 }, 'losses'); // exp and log a few ulp each, summed over 7 terms
    expectClose(gd, wd, { atol: 1e-6, rtol: 1e-4 }, 'dlogits');
    await expect(softmaxCrossEntropy(e, logits, labels, losses, dlogits, correct, { labelSmoothing: 1 })).rejects.toThrow(/label smoothing 1 must be in \[0, 1\)/);
    for (const t of [logits, labels, losses, dlogits, correct]) t.dispose();
  });

  it('first maximum wins for correct[]', async () => {
    const e = await getEngine();
    // Row 0: tie between classes 1 and 3, label 1 -> correct; row 1: same tie, label 3 -> wrong.
    const zs = [0, 2, 1, 2, 0, 2, 1, 2];
    const logits = e.tensor([2, 4], zs, 'logits');
    const labels = e.tensor([2], [1, 3], 'labels');
    const losses = e.tensor([2], undefined, 'losses');
    const dlogits = e.tensor([2, 4], undefined, 'dlogits');
    const correct = e.tensor([2], undefined, 'correct');
    e.runOnce(await softmaxCrossEntropy(e, logits, labels, losses, dlogits, correct));
    expect(Array.from(await correct.read())).toEqual([1, 0]);
    for (const t of [logits, labels, losses, dlogits, correct]) t.dispose();
  });

  it('invalid labels give NaN loss, zero gradient and no out-of-bounds read', async () => {
    const e = await getEngine();
    const C = 5;
    const ls = [2, -1, 5, 1.5, NaN, Infinity, 1e30, -0, 4, -1e-7];
    const valid = [true, false, false, false, false, false, false, true, true, false];
    const B = ls.length;
    const zs = randomUniform(B * C, 21, -3, 3);
    const logits = e.tensor([B, C], zs, 'logits');
    const labels = e.tensor([B], ls, 'labels');
    const losses = e.tensor([B], undefined, 'losses');
    const dlogits = e.tensor([B, C], undefined, 'dlogits');
    const correct = e.tensor([B], undefined, 'correct');
    e.runOnce(await softmaxCrossEntropy(e, logits, labels, losses, dlogits, correct));
    const [gl, gd, gc] = await readAll(losses, dlogits, correct);
    const wl = new Float32Array(B);
    const wd = new Float32Array(B * C);
    const wc = new Float32Array(B);
    ref.softmaxCrossEntropy(zs, Float32Array.from(ls), wl, wd, wc);
    for (let b = 0; b < B; b++) {
      expect(Number.isNaN(wl[b]), `reference loss NaN for label ${ls[b]}`).toBe(!valid[b]);
      expect(Number.isNaN(gl[b]), `GPU loss NaN for label ${ls[b]}`).toBe(!valid[b]);
      if (valid[b]) expectClose([gl[b]], [wl[b]], {}, `loss of row ${b}`);
      const row = Array.from(gd.subarray(b * C, (b + 1) * C));
      if (!valid[b]) expect(row, `gradient row ${b} (label ${ls[b]})`).toEqual([0, 0, 0, 0, 0]);
      if (!valid[b]) expect(gc[b]).toBe(0);
    }
    expectClose(gd, wd, { atol: 1e-6, rtol: 1e-4 }, 'dlogits');
    for (const t of [logits, labels, losses, dlogits, correct]) t.dispose();
  });
});

describe('mse and bce_logits vs reference', () => {
  for (const [B, D] of SHAPES) {
    it(`mse [${B}, ${D}]`, async () => {
      const e = await getEngine();
      const ps = randomUniform(B * D, 31 + B, -2, 2);
      const ts = randomUniform(B * D, 32 + B, -2, 2);
      const pred = e.tensor([B, D], ps, 'pred');
      const target = e.tensor([B, D], ts, 'target');
      const losses = e.tensor([B], undefined, 'losses');
      const dpred = e.tensor([B, D], undefined, 'dpred');
      e.runOnce(await mse(e, pred, target, losses, dpred));
      const wl = new Float32Array(B);
      const wd = new Float32Array(B * D);
      ref.mse(ps, ts, wl, wd);
      expectClose(await losses.read(), wl, {}, 'losses');
      // Gradients are ~1/(B D), down to 1e-5: a tighter absolute floor than the default.
      expectClose(await dpred.read(), wd, { atol: 1e-9, rtol: 1e-5 }, 'dpred');
      for (const t of [pred, target, losses, dpred]) t.dispose();
    });

    it(`bce_logits [${B}, ${D}]`, async () => {
      const e = await getEngine();
      // Up to +-40: exp(-|z|) underflows toward 0, where a naive log(1 + exp(-z)) would overflow.
      const zs = randomUniform(B * D, 41 + B, -40, 40);
      const ts = randomTargets(B * D, 42 + B);
      const logits = e.tensor([B, D], zs, 'logits');
      const targets = e.tensor([B, D], ts, 'targets');
      const losses = e.tensor([B], undefined, 'losses');
      const dlogits = e.tensor([B, D], undefined, 'dlogits');
      const correct = e.tensor([B], undefined, 'correct');
      e.runOnce(await bceLogits(e, logits, targets, losses, dlogits, correct));
      const [gl, gd, gc] = await readAll(losses, dlogits, correct);
      const wl = new Float32Array(B);
      const wd = new Float32Array(B * D);
      const wc = new Float32Array(B);
      ref.bceLogits(zs, ts, wl, wd, wc);
      // Per-element losses reach 40; the mean is summed in f32 over up to 270 terms.
      expectClose(gl, wl, { atol: 1e-5, rtol: 2e-4 }, 'losses');
      // Gradients are (sigmoid(z) - t) / (B D): an f32 sigmoid carries ~1e-7 absolute error
      // before the division, so the absolute floor scales with 1 / (B D).
      expectClose(gd, wd, { atol: 1e-7 / (B * D), rtol: 1e-5 }, 'dlogits');
      // A fraction hits/D: the same count, divided in f32 on the GPU.
      expectClose(gc, wc, { atol: 0, rtol: 1e-6 }, 'correct');
      for (const t of [logits, targets, losses, dlogits, correct]) t.dispose();
    });
  }
});

describe('softmax vs reference', () => {
  for (const [B, C] of SHAPES) {
    it(`forward and backward [${B}, ${C}]`, async () => {
      const e = await getEngine();
      const xs = randomUniform(B * C, 51 + B, -20, 20);
      const dys = randomUniform(B * C, 52 + B);
      const x = e.tensor([B, C], xs, 'x');
      const y = e.tensor([B, C], undefined, 'y');
      const dy = e.tensor([B, C], dys, 'dy');
      const dx = e.tensor([B, C], undefined, 'dx');
      e.runOnce(await softmaxForward(e, x, y));
      e.runOnce(await softmaxBackward(e, y, dy, dx));
      const gy = await y.read();
      const wy = new Float32Array(B * C);
      refSoftmax.softmaxForward(xs, wy, C);
      expectClose(gy, wy, { atol: 1e-7, rtol: 1e-5 }, 'softmax_forward');
      // Backward from the GPU's own y, so that only the backward kernel is under test.
      const wdx = new Float32Array(B * C);
      refSoftmax.softmaxBackward(gy, dys, wdx, C);
      expectClose(await dx.read(), wdx, { atol: 1e-7, rtol: 1e-4 }, 'softmax_backward');
      for (const t of [x, y, dy, dx]) t.dispose();
    });
  }
});

describe('softmax over the last dimension of any rank', () => {
  // Rank 1 (one row), 3 and 4: rows are the product of the leading dimensions.
  for (const shape of [[7], [3, 5, 7], [2, 3, 1, 5], [4, 1]]) {
    it(`forward and backward [${shape.join(', ')}]`, async () => {
      const e = await getEngine();
      const n = shape.reduce((a, b) => a * b, 1);
      const C = shape[shape.length - 1];
      const xs = randomUniform(n, 71 + n, -5, 5);
      const dys = randomUniform(n, 72 + n);
      const [x, y, dy, dx] = [e.tensor(shape, xs, 'x'), e.tensor(shape, undefined, 'y'), e.tensor(shape, dys, 'dy'), e.tensor(shape, undefined, 'dx')];
      e.runOnce(await softmaxForward(e, x, y));
      e.runOnce(await softmaxBackward(e, y, dy, dx));
      const gy = await y.read();
      const wy = new Float32Array(n);
      refSoftmax.softmaxForward(xs, wy, C);
      expectClose(gy, wy, { atol: 1e-7, rtol: 1e-5 }, 'softmax_forward');
      const wdx = new Float32Array(n);
      refSoftmax.softmaxBackward(gy, dys, wdx, C);
      expectClose(await dx.read(), wdx, { atol: 1e-7, rtol: 1e-4 }, 'softmax_backward');
      for (const t of [x, y, dy, dx]) t.dispose();
    });
  }

  it('rejects tensors of different shapes, naming them', async () => {
    const e = await getEngine();
    const [x, y] = [e.tensor([2, 3, 4], undefined, 'scores'), e.tensor([6, 4], undefined, 'probs')];
    await expect(softmaxForward(e, x, y)).rejects.toThrow(/softmax\.softmax_forward.*"scores" \[2, 3, 4\].*"probs" \[6, 4\].*one shape/);
    x.dispose();
    y.dispose();
  });
});

describe('reference gradients by finite differences', () => {
  const B = 3;
  const C = 5;

  function mean(a: ArrayLike<number>): number {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i];
    return s / a.length;
  }

  it('softmax cross-entropy: dlogits is the gradient of the mean loss', () => {
    const z = Float64Array.from(randomUniform(B * C, 61, -3, 3));
    const labels = [4, 0, 2];
    const losses = new Float64Array(B);
    const dz = new Float64Array(B * C);
    const correct = new Float64Array(B);
    ref.softmaxCrossEntropy(z, labels, losses, dz, correct);
    const f = (zz: Float64Array) => {
      ref.softmaxCrossEntropy(zz, labels, losses, new Float64Array(B * C), correct);
      return mean(losses);
    };
    checkGradient(f, z, Float64Array.from(dz), {}, 'softmax cross-entropy');
  });

  it('softmax cross-entropy with label smoothing: the gradient of the smoothed loss; 0 smoothing is plain', () => {
    const z = Float64Array.from(randomUniform(B * C, 64, -3, 3));
    const labels = [1, 3, 0];
    const losses = new Float64Array(B);
    const dz = new Float64Array(B * C);
    const correct = new Float64Array(B);
    ref.softmaxCrossEntropy(z, labels, losses, dz, correct, { labelSmoothing: 0.2 });
    const f = (zz: Float64Array) => {
      ref.softmaxCrossEntropy(zz, labels, losses, new Float64Array(B * C), correct, { labelSmoothing: 0.2 });
      return mean(losses);
    };
    checkGradient(f, z, Float64Array.from(dz), {}, 'smoothed softmax cross-entropy');
    // The smoothed loss is the mix of the plain loss and the mean over classes of -log p.
    const plain = new Float64Array(B);
    ref.softmaxCrossEntropy(z, labels, plain, new Float64Array(B * C), correct);
    ref.softmaxCrossEntropy(z, labels, losses, new Float64Array(B * C), correct, { labelSmoothing: 0.2 });
    for (let b = 0; b < B; b++) {
      const row = Array.from(z.subarray(b * C, (b + 1) * C));
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      const uniform = row.reduce((s, v) => s + (lse - v), 0) / C;
      expect(losses[b]).toBeCloseTo(0.8 * plain[b] + 0.2 * uniform, 12);
    }
  });

  it('mse: dpred is the gradient of the mean loss', () => {
    const p = Float64Array.from(randomUniform(B * C, 62));
    const t = Float64Array.from(randomUniform(B * C, 63));
    const losses = new Float64Array(B);
    const dp = new Float64Array(B * C);
    ref.mse(p, t, losses, dp);
    const f = (pp: Float64Array) => {
      ref.mse(pp, t, losses, new Float64Array(B * C));
      return mean(losses);
    };
    checkGradient(f, p, Float64Array.from(dp), {}, 'mse');
  });

  it('bce_logits: dlogits is the gradient of the mean loss', () => {
    const z = Float64Array.from(randomUniform(B * C, 64, -4, 4));
    const t = Float64Array.from(randomTargets(B * C, 65));
    const losses = new Float64Array(B);
    const dz = new Float64Array(B * C);
    const correct = new Float64Array(B);
    ref.bceLogits(z, t, losses, dz, correct);
    const f = (zz: Float64Array) => {
      ref.bceLogits(zz, t, losses, new Float64Array(B * C), correct);
      return mean(losses);
    };
    checkGradient(f, z, Float64Array.from(dz), {}, 'bce_logits');
  });

  it('softmax backward: dx is the gradient of sum(dy * softmax(x))', () => {
    const x = Float64Array.from(randomUniform(B * C, 66, -3, 3));
    const dy = Float64Array.from(randomUniform(B * C, 67));
    const y = new Float64Array(B * C);
    refSoftmax.softmaxForward(x, y, C);
    const dx = new Float64Array(B * C);
    refSoftmax.softmaxBackward(y, dy, dx, C);
    const f = (xx: Float64Array) => {
      const yy = new Float64Array(B * C);
      refSoftmax.softmaxForward(xx, yy, C);
      let s = 0;
      for (let i = 0; i < yy.length; i++) s += dy[i] * yy[i];
      return s;
    };
    checkGradient(f, x, dx, {}, 'softmax backward');
  });
});

describe('shape checks', () => {
  it('rejects mismatched shapes, naming the kernel and both shapes', async () => {
    const e = await getEngine();
    const t = (shape: number[], label: string) => e.tensor(shape, undefined, label);
    const logits = t([4, 3], 'logits');
    const labels5 = t([5], 'labels');
    const labels = t([4], 'labels');
    const losses = t([4], 'losses');
    const correct = t([4], 'correct');
    const dWrong = t([3, 4], 'dlogits');
    const target = t([4, 2], 'target');
    const y = t([4, 4], 'y');
    const owned = [logits, labels5, labels, losses, correct, dWrong, target, y];
    await expect(softmaxCrossEntropy(e, logits, labels5, losses, dWrong, correct)).rejects.toThrow(/loss\.softmax_cross_entropy.*"labels" \[5\].*"logits" \[4, 3\]/);
    await expect(softmaxCrossEntropy(e, logits, labels, losses, dWrong, correct)).rejects.toThrow(/loss\.softmax_cross_entropy.*"logits" \[4, 3\].*"dlogits" \[3, 4\]/);
    await expect(mse(e, logits, target, losses, logits)).rejects.toThrow(/loss\.mse.*"logits" \[4, 3\].*"target" \[4, 2\]/);
    await expect(bceLogits(e, logits, target, losses, dWrong, correct)).rejects.toThrow(/loss\.bce_logits.*"logits" \[4, 3\].*"target" \[4, 2\]/);
    await expect(softmaxForward(e, logits, y)).rejects.toThrow(/softmax\.softmax_forward.*"logits" \[4, 3\].*"y" \[4, 4\]/);
    await expect(softmaxBackward(e, y, logits, y)).rejects.toThrow(/softmax\.softmax_backward.*"y" \[4, 4\].*"logits" \[4, 3\]/);
    for (const x of owned) x.dispose();
  });
});
