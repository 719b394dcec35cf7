// Training continued in PyTorch from an export: one step of train.py gives the weights our engine
// gives after the same step on the same batch (plain SGD; and Adam from a state with moments, which
// checks the optimizer state's conversion); train.py's data order, augmentation and table split are
// the engine's, number for number.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { augmentChoice } from '../src/data/augment.ts';
import { Batcher } from '../src/data/batcher.ts';
import { refitSchedule } from '../src/optim/schedule.ts';
import { splitIndices } from '../src/data/csv.ts';
import { encodeIdx } from '../src/data/idx.ts';
import { encodeCifarBatch } from '../src/data/cifar.ts';
import type { Dataset } from '../src/data/dataset.ts';
import { loadCifar10Dir, loadCsvFile, loadIdxDir } from '../src/data/node.ts';
import { exportPytorch } from '../src/export/pytorch.ts';
import type { Model } from '../src/nn/model.ts';
import { makePreset, presetNames } from '../src/nn/presets.ts';
import type { OptimizerConfig } from '../src/optim/optimizer.ts';
import { datasetInfo, readCheckpoint } from '../src/train/checkpoint.ts';
import { Trainer } from '../src/train/trainer.ts';
import { Rng } from '../src/util/random.ts';
import { SkipNet, runPython } from './export-models.ts';
import { getEngine } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'wgtrain-export-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A small IDX dataset of 10x10 images with random pixels and labels, written where train.py reads it. */
function writeIdxData(at: string, nTrain: number, nTest: number): void {
  mkdirSync(at, { recursive: true });
  const rng = new Rng(21);
  const images = (n: number) => Uint8Array.from({ length: n * 100 }, () => rng.int(256));
  const labels = (n: number) => Uint8Array.from({ length: n }, () => rng.int(10));
  writeFileSync(join(at, 'train-images-idx3-ubyte'), encodeIdx([nTrain, 10, 10], images(nTrain)));
  writeFileSync(join(at, 'train-labels-idx1-ubyte'), encodeIdx([nTrain], labels(nTrain)));
  writeFileSync(join(at, 't10k-images-idx3-ubyte'), encodeIdx([nTest, 10, 10], images(nTest)));
  writeFileSync(join(at, 't10k-labels-idx1-ubyte'), encodeIdx([nTest], labels(nTest)));
}

const DATA = join(dir, 'idx');
writeIdxData(DATA, 96, 40);
const BATCH = 32;

/** The tolerance for one step's weights: 1e-5 relative to the tensor's largest value. */
const TOL = 1e-5;

interface StepCase {
  name: string;
  make(): Model;
  optimizer: OptimizerConfig;
  labelSmoothing?: number;
  clipNorm?: number;
  /** Steps taken here before the export (so the optimizer state holds something). */
  before: number;
  augment?: { pad: number; flip: boolean };
}

const CASES: StepCase[] = [
  { name: 'MLP, plain SGD', make: () => makePreset('mlp', 10, { hidden: [24, 16] }), optimizer: { kind: 'sgd', lr: 0.1, momentum: 0 }, before: 0 },
  { name: 'skip connections and batch norm, plain SGD, augmented batch', make: () => new SkipNet({ stemBias: false }), optimizer: { kind: 'sgd', lr: 0.1, momentum: 0, weightDecay: 0.01 }, before: 0, augment: { pad: 2, flip: true } },
  {
    name: 'skip connections, SGD with Nesterov momentum after 2 steps, step schedule',
    make: () => new SkipNet({ stemBias: false }),
    optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, schedule: { kind: 'step', everySteps: 2, gamma: 0.5 } },
    before: 2,
  },
  {
    name: 'MLP, SGD with momentum after 1 step, label smoothing 0.1, gradients clipped to norm 0.05',
    make: () => makePreset('mlp', 10, { hidden: [24] }),
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    labelSmoothing: 0.1,
    clipNorm: 0.05,
    before: 1,
  },
  ...(presetNames().includes('vit')
    ? [{ name: 'ViT with a class token (layer norm, attention), plain SGD', make: () => makePreset('vit', 10, { pool: 'cls', depth: 1, width: 16, heads: 2, patch: 5 } as never), optimizer: { kind: 'sgd', lr: 0.1, momentum: 0 }, before: 0 }]
    : []),
  {
    name: 'MLP, AdamW after 3 steps, cosine schedule',
    make: () => makePreset('mlp', 10, { hidden: [24] }),
    optimizer: { kind: 'adamw', lr: 0.01, weightDecay: 0.05, schedule: { kind: 'cosine', warmupSteps: 2, totalSteps: 10 } },
    before: 3,
  },
];

