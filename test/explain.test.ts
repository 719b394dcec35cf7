// Saliency maps and attention weights from the graph on the GPU: input gradients of the evaluation
// forward against central differences of the float64 CPU reference (MLP with dropout, ResNet-8
// with BatchNorm after some training, a ViT), a ViT's attention weights against softmax(q kᵀ)
// of the reference's projections, and the model left as it was (parameters, running statistics).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../src/nn/model.ts';
import { makePreset } from '../src/nn/presets.ts';
import type { RefGraph } from '../src/reference/graph.ts';
import { attentionMaps, attentionValues, saliency } from '../src/train/explain.ts';
import { Trainer } from '../src/train/trainer.ts';
import { Rng } from '../src/util/random.ts';
import { expectClose, getEngine, refOf } from './helpers.ts';

/** d out[c] / d x[i] by central differences of the reference's evaluation forward, one sample, at coordinates `at`. */
function numericSaliency(ref: RefGraph, x: Float32Array, c: number, at: number[], h = 1e-4): Float64Array {
  const f = (v: Float64Array) => ref.forward([v], 1, false).values.get(ref.spec.output)!.data[c];
  const g = new Float64Array(at.length);
  const v = Float64Array.from(x);
  for (const [k, i] of at.entries()) {
    const keep = v[i];
    v[i] = keep + h;
    const up = f(v);
    v[i] = keep - h;
    const down = f(v);
    v[i] = keep;
    g[k] = (up - down) / (2 * h);
  }
  return g;
}

/** Attention weights [n, H, T, T] from a [n, T, 3D] projection (q, k, v side by side, heads dh columns each). */
function referenceWeights(qkv: ArrayLike<number>, n: number, [H, T]: number[], factor: number): Float64Array {
  const D = qkv.length / n / T / 3;
  const dh = D / H;
  const out = new Float64Array(n * H * T * T);
  for (let b = 0; b < n; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const row = out.subarray(((b * H + h) * T + i) * T, ((b * H + h) * T + i + 1) * T);
        for (let j = 0; j < T; j++) {
          let dot = 0;
          for (let d = 0; d < dh; d++) dot += qkv[(b * T + i) * 3 * D + h * dh + d] * qkv[(b * T + j) * 3 * D + D + h * dh + d];
          row[j] = factor * dot;
        }
        const m = Math.max(...row);
        let sum = 0;
        for (let j = 0; j < T; j++) sum += row[j] = Math.exp(row[j] - m);
        for (let j = 0; j < T; j++) row[j] /= sum;
      }
    }
  }
  return out;
}

function inputs(shape: number[], n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(0, 1));
}

/** Saliency of `n` samples against differences at `coords` coordinates per sample (all when omitted; spread over the input). */
async function checkSaliency(model: Model, shape: number[], n: number, tol: { atol: number; rtol: number }, coords?: number) {
  const x = inputs(shape, n, 7);
  const ref = await refOf(model, { float64: true });
  const S = x.length / n;
  const at = Array.from({ length: coords ?? S }, (_, k) => Math.floor((k * S) / (coords ?? S)));
  // Predicted classes, and a fixed other class for the first sample.
  const predicted = await saliency(model, x, n);
  const asked = await saliency(model, x, n, [(predicted.classes[0] + 1) % 10, ...Array.from(predicted.classes.subarray(1))]);
  for (const r of [predicted, asked]) {
    for (let i = 0; i < n; i++) {
      const want = numericSaliency(ref, x.subarray(i * S, (i + 1) * S), r.classes[i], at);
      const got = at.map((j) => r.gradients[i * S + j]);
      expectClose(got, want, tol, `saliency of sample ${i}, class ${r.classes[i]}`);
    }
  }
  // The predicted class is the argmax of the outputs, which are the reference's.
  const refOut = ref.forward([x], n, false).values.get(ref.spec.output)!.data;
  expectClose(predicted.outputs, refOut, { atol: 1e-4, rtol: 1e-3 }, 'outputs');
  for (let i = 0; i < n; i++) {
    const row = Array.from(predicted.outputs.subarray(i * 10, (i + 1) * 10));
    expect(predicted.classes[i]).toBe(row.indexOf(Math.max(...row)));
  }
}

