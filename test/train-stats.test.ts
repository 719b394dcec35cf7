// Per-layer statistics recorded inside training steps (src/train/stats.ts) against the same figures
// computed on the host from tensors read back around each step: parameters after their update,
// gradients before clipping, the update ratio against the weights before the step, and the dead
// share of a fused ReLU and of a LeakyReLU after an addition. Also: where the dispatches go, that
// the readback never waits inside a step, and the warnings of a layer dead by construction.
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../src/data/dataset.ts';
import { Dense } from '../src/nn/dense.ts';
import type { Value } from '../src/nn/graph.ts';
import { add, leakyRelu, relu } from '../src/nn/functional.ts';
import { Model } from '../src/nn/model.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { ReLU } from '../src/nn/activations.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import { Conv2d } from '../src/nn/conv.ts';
import { GlobalAvgPool } from '../src/nn/pool.ts';
import { STAT_SLOTS } from '../src/ops/stats.ts';
import * as ref from '../src/reference/stats.ts';
import type { StatsSnapshot, TensorSummary } from '../src/train/stats-series.ts';
import { statsSeries, StatsWatch } from '../src/train/stats-series.ts';
import type { PhasedDispatch } from '../src/train/step.ts';
import { Trainer } from '../src/train/trainer.ts';
import { Rng } from '../src/util/random.ts';
import { expectClose, getEngine } from './helpers.ts';

const F = 9;
const H = 6;
const C = 3;

/** relu(a(x)) is fused into a; leakyRelu(add(b(x), h)) stays an op of its own. */
class Net extends Model {
  a = new Dense(H);
  b = new Dense(H);
  head = new Dense(C);
  forward(x: Value): Value {
    const h = relu(this.a.forward(x));
    return this.head.forward(leakyRelu(add(this.b.forward(x), h), 0.1));
  }
}

function batch(B: number, seed: number): { x: Float32Array; y: Float32Array } {
  const r = new Rng(seed);
  return { x: Float32Array.from({ length: B * F }, () => r.normal()), y: Float32Array.from({ length: B }, () => r.int(C)) };
}

/** Host forward of Net up to its two activations, in float64 from read-back weights. */
function hostActivations(p: Record<string, Float32Array>, x: Float32Array, B: number): { h: Float64Array; k: Float64Array } {
  const h = new Float64Array(B * H);
  const k = new Float64Array(B * H);
  for (let s = 0; s < B; s++) {
    for (let j = 0; j < H; j++) {
      let za = p['a.bias'][j];
      let zb = p['b.bias'][j];
      for (let i = 0; i < F; i++) {
        za += x[s * F + i] * p['a.weight'][j * F + i];
        zb += x[s * F + i] * p['b.weight'][j * F + i];
      }
      h[s * H + j] = Math.max(za, 0);
      const z = zb + h[s * H + j];
      k[s * H + j] = z > 0 ? z : 0.1 * z;
    }
  }
  return { h, k };
}

/**
 * A summary against the reference's figures of host data. The GPU sums in f32 in another order:
 * 1e-5 relative on norms and std, mean within 1e-6 of the tensor's scale; min and max are exact.
 */
function expectSummary(got: TensorSummary, host: ArrayLike<number>, bins: number, what: string): void {
  const want = ref.tensorStats(host, { bins });
  const r = want.record;
  const scale = Math.max(Math.abs(r[STAT_SLOTS.min]), Math.abs(r[STAT_SLOTS.max]));
  expect(got.count, `${what}: count`).toBe(host.length);
  expect(got.nonFinite, `${what}: nonFinite`).toBe(0);
  expectClose([got.min, got.max], [r[STAT_SLOTS.min], r[STAT_SLOTS.max]], { atol: 1e-7 * scale, rtol: 1e-6 }, `${what}: min, max`);
  expectClose([got.mean], [r[STAT_SLOTS.mean]], { atol: 1e-6 * scale, rtol: 1e-5 }, `${what}: mean`);
  expectClose([got.std, got.norm], [r[STAT_SLOTS.std], r[STAT_SLOTS.norm]], { atol: 1e-7 * scale, rtol: 2e-5 }, `${what}: std, norm`);
  expect(
    got.histogram.counts.reduce((a, b) => a + b, 0),
    `${what}: histogram total`,
  ).toBe(host.length);
  // Bin edges: these small tensors have no value within 1e-4 of one, so the counts are exact.
  expect(got.histogram.counts, `${what}: histogram`).toEqual(want.histogram);
}