describe('one training step in PyTorch equals ours', () => {
  for (const [i, c] of CASES.entries()) {
    it(c.name, async () => {
      const e = await getEngine();
      const data = loadIdxDir(DATA);
      const model = c.make();
      await model.build(e, data.inputShape, { seed: 9 });
      const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: c.optimizer, labelSmoothing: c.labelSmoothing, clipNorm: c.clipNorm });
      const batcher = new Batcher(data.train, data, { batchSize: BATCH, shuffle: true, seed: trainer.state.dataSeed, dropLast: true, augment: c.augment });
      const x = new Float32Array(BATCH * 100);
      const y = new Float32Array(BATCH);
      for (let s = 0; s < c.before; s++) {
        batcher.fill(1, s % batcher.numBatches, x, y);
        await trainer.step(x, y);
      }
      const out = join(dir, `case${i}`);
      const files = await exportPytorch(trainer, { dataset: datasetInfo(data), training: { dataset: DATA, batchSize: BATCH, epochs: 1, augment: c.augment ?? null } });
      mkdirSync(out);
      for (const [name, bytes] of files) writeFileSync(join(out, name), bytes);
      const before = new Map<string, Float32Array>();
      for (const t of [...model.params(), ...model.buffers()]) before.set(t.name, (await t.value.read()) as Float32Array);

      // train.py resumes at the start of epoch 0 (the engine's rule for a resumed run): its first batch is batch 0.
      await runPython([join(out, 'train.py'), '--max-steps', '1', '--out', join(out, 'after.safetensors')]);
      // Told to reach epoch 1, train.py refits a schedule planned for another length as the CLI
      // does on a resume (the cosine case's 10 steps): ours gets the same refit.
      const refit = refitSchedule(trainer.optimizer.config.schedule, trainer.state.step + batcher.numBatches);
      if (c.optimizer.schedule?.kind === 'cosine') expect(refit).not.toBeNull();
      if (refit) trainer.optimizer.reschedule(refit);
      batcher.fill(0, 0, x, y);
      await trainer.step(x, y);
      // Clipping was in play: the step's gradient norm was above the limit.
      if (c.clipNorm) expect(await trainer.gradientNorm()).toBeGreaterThan(c.clipNorm);

      const theirs = readCheckpoint(new Uint8Array(readFileSync(join(out, 'after.safetensors'))), 'after.safetensors');
      expect(theirs.meta.state.step).toBe(c.before + 1);
      let moved = 0;
      for (const t of [...model.params(), ...model.buffers(), ...trainer.optimizer.state()]) {
        const ours = (await t.value.read()) as Float32Array;
        const got = theirs.tensors.get(t.name);
        expect(got, `${t.name} in train.py's checkpoint`).toBeDefined();
        let big = 0;
        let diff = 0;
        let at = -1;
        for (let k = 0; k < ours.length; k++) {
          big = Math.max(big, Math.abs(ours[k]));
          const d = Math.abs(ours[k] - got!.data[k]);
          if (!(d <= diff)) [diff, at] = [d, k];
        }
        expect(diff, `${t.name}: max difference at ${at} (ours ${ours[at]}, PyTorch ${got!.data[at]}), largest |value| ${big}`).toBeLessThanOrEqual(TOL * big);
        const b = before.get(t.name);
        if (b) moved = Math.max(moved, ...ours.map((v, k) => Math.abs(v - b[k]) / (big || 1)));
      }
      // The step changed the weights by far more than the tolerance: the comparison can fail.
      expect(moved).toBeGreaterThan(100 * TOL);
      trainer.dispose();
      model.dispose();
    });
  }
});

