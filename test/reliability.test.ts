// Reliability: divergence stops training and leaves the last checkpoint intact (also one written
// within an epoch by a run that then diverges); resuming gives the same weights as an
// uninterrupted run; long training holds GPU memory flat; engines can be made and destroyed
// repeatedly; a lost device stops training with a clear error and resume works.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../src/data/dataset.ts';
import { Engine } from '../src/gpu/engine.ts';
import { Activation, Flatten } from '../src/nn/activations.ts';
import { Dense } from '../src/nn/dense.ts';
import { Dropout } from '../src/nn/dropout.ts';
import type { Layer } from '../src/nn/layer.ts';
import { writeFileAtomic } from '../src/train/atomic.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { checkpointBytes, datasetInfo, loadWeights, readCheckpoint, trainerFromCheckpoint } from '../src/train/checkpoint.ts';
import { CheckpointFiles } from '../src/train/checkpoint-files.ts';
import { runTraining } from '../src/train/run.ts';
import { DivergenceError, Trainer } from '../src/train/trainer.ts';
import { Rng } from '../src/util/random.ts';
import { getEngine } from './helpers.ts';

/** A small synthetic classification set: 3 Gaussian blobs in 6-D, stored as a tabular dataset. */
function blobs(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const make = (m: number) => {
    const x = new Float32Array(m * 6);
    const y = new Uint8Array(m);
    for (let i = 0; i < m; i++) {
      const c = i % 3;
      y[i] = c;
      for (let j = 0; j < 6; j++) x[i * 6 + j] = (j % 3 === c ? 2 : 0) + 0.7 * rng.normal();
    }
    return { n: m, x, y };
  };
  return {
    name: 'blobs',
    task: 'classification',
    inputShape: [6],
    numClasses: 3,
    train: make(n),
    test: make(Math.floor(n / 4)),
    normalization: { kind: 'standardize', mean: [0, 0, 0, 0, 0, 0], std: [1, 1, 1, 1, 1, 1] },
  };
}

/** A small MLP, built and with its trainer (Adam). */
async function newModel(e: Engine, seed = 5, dropout = 0): Promise<Trainer> {
  const layers: Layer[] = [new Flatten(), new Dense(16), new Activation('relu')];
  if (dropout) layers.push(new Dropout(dropout));
  layers.push(new Dense(3));
  const m = new Sequential(layers);
  await m.build(e, [6], { seed });
  return Trainer.create(m, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 0.01 } });
}

async function weights(t: Trainer): Promise<Float32Array[]> {
  return Promise.all(t.model.params().map((p) => p.value.read()));
}

function dispose(t: Trainer): void {
  t.dispose();
  t.model.dispose();
}

describe('divergence guard', () => {
  it('stops at the step the loss became non-finite and leaves the last checkpoint intact', async () => {
    const e = await getEngine();
    const data = blobs(256, 1);
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-div-'));
    const file = join(dir, 'ckpt.safetensors');
    const m = await newModel(e);
    await m.fit(data, { epochs: 1, batchSize: 32, onEpochEnd: async () => writeFileAtomic(file, await checkpointBytes(m, datasetInfo(data))) });
    const saved = readFileSync(file);
    // A learning rate this large sends the weights to infinity within a few steps.
    const wild = await Trainer.create(m.model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 1e30, momentum: 0 } });
    wild.state = { ...m.state }; // training continues where the first trainer stopped (step 8)
    const err = await wild.fit(data, { epochs: 1, batchSize: 32, logEvery: 4 }).catch((x) => x);
    expect(err).toBeInstanceOf(DivergenceError);
    expect((err as DivergenceError).step).toBeGreaterThanOrEqual(8);
    expect((err as Error).message).toMatch(/diverged.*at step \d+/);
    expect(readFileSync(file).equals(saved)).toBe(true);
    const back = await trainerFromCheckpoint(e, readCheckpoint(new Uint8Array(saved), file), file);
    const ev = await back.evaluate(data.test, data);
    expect(Number.isFinite(ev.loss)).toBe(true);
    dispose(back);
    wild.dispose();
    dispose(m);
  });
});

describe('divergence in a run with checkpoints within epochs', () => {
  it('stops on a growing loss; the last checkpoint written (the last good one) is left byte for byte', async () => {
    const e = await getEngine();
    const data = blobs(512, 7);
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-div-run-'));
    const file = join(dir, 'ck.safetensors');
    const m = await newModel(e);
    // A learning rate that doubles every 8 steps: the loss falls, then climbs while still finite.
    const t = await Trainer.create(m.model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.05, momentum: 0, schedule: { kind: 'step', everySteps: 8, gamma: 2 } } });
    let lastSaved: Buffer | null = null;
    let lastStep = -1;
    const r = await runTraining(t, data, {
      epochs: 20,
      fit: () => ({ batchSize: 16, logEvery: 4, divergence: { factor: 2, window: 64 } }),
      dataset: datasetInfo(data),
      store: new CheckpointFiles(file),
      saveEvery: { steps: 4 },
      onSaved: (s) => {
        lastSaved = readFileSync(file);
        lastStep = s.step;
      },
    });
    expect(r.outcome, r.error?.message).toBe('diverged');
    expect(r.error).toBeInstanceOf(DivergenceError);
    expect(r.error!.message).toMatch(/diverged: the mean loss grew/);
    expect(lastStep).toBeGreaterThan(0);
    expect(r.last.state.step).toBe(lastStep);
    expect(t.state.step).toBeGreaterThan(lastStep); // it trained past the last save before the guard tripped
    expect(readFileSync(file).equals(lastSaved!)).toBe(true);
    t.dispose();
    dispose(m);
  });
});