describe('statistics inside training steps', () => {
  it('equal the host figures of read-back tensors (Adam, gradient clipping, every 2nd step)', async () => {
    const e = await getEngine();
    const B = 11;
    const bins = 7;
    const model = await new Net().build(e, [F], { seed: 5 });
    // Clipping at a norm the gradients exceed: the statistics must be of the gradients before it.
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 0.02 }, clipNorm: 0.2 });
    const step = await trainer.trainStep(B, 1);
    const rec = await step.statsRecorder({ every: 2, bins });
    const names = model.params().map((p) => p.name);
    const read = async (which: 'value' | 'grad') => Object.fromEntries(await Promise.all(model.params().map(async (p) => [p.name, await p[which].read()] as const)));
    const host: { before: Record<string, Float32Array>; after: Record<string, Float32Array>; grads: Record<string, Float32Array>; norm: number; factor: number; x: Float32Array }[] = [];
    for (let s = 0; s < 5; s++) {
      const { x, y } = batch(B, 100 + s);
      const before = await read('value');
      await trainer.step(x, y, { stats: rec });
      if (s % 2) continue;
      const norm = await trainer.gradientNorm();
      host.push({ before, after: await read('value'), grads: await read('grad'), norm, factor: Math.min(1, 0.2 / (norm + 1e-6)), x });
    }
    await rec.drain();
    expect(rec.snapshots.map((q) => q.step)).toEqual([0, 2, 4]);
    expect(
      host.some((h) => h.factor < 0.99),
      'the clipping must act in at least one step',
    ).toBe(true);
    rec.snapshots.forEach((snap, i) => {
      const h = host[i];
      expect(snap.batch).toBe(B);
      expect(snap.params.map((p) => p.name)).toEqual(names);
      for (const p of snap.params) {
        expect(p.decay).toBe(p.name.endsWith('weight'));
        expectSummary(p.value, h.after[p.name], bins, `step ${snap.step} ${p.name}`);
        // Read after the step, the gradient is clipped: the statistics saw it before, 1/factor larger.
        expectSummary(
          p.grad,
          Float64Array.from(h.grads[p.name], (v) => v / h.factor),
          bins,
          `step ${snap.step} d${p.name}`,
        );
        const d = ref.tensorStats(h.after[p.name], { bins: 0, prev: h.before[p.name] }).record;
        expectClose([p.update.norm], [d[STAT_SLOTS.deltaNorm]], { atol: 1e-9, rtol: 1e-4 }, `step ${snap.step} ${p.name}: update norm`);
        if (d[STAT_SLOTS.prevNorm] === 0) expect(p.update.ratio).toBeNull();
        else expectClose([p.update.ratio!], [d[STAT_SLOTS.deltaNorm] / d[STAT_SLOTS.prevNorm]], { rtol: 1e-4 }, `step ${snap.step} ${p.name}: update ratio`);
      }
      // The global norm the clipping measured is the norm of the recorded gradients.
      const global = Math.sqrt(snap.params.reduce((a, p) => a + p.grad.norm ** 2, 0));
      expectClose([global], [h.norm], { rtol: 1e-4 }, `step ${snap.step}: global gradient norm`);
      const { h: relu1, k: leaky } = hostActivations(h.before, h.x, B);
      const zeros = (v: Float64Array) => v.filter((q) => q <= 0).length / v.length;
      expect(snap.activations.map((a) => [a.name, a.producer, a.kind, a.shape])).toEqual([
        ['relu', 'a', 'relu', [H]],
        ['leaky_relu', 'add', 'leaky_relu', [H]],
      ]);
      expectClose(
        snap.activations.map((a) => a.deadFraction),
        [zeros(relu1), zeros(leaky)],
        { atol: 1e-6 },
        `step ${snap.step}: dead fractions`,
      );
      expectClose(
        snap.activations.map((a) => a.mean),
        [relu1.reduce((a, b) => a + b) / relu1.length, leaky.reduce((a, b) => a + b) / leaky.length],
        { atol: 1e-5 },
        `step ${snap.step}: activation means`,
      );
    });
    rec.dispose();
    trainer.dispose();
    model.dispose();
  });

  it('are placed in the step: each activation right after its producer, gradients before clipping, parameters after the update', async () => {
    const e = await getEngine();
    // As in the test above (the same kernels, compiled once per file).
    const model = await new Net().build(e, [F], { seed: 1 });
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 0.02 }, clipNorm: 0.2 });
    const step = await trainer.trainStep(11, 1);
    const rec = await step.statsRecorder({ every: 3, bins: 4 });
    const { x, y } = batch(11, 1);
    step.write(x, y);
    const same = (a: PhasedDispatch[], b: PhasedDispatch[]) => a.length === b.length && a.every((d, i) => d.dispatch === b[i].dispatch && d.phase === b[i].phase && d.index === b[i].index);
    const plain = step.dispatches();
    const watched = step.dispatches({ stats: rec });
    expect(
      same(
        watched.filter((d) => d.phase !== 'stats'),
        plain,
      ),
    ).toBe(true);
    const phases = watched.map((d) => d.phase);
    // Activations: 2 dispatches each; gradients and values: 3 each (partials, finish, histogram).
    const P = model.params().length;
    expect(phases.filter((p) => p === 'stats')).toHaveLength(2 * 2 + 3 * P + 3 * P);
    expect(phases.slice(-3 * P).every((p) => p === 'stats')).toBe(true);
    expect(phases.at(-3 * P - 1)).toBe('optimizer');
    const spans = step.net.forwardSpans.filter((s) => s.node.path === 'a' || s.node.path === 'leaky_relu');
    expect(spans).toHaveLength(2);
    for (const span of spans) {
      const i = watched.findIndex((d) => d.phase === 'forward' && d.index === span.end - 1);
      const reads = watched[i + 1].dispatch.tensors().find((t) => t.name === 'x')?.tensor;
      expect(watched[i + 1].phase, span.node.path).toBe('stats');
      expect(reads, span.node.path).toBe(span.outputs[0]);
    }
    const firstClip = phases.indexOf('clip');
    expect(phases.slice(firstClip - 3 * P, firstClip).every((p) => p === 'stats')).toBe(true);
    expect(phases.lastIndexOf('backward')).toBe(firstClip - 3 * P - 1);
    // Not due at step 1: the same dispatches as without a recorder.
    trainer.state.step = 1;
    expect(same(step.dispatches({ stats: rec }), step.dispatches())).toBe(true);
    // A recorder watches the plan it was made for.
    const other = await trainer.trainStep(2, 1);
    expect(() => other.record({ stats: rec })).toThrow(/made for the training step of batch 11; it cannot watch another step \(batch 2\)/);
    rec.dispose();
    trainer.dispose();
    model.dispose();
  });

  it('find the ReLUs fused into a convolution and into a batch norm, and read each right after its producer', async () => {
    const e = await getEngine();
    // The direct convolution: nothing to measure first (the algorithm is not what this tests).
    const model = await new Sequential([new Conv2d(4, { kernel: 3, padding: 1, algorithm: 'direct' }), ReLU(), new BatchNorm2d(), ReLU(), new GlobalAvgPool(), new Dense(2)]).build(e, [1, 5, 5], { seed: 4 });
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.1 } });
    const step = await trainer.trainStep(3, 1);
    const rec = await step.statsRecorder({ every: 1 });
    const r = new Rng(9);
    step.write(
      Float32Array.from({ length: 75 }, () => r.normal()),
      new Float32Array([0, 1, 1]),
    );
    const list = step.dispatches({ stats: rec });
    for (const path of ['layers.0', 'layers.2']) {
      const span = step.net.forwardSpans.find((s) => s.node.path === path)!;
      const i = list.findIndex((d) => d.phase === 'forward' && d.index === span.end - 1);
      expect(list[i + 1].phase, path).toBe('stats');
      expect(list[i + 1].dispatch.tensors().find((t) => t.name === 'x')?.tensor, path).toBe(span.outputs[0]);
    }
    step.record({ stats: rec });
    await rec.drain();
    const [snap] = rec.snapshots;
    expect(snap.activations.map((a) => [a.name, a.producer, a.kind, a.shape])).toEqual([
      ['layers.1', 'layers.0', 'relu', [4, 5, 5]],
      ['layers.3', 'layers.2', 'relu', [4, 5, 5]],
    ]);
    for (const a of snap.activations) {
      expect(a.deadFraction, a.name).toBeGreaterThan(0);
      expect(a.deadFraction, a.name).toBeLessThan(1);
      expect(a.mean, a.name).toBeGreaterThan(0); // a ReLU's output: zeros and positive values
    }
    rec.dispose();
    trainer.dispose();
    model.dispose();
  });

  it('never wait inside the step: the snapshot arrives after it, and a due step without a free staging buffer is skipped', async () => {
    const e = await getEngine();
    const model = await new Sequential([new Dense(5), ReLU(), new Dense(2)]).build(e, [3], { seed: 2 });
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.1 } });
    const step = await trainer.trainStep(2, 8);
    const seen: StatsSnapshot[] = [];
    const rec = await step.statsRecorder({ every: 1, inFlight: 1, onSnapshot: (s) => void seen.push(s) });
    step.write(new Float32Array([1, 2, 3, -1, 0, 1]), new Float32Array([0, 1]));
    step.record({ stats: rec });
    expect(rec.inFlight).toBe(1);
    expect(seen).toHaveLength(0);
    step.record({ stats: rec }); // due, but the only staging buffer is still out
    expect(rec.skipped).toBe(1);
    await rec.drain();
    expect(seen.map((s) => s.step)).toEqual([0]);
    expect(rec.snapshots).toHaveLength(0); // given to the callback, not kept
    step.record({ stats: rec });
    await rec.drain();
    expect(seen.map((s) => s.step)).toEqual([0, 2]);
    expect(seen[1].activations.map((a) => a.name)).toEqual(['layers.1']);
    rec.dispose();
    trainer.dispose();
    model.dispose();
  });
});