// Which convolution algorithm runs is not what this file checks: take the first candidate of each
// shape instead of measuring them all (the saliency plans have batch sizes of their own).
const tuneWas = process.env.WGTRAIN_TUNE;
beforeAll(() => {
  process.env.WGTRAIN_TUNE = '0';
});
afterAll(() => {
  if (tuneWas === undefined) delete process.env.WGTRAIN_TUNE;
  else process.env.WGTRAIN_TUNE = tuneWas;
});

describe('saliency: input gradients of the evaluation forward on the GPU', () => {
  it('an MLP with dropout (switched off in evaluation)', async () => {
    const e = await getEngine();
    const model = makePreset('mlp', 10, { hidden: [16], dropout: 0.5 });
    await model.build(e, [1, 5, 6], { seed: 2 });
    // f32 on the GPU against float64 differences.
    await checkSaliency(model, [1, 5, 6], 3, { atol: 1e-4, rtol: 1e-3 });
    const plan = await model.plan(3, { inputGradient: true });
    expect(() => plan.beforeStep(0)).toThrow(/cannot train/);
    model.dispose();
  });

  it('a ResNet-8 after training steps (BatchNorm with running statistics), leaving the model unchanged', async () => {
    const e = await getEngine();
    const model = makePreset('resnet', 10, { depth: 8 });
    await model.build(e, [3, 8, 8], { seed: 3 });
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 } });
    const rng = new Rng(4);
    for (let s = 0; s < 4; s++)
      await trainer.step(
        inputs([3, 8, 8], 6, 10 + s),
        Float32Array.from({ length: 6 }, () => rng.int(10)),
      );
    const before = await Promise.all([...model.params(), ...model.buffers()].map((p) => p.value.read()));
    // f32 through 8 layers against float64 differences.
    await checkSaliency(model, [3, 8, 8], 2, { atol: 5e-4, rtol: 5e-3 }, 40);
    const after = await Promise.all([...model.params(), ...model.buffers()].map((p) => p.value.read()));
    after.forEach((a, i) => expect(Array.from(a)).toEqual(Array.from(before[i])));
    // Training goes on after it (the training plan is another plan).
    expect(await trainer.step(inputs([3, 8, 8], 6, 20), new Float32Array(6), { readLoss: true })).toBeGreaterThan(0);
    trainer.dispose();
    model.dispose();
  });

  it('a ViT, and its attention weights as the reference computes them', async () => {
    const e = await getEngine();
    const model = makePreset('vit', 10, { depth: 2, width: 16, heads: 2, patch: 4, pool: 'cls' });
    await model.build(e, [1, 8, 8], { seed: 5 });
    await checkSaliency(model, [1, 8, 8], 2, { atol: 2e-4, rtol: 2e-3 });
    const x = inputs([1, 8, 8], 2, 9);
    const att = await attentionMaps(model, x, 2);
    expect(att.paths).toEqual(attentionValues(model).map((a) => a.path));
    expect(att.paths).toHaveLength(2);
    expect(att.shapes).toEqual([
      [2, 5, 5],
      [2, 5, 5],
    ]);
    const ref = await refOf(model, { float64: true });
    const values = ref.forward([x], 2, false).values;
    attentionValues(model).forEach((a, k) => {
      // The weights from the reference's q, k and v: softmax(factor q kᵀ) per head, in float64.
      const node = a.value.producer!;
      const want = referenceWeights(values.get(node.inputs[0].id)!.data, 2, a.shape, (node.op as unknown as { factor: number }).factor);
      expectClose(att.weights[k], want, { atol: 1e-5, rtol: 1e-4 }, `attention ${a.path}`);
      for (let r = 0; r < 2 * 2 * 5; r++) expect(Math.abs(att.weights[k].subarray(r * 5, r * 5 + 5).reduce((s, v) => s + v, 0) - 1)).toBeLessThan(1e-5);
    });
    model.dispose();
  });
});
