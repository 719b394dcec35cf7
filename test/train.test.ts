// Training on the GPU against the CPU reference, learning a task to near-zero loss, and model
// building errors that name the layer and the shapes.
import { describe, expect, it } from 'vitest';
import { Batcher } from '../src/data/batcher.ts';
import type { Dataset } from '../src/data/dataset.ts';
import { Activation, Flatten } from '../src/nn/activations.ts';
import { Dense } from '../src/nn/dense.ts';
import { LayerShapeError } from '../src/nn/layer.ts';
import type { RefOptimizer } from '../src/reference/graph.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { predict, Trainer } from '../src/train/trainer.ts';
import { Dropout } from '../src/nn/dropout.ts';
import { Rng } from '../src/util/random.ts';
import { expectClose, getEngine, refOf } from './helpers.ts';

function randomDataset(n: number, features: number, classes: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = new Float32Array(n * features).map(() => rng.normal());
  const y = new Uint8Array(n).map(() => rng.int(classes));
  return {
    name: 'random',
    task: 'classification',
    inputShape: [features],
    numClasses: classes,
    train: { n, x, y },
    test: { n, x, y },
    normalization: { kind: 'standardize', mean: new Array(features).fill(0), std: new Array(features).fill(1) },
  };
}

describe('GPU training matches the CPU reference step by step', () => {
  const optimizers: [string, RefOptimizer][] = [
    ['sgd momentum', { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-3 }],
    ['adamw', { kind: 'adamw', lr: 0.003, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 }],
  ];
  for (const [what, opt] of optimizers) {
    it(`2 hidden layers (ReLU fused, tanh), 20 steps, ${what}`, async () => {
      const e = await getEngine();
      const F = 13;
      const C = 5;
      const B = 16;
      const data = randomDataset(20 * B, F, C, 7);
      const model = new Sequential([new Flatten(), new Dense(37), new Activation('relu'), new Dense(19), new Activation('tanh'), new Dense(C)]);
      await model.build(e, [F], { seed: 3 });
      const optimizer = opt.kind === 'sgd' ? { kind: 'sgd' as const, lr: opt.lr, momentum: opt.momentum, weightDecay: opt.weightDecay } : { kind: opt.kind, lr: opt.lr, weightDecay: opt.weightDecay };
      const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer });
      const ref = await refOf(model);

      const gpuLosses: number[] = [];
      await trainer.fit(data, { epochs: 1, batchSize: B, seed: 11, logEvery: 1, onStep: (ev) => void gpuLosses.push(ev.loss) });

      const batcher = new Batcher(data.train, data, { batchSize: B, shuffle: true, seed: 11, dropLast: true });
      const x = new Float32Array(B * F);
      const y = new Float32Array(B);
      const refLosses: number[] = [];
      for (let s = 0; s < 20; s++) {
        batcher.fill(0, s, x, y);
        refLosses.push(ref.trainStep([x], y, B, 'softmax_cross_entropy', opt, s));
      }
      expect(gpuLosses).toHaveLength(20);
      // f32 on both sides but different summation orders; differences compound over 20 steps of
      // training, so 1e-3 relative is the bound (observed well below it).
      for (let s = 0; s < 20; s++) expect(Math.abs(gpuLosses[s] - refLosses[s]), `step ${s}: gpu ${gpuLosses[s]} ref ${refLosses[s]}`).toBeLessThanOrEqual(1e-4 + 1e-3 * Math.abs(refLosses[s]));
      const last = model.params()[4];
      const w = await last.value.read();
      const refW = ref.params.get(last.name)!.value;
      let maxDiff = 0;
      for (let i = 0; i < w.length; i++) maxDiff = Math.max(maxDiff, Math.abs(w[i] - refW[i]));
      expect(maxDiff).toBeLessThan(1e-3);
      model.dispose();
    });
  }
});

describe('learning', () => {
  it('learns two interleaved spirals to near-zero loss', async () => {
    const e = await getEngine();
    const n = 400;
    const rng = new Rng(1);
    const x = new Float32Array(n * 2);
    const y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = i % 2;
      // One full turn each, radius up to 3: inputs of unit scale, as after standardisation.
      const t = (Math.floor(i / 2) / (n / 2)) * 2 * Math.PI + 0.5;
      const r = (3 * t) / (2 * Math.PI + 0.5);
      const a = t + c * Math.PI;
      x[2 * i] = r * Math.cos(a) + 0.01 * rng.normal();
      x[2 * i + 1] = r * Math.sin(a) + 0.01 * rng.normal();
      y[i] = c;
    }
    const data: Dataset = { name: 'spirals', task: 'classification', inputShape: [2], numClasses: 2, train: { n, x, y }, test: { n, x, y }, normalization: { kind: 'standardize', mean: [0, 0], std: [1, 1] } };
    const model = new Sequential([new Flatten(), new Dense(64), new Activation('tanh'), new Dense(64), new Activation('tanh'), new Dense(2)]);
    await model.build(e, [2], { seed: 2 });
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 0.01 } });
    await trainer.fit(data, { epochs: 60, batchSize: 50, logEvery: 8 });
    const r = await trainer.evaluate(data.test, data);
    expect(r.loss).toBeLessThan(0.05);
    expect(r.accuracy).toBeGreaterThan(0.99);
    model.dispose();
  });

  it('learns XOR (binary cross-entropy on logits)', async () => {
    const e = await getEngine();
    const x = Float32Array.from([0, 0, 0, 1, 1, 0, 1, 1]);
    const y = Float32Array.from([0, 1, 1, 0]);
    const data: Dataset = { name: 'xor', task: 'regression', inputShape: [2], numClasses: 1, train: { n: 4, x, y }, test: { n: 4, x, y }, normalization: { kind: 'standardize', mean: [0, 0], std: [1, 1] } };
    const model = new Sequential([new Flatten(), new Dense(8), new Activation('tanh'), new Dense(1)]);
    await model.build(e, [2], { seed: 4 });
    const trainer = await Trainer.create(model, { loss: 'bce_logits', optimizer: { kind: 'adam', lr: 0.05 } });
    await trainer.fit(data, { epochs: 400, batchSize: 4, logEvery: 50 });
    const r = await trainer.evaluate(data.test, data);
    expect(r.loss).toBeLessThan(0.02);
    expect(r.accuracy).toBe(1);
    model.dispose();
  });
});