function dataset(n: number, seed: number): Dataset {
  const r = new Rng(seed);
  const x = Float32Array.from({ length: n * F }, () => r.normal());
  const y = Uint8Array.from({ length: n }, () => r.int(C));
  return { name: 'random', task: 'classification', inputShape: [F], numClasses: C, train: { n, x, y }, test: { n, x, y }, normalization: { kind: 'standardize', mean: new Array(F).fill(0), std: new Array(F).fill(1) } };
}

describe('statistics in fit', () => {
  it('a ReLU layer dead by construction (biases at -10): its dead share is 1, the layer before it gets no gradient, and the warnings name them', async () => {
    const e = await getEngine();
    const model = await new Sequential([new Dense(8), ReLU(), new Dense(C)]).build(e, [F], { seed: 3 });
    e.fill(model.params().find((p) => p.name === 'layers.0.bias')!.value, -10);
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 1e-3 } });
    const snaps: StatsSnapshot[] = [];
    const watch = new StatsWatch();
    await trainer.fit(dataset(64, 4), {
      epochs: 1,
      batchSize: 8,
      stats: {
        every: 3,
        onSnapshot: (s) => {
          snaps.push(s);
          watch.check(s);
        },
      },
    });
    expect(snaps.map((s) => s.step)).toEqual([0, 3, 6]); // 8 steps; every one delivered before fit returned
    for (const s of snaps) {
      expect(s.activations).toEqual([expect.objectContaining({ name: 'layers.1', producer: 'layers.0', deadFraction: 1, mean: 0 })]);
      for (const p of s.params.filter((q) => q.name !== 'layers.2.bias')) {
        expect([p.grad.min, p.grad.max, p.grad.norm, p.update.norm], p.name).toEqual([0, 0, 0, 0]);
      }
      expect(s.params.find((p) => p.name === 'layers.2.bias')!.grad.norm).toBeGreaterThan(0);
    }
    await expect(trainer.fit(dataset(16, 4), { epochs: 1, batchSize: 8, stats: { every: 1 } })).rejects.toThrow(/fit: stats needs an onSnapshot callback/);
    const w = watch.warnings;
    expect(w.map((x) => [x.step, x.name, x.kind])).toEqual([
      [0, 'layers.0.weight', 'zero-gradient'],
      [0, 'layers.0.bias', 'zero-gradient'],
      // The layer after the dead one reads only zeros: its weight gets no gradient either.
      [0, 'layers.2.weight', 'zero-gradient'],
      [0, 'layers.1', 'dead-activation'],
    ]);
    expect(w[3].message).toBe("step 0: layers.1: 100% of this ReLU's outputs (after layers.0) are zero: the layer is dead (biases too negative, or a learning rate that pushed them there).");
    const series = statsSeries(snaps);
    expect(series.steps).toEqual([0, 3, 6]);
    expect(series.activations[0].deadFraction).toEqual([1, 1, 1]);
    expect(series.params.map((p) => p.name)).toEqual(['layers.0.weight', 'layers.0.bias', 'layers.2.weight', 'layers.2.bias']);
    expect(series.params[2].grad.norm).toEqual(snaps.map((s) => s.params[2].grad.norm));
    trainer.dispose();
    model.dispose();
  });

  it('warns once when a weight update ratio leaves 1e-4..1e-1, and when a gradient explodes', () => {
    const t = (norm: number, extra: Partial<TensorSummary> = {}): TensorSummary => ({ count: 4, mean: 0, std: 1, min: -1, max: 1, norm, nonFinite: 0, histogram: { lo: -1, hi: 1, counts: [2, 2] }, ...extra });
    const snap = (step: number, ratio: number, gradNorm: number, nonFinite = 0): StatsSnapshot => ({
      step,
      batch: 1,
      params: [
        { name: 'fc.weight', shape: [2, 2], decay: true, value: t(1), grad: t(gradNorm, { nonFinite }), update: { norm: ratio, ratio } },
        { name: 'fc.bias', shape: [2], decay: false, value: t(1), grad: t(0.1), update: { norm: 0.5, ratio: 0.5 } },
      ],
      activations: [],
    });
    const watch = new StatsWatch();
    expect(watch.check(snap(0, 1e-3, 0.5))).toEqual([]);
    expect(watch.check(snap(10, 0.3, 0.6)).map((w) => w.message)).toEqual([
      'step 10: fc.weight: the update ratio ||Δw||/||w|| is 0.3 per step, outside the sane band 1e-4..1e-1: each step rewrites a large part of the weight: the learning rate is too high for this layer.',
    ]);
    expect(watch.check(snap(20, 0.5, 0.6))).toEqual([]); // once per parameter and kind
    expect(watch.check(snap(30, 1e-3, 51)).map((w) => w.message)).toEqual(['step 30: fc.weight: the gradient norm grew from 0.5 to 51, over 100 times: it is exploding.']);
    const fresh = new StatsWatch();
    expect(fresh.check(snap(0, 1e-5, 2e3)).map((w) => w.kind)).toEqual(['exploding-gradient', 'update-ratio']);
    expect(new StatsWatch().check(snap(0, 1e-3, 1, 3))[0].message).toBe('step 0: fc.weight: the gradient has 3 non-finite values (NaN or Inf): it exploded.');
  });
});