describe('exact resume', () => {
  it('2 epochs straight equals 1 epoch, save, load, 1 epoch: bit for bit (with dropout)', async () => {
    const e = await getEngine();
    const data = blobs(300, 2);
    const straight = await newModel(e, 9, 0.2);
    await straight.fit(data, { epochs: 2, batchSize: 32 });
    const want = await weights(straight);

    const first = await newModel(e, 9, 0.2);
    await first.fit(data, { epochs: 1, batchSize: 32 });
    const bytes = await checkpointBytes(first, datasetInfo(data));
    dispose(first);
    const resumed = await trainerFromCheckpoint(e, readCheckpoint(bytes, 'mem'), 'mem');
    expect(resumed.state.epoch).toBe(1);
    await resumed.fit(data, { epochs: 1, batchSize: 32 });
    const got = await weights(resumed);
    expect(resumed.state.step).toBe(straight.state.step);
    for (let i = 0; i < want.length; i++) expect(Buffer.from(got[i].buffer).equals(Buffer.from(want[i].buffer))).toBe(true);
    dispose(straight);
    dispose(resumed);
  });

  it('a checkpoint from a different model is refused, naming the tensor and both shapes', async () => {
    const e = await getEngine();
    const data = blobs(64, 3);
    const a = await newModel(e);
    const bytes = await checkpointBytes(a, datasetInfo(data));
    const b = new Sequential([new Flatten(), new Dense(8), new Activation('relu'), new Dense(3)]);
    await b.build(e, [6]);
    expect(() => loadWeights(b, readCheckpoint(bytes, 'a.safetensors').tensors, 'a.safetensors')).toThrow(/a\.safetensors[\s\S]*layers\.1\.weight: file has \[16, 6\], model expects \[8, 6\]/);
    dispose(a);
    b.dispose();
  });
});

describe('no leaks', () => {
  it('thousands of steps: GPU bytes flat after warm-up, heap bounded', async () => {
    const e = await getEngine();
    const data = blobs(512, 4);
    const m = await newModel(e, 1, 0.1);
    await m.fit(data, { epochs: 1, batchSize: 8, logEvery: 50 }); // warm-up: plans, pools
    const bytes0 = e.bytesHeld;
    const created0 = e.stats().buffersCreated;
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    await m.fit(data, { epochs: 40, batchSize: 8, logEvery: 50 }); // 40 * 64 = 2,560 steps
    expect(m.state.step).toBe(41 * 64);
    expect(e.bytesHeld).toBe(bytes0);
    // Each read borrows one staging buffer from the pool, returned at once: no new buffers per step.
    expect(e.stats().buffersCreated - created0).toBeLessThanOrEqual(2);
    global.gc?.();
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(64 * 1024 * 1024);
    dispose(m);
  });

  it('creating and destroying engines and models repeatedly', async () => {
    const data = blobs(64, 5);
    for (let i = 0; i < 8; i++) {
      const e = await Engine.create({ log: () => {} });
      const m = await newModel(e);
      await m.fit(data, { epochs: 1, batchSize: 16 });
      dispose(m);
      await e.sync();
      e.pool.trim();
      // The only buffer left is the engine's one 16-byte placeholder bias of the matmul kernels.
      expect(e.pool.liveBuffers().filter((b) => b.label !== 'matmul:no-bias')).toEqual([]);
      expect(e.bytesHeld).toBeLessThanOrEqual(16);
      e.destroy();
    }
  });
});

describe('device loss', () => {
  it('stops training with a clear error; the checkpoint stays intact and resume continues', async () => {
    const data = blobs(512, 6);
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-lost-'));
    const file = join(dir, 'ckpt.safetensors');
    const e = await Engine.create({ log: () => {} });
    const m = await newModel(e);
    let steps = 0;
    const err = await m
      .fit(data, {
        epochs: 3,
        batchSize: 16,
        logEvery: 4,
        onEpochEnd: async () => writeFileAtomic(file, await checkpointBytes(m, datasetInfo(data))),
        onStep: () => {
          steps++;
          if (m.state.epoch === 1 && steps > 10) e.device.destroy(); // lose the device mid-epoch 2
        },
      })
      .catch((x) => x);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/GPU device was lost.*resume from the last checkpoint/);
    e.destroy();
    const bytes = new Uint8Array(readFileSync(file));
    const e2 = await Engine.create({ log: () => {} });
    const back = await trainerFromCheckpoint(e2, readCheckpoint(bytes, file), file);
    expect(back.state.epoch).toBe(1);
    await back.fit(data, { epochs: 1, batchSize: 16 });
    expect(back.state.epoch).toBe(2);
    dispose(back);
    e2.destroy();
    writeFileSync(join(dir, 'done'), '');
  });
});