describe('model building errors name the layer and the shapes', () => {
  it('Dense on an image without Flatten', async () => {
    const e = await getEngine();
    const m = new Sequential([new Dense(10)]);
    await expect(m.build(e, [1, 28, 28])).rejects.toThrow(LayerShapeError);
    await expect(new Sequential([new Dense(10)]).build(e, [1, 28, 28])).rejects.toThrow(/Layer layers\.0 \(Dense\): cannot take input of shape \[1, 28, 28\]/);
  });
  it('dataset and model disagree', async () => {
    const e = await getEngine();
    const m = new Sequential([new Flatten(), new Dense(3)]);
    await m.build(e, [4]);
    const t = await Trainer.create(m, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.1 } });
    await expect(t.fit(randomDataset(8, 5, 3, 1), { epochs: 1 })).rejects.toThrow(/samples of shape \[5\].*built for \[4\]/);
    await expect(t.fit(randomDataset(8, 4, 7, 1), { epochs: 1 })).rejects.toThrow(/has 7 classes, but the model outputs 3/);
    m.dispose();
  });
});

describe('the explicit training loop', () => {
  it('fit without shuffling takes the batches in order, as trainer.step does', async () => {
    const e = await getEngine();
    const data = randomDataset(24, 5, 3, 9);
    const losses: number[][] = [];
    for (const how of ['fit', 'step'] as const) {
      const model = new Sequential([new Dense(8), new Activation('tanh'), new Dense(3)]);
      await model.build(e, [5], { seed: 2 });
      const t = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 } });
      const l: number[] = [];
      if (how === 'fit') await t.fit(data, { epochs: 1, batchSize: 8, shuffle: false, logEvery: 1, onStep: (ev) => void l.push(ev.loss) });
      else {
        for (let b = 0; b < 3; b++) {
          const x = (data.train.x as Float32Array).slice(b * 40, (b + 1) * 40);
          const y = Float32Array.from(data.train.y.slice(b * 8, (b + 1) * 8));
          l.push((await t.step(x, y, { readLoss: true }))!);
        }
      }
      losses.push(l);
      t.dispose();
      model.dispose();
    }
    expect(losses[0]).toHaveLength(3);
    for (let s = 0; s < 3; s++) expect(losses[0][s]).toBeCloseTo(losses[1][s], 6);
  });

  it('a step with dropout off is the step of the same model without dropout; lastOutput and gradient read that step', async () => {
    const e = await getEngine();
    const data = randomDataset(8, 5, 3, 4);
    const x = data.train.x as Float32Array;
    const y = Float32Array.from(data.train.y);
    const withDrop = new Sequential([new Dense(6), new Dropout(0.5), new Dense(3)]);
    const plain = new Sequential([new Dense(6), new Dense(3)]);
    await withDrop.build(e, [5], { seed: 3 });
    await plain.build(e, [5], { seed: 3 });
    // Same weights in both (the dropout layer takes a draw from the build's rng, so copy them).
    const [a, b] = [withDrop.params(), plain.params()];
    for (let i = 0; i < a.length; i++) e.write(b[i].value, await a[i].value.read());
    const opt = { loss: 'softmax_cross_entropy' as const, optimizer: { kind: 'sgd', lr: 0.1, momentum: 0 } };
    const [td, tp] = [await Trainer.create(withDrop, opt), await Trainer.create(plain, opt)];
    const before = await predict(plain, x, 8);
    const lossOff = (await td.step(x, y, { readLoss: true, dropout: false }))!;
    const lossPlain = (await tp.step(x, y, { readLoss: true }))!;
    expect(lossOff).toBeCloseTo(lossPlain, 6);
    expectClose(await td.gradient('layers.0.weight'), await tp.gradient('layers.0.weight'), {}, 'dW with dropout off vs no dropout');
    expectClose(await tp.lastOutput(), before, {}, 'lastOutput: the logits of the step, before its update');
    // With dropout on, the same step differs.
    const lossOn = (await td.step(x, y, { readLoss: true }))!;
    const lossPlain2 = (await tp.step(x, y, { readLoss: true }))!;
    expect(Math.abs(lossOn - lossPlain2)).toBeGreaterThan(1e-4);
    await expect(tp.gradient('nope')).rejects.toThrow(/no parameter "nope" \(it has: layers\.0\.weight, layers\.0\.bias, layers\.1\.weight, layers\.1\.bias\)/);
    for (const t of [td, tp]) {
      t.dispose();
      t.model.dispose();
    }
    const fresh = await Trainer.create(await new Sequential([new Dense(3)]).build(e, [5]), opt);
    await expect(fresh.lastOutput()).rejects.toThrow(/No training step has run yet/);
    fresh.dispose();
    fresh.model.dispose();
  });
});