describe("train.py's data follows the engine's", () => {
  it('epoch orders, augmentation choices and the table split are the same numbers', async () => {
    const script = `
import json, sys
sys.path.insert(0, sys.argv[1])
import wgtrain_io as io
print(json.dumps({
    "orders": [io.epoch_order(37, seed, epoch).tolist() for seed, epoch in [(1, 0), (7, 3), (123456, 11)]],
    "choices": [list(io.augment_choice(2, True, 5, epoch, i)) for epoch in range(3) for i in range(40)],
    "split": [list(s) for s in io._split_indices(101)],
}))
`;
    writeFileSync(join(dir, 'order.py'), script);
    const { stdout } = await runPython([join(dir, 'order.py'), join(import.meta.dirname, '..', 'src', 'export', 'python')]);
    const got = JSON.parse(stdout);
    const data = loadIdxDir(DATA);
    const orders = [
      [1, 0],
      [7, 3],
      [123456, 11],
    ].map(([seed, epoch]) => {
      const split = { n: 37, x: new Uint8Array(37 * 100), y: new Uint8Array(37) };
      return Array.from(new Batcher(split, { ...data, train: split }, { batchSize: 5, shuffle: true, seed }).epochOrder(epoch));
    });
    expect(got.orders).toEqual(orders);
    const choices = [0, 1, 2].flatMap((epoch) => Array.from({ length: 40 }, (_, i) => augmentChoice({ pad: 2, flip: true }, 5, epoch, i))).map((c) => [c.dy, c.dx, c.flip]);
    expect(got.choices).toEqual(choices);
    const { train, test } = splitIndices(101, 0.2, 0);
    expect(got.split).toEqual([train, test]);
  });
});

describe('train.py reads the dataset formats as the engine does', () => {
  /** train.py --eval-only on the exported starting weights reports the test loss and accuracy our evaluate gives. */
  async function sameEvaluation(name: string, data: Dataset, spec: string, loss: 'softmax_cross_entropy' | 'mse', csv?: object) {
    const e = await getEngine();
    const model = makePreset('mlp', data.numClasses, { hidden: [8] });
    await model.build(e, data.inputShape, { seed: 2 });
    const trainer = await Trainer.create(model, { loss, optimizer: { kind: 'sgd', lr: 0.1 } });
    const ours = await trainer.evaluate(data.test, data);
    const out = join(dir, `eval-${name}`);
    mkdirSync(out);
    for (const [f, bytes] of await exportPytorch(trainer, { dataset: datasetInfo(data), training: { dataset: spec, ...(csv ? { csv } : {}) } })) writeFileSync(join(out, f), bytes);
    const { stdout } = await runPython([join(out, 'train.py'), '--eval-only']);
    const m = /test loss ([\d.]+)(?:, test accuracy ([\d.]+)%)? \((\d+) samples\)/.exec(stdout);
    expect(m, stdout).not.toBeNull();
    expect(Number(m![3])).toBe(data.test.n);
    expect(Math.abs(Number(m![1]) - ours.loss)).toBeLessThanOrEqual(1e-4);
    if (ours.accuracy !== null) expect(Number(m![2])).toBeCloseTo(100 * ours.accuracy, 2);
    trainer.dispose();
    model.dispose();
  }

  it('CIFAR-10 binary batches', async () => {
    const at = join(dir, 'cifar');
    mkdirSync(at);
    const rng = new Rng(5);
    const batch = (n: number) =>
      encodeCifarBatch(
        Uint8Array.from({ length: n * 3072 }, () => rng.int(256)),
        Uint8Array.from({ length: n }, () => rng.int(10)),
      );
    writeFileSync(join(at, 'data_batch_1.bin'), batch(30));
    writeFileSync(join(at, 'data_batch_2.bin'), batch(20));
    writeFileSync(join(at, 'test_batch.bin'), batch(25));
    await sameEvaluation('cifar', loadCifar10Dir(at, { log: () => {} }), at, 'softmax_cross_entropy');
  });

  it('CSV tables: class names, the seeded split and the standardisation; regression targets standardised', async () => {
    const rng = new Rng(8);
    const rows = Array.from({ length: 53 }, (_, i) => [rng.uniform(-3, 9).toFixed(3), (rng.normal() * 40).toFixed(2), String(i % 7), ['setosa', 'versicolor', 'virginica'][rng.int(3)], rng.uniform(0, 100).toFixed(1)]);
    const file = join(dir, 'table.csv');
    writeFileSync(file, `id,"width",depth,kind,price\n${rows.map((r) => r.join(',')).join('\n')}\n`);
    const csv = { ignoreColumns: ['id'] };
    await sameEvaluation('csv-class', loadCsvFile(file, { target: 'kind', ...csv }), file, 'softmax_cross_entropy', csv);
    const semi = join(dir, 'table-semicolon.csv');
    writeFileSync(semi, `meta line\nid;width;depth;kind;price\n${rows.map((r) => r.join(';')).join('\n')}\n`);
    const semiCsv = { skipRows: 1, ignoreColumns: ['id', 'kind'] };
    await sameEvaluation('csv-regression', loadCsvFile(semi, { target: 'price', ...semiCsv }), semi, 'mse', semiCsv);
  });
});
