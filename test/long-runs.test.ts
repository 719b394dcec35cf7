// Long runs in the library: stopping within an epoch and resuming from a checkpoint taken there
// gives the same weights bit for bit as an uninterrupted run (data order, augmentation, dropout
// masks, BatchNorm statistics, the schedule); a mid-epoch state refuses data it was not cut from
// before any step; the divergence guards stop before a bad state can be saved. A run (runTraining)
// writes checkpoints every N steps keeping the last K, stops cleanly when asked, and after losing
// its GPU device moves to a new one and still ends bit-exact. Pre-flight checks refuse outputs
// that cannot be written and models over the adapter's or the host's limits, naming what and by
// how much; the CLI's option values and the resume command it prints.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../src/data/dataset.ts';
import { Engine } from '../src/gpu/engine.ts';
import { Activation, Flatten } from '../src/nn/activations.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import { Conv2d } from '../src/nn/conv.ts';
import { Dense } from '../src/nn/dense.ts';
import { Dropout } from '../src/nn/dropout.ts';
import { makePreset, mlp } from '../src/nn/presets.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { durationOption, factorOption, formatDuration, saveEveryOption } from '../src/cli/options.ts';
import { resumeCommand } from '../src/cli/long-run.ts';
import { checkFootprint, checkOutputs, graphFootprint, sequentialFootprint, type OutputFile } from '../src/train/preflight.ts';
import { checkpointBytes, datasetInfo, readCheckpoint, trainerFromCheckpoint } from '../src/train/checkpoint.ts';
import { removeStaleTemporaryFiles } from '../src/train/atomic.ts';
import { CheckpointFiles } from '../src/train/checkpoint-files.ts';
import { runTraining } from '../src/train/run.ts';
import { DivergenceError, DivergenceGuard } from '../src/train/divergence.ts';
import { ResumeMismatchError, Trainer, type FitOptions } from '../src/train/trainer.ts';
import { Rng } from '../src/util/random.ts';
import { getEngine } from './helpers.ts';

/** Tiny 8x8 one-channel images of 3 classes (a bright square in a class-dependent corner) with noise. */
function tinyImages(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const make = (m: number) => {
    const x = new Uint8Array(m * 64);
    const y = new Uint8Array(m);
    for (let i = 0; i < m; i++) {
      const c = i % 3;
      y[i] = c;
      for (let k = 0; k < 64; k++) x[i * 64 + k] = rng.int(60);
      const r0 = c === 2 ? 4 : 1;
      const c0 = c === 1 ? 4 : 1;
      for (let r = 0; r < 3; r++) for (let q = 0; q < 3; q++) x[i * 64 + (r0 + r) * 8 + c0 + q] = 180 + rng.int(70);
    }
    return { n: m, x, y };
  };
  return { name: 'tiny-images', task: 'classification', inputShape: [1, 8, 8], numClasses: 3, train: make(n), test: make(24), normalization: { kind: 'scale255' } };
}

/** Conv - BatchNorm - ReLU - Flatten - Dropout - Dense, with Adam on a cosine schedule: every kind of state a resume must restore. */
async function newTrainer(e: Engine, totalSteps: number): Promise<Trainer> {
  const m = new Sequential([new Conv2d(4, { kernel: 3, padding: 1 }), new BatchNorm2d(), new Activation('relu'), new Flatten(), new Dropout(0.3), new Dense(3)]);
  await m.build(e, [1, 8, 8], { seed: 11 });
  return Trainer.create(m, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 0.01, schedule: { kind: 'cosine', warmupSteps: 3, totalSteps } } });
}

const FIT: Omit<FitOptions, 'epochs'> = { batchSize: 8, augment: { pad: 1, flip: true }, logEvery: 4, seed: 3 };

/** Every parameter, running statistic and optimizer moment, by name. */
async function everything(t: Trainer): Promise<Map<string, Float32Array>> {
  const named = [...t.model.params(), ...t.model.buffers(), ...t.optimizer.state()];
  return new Map(await Promise.all(named.map(async (p) => [p.name, await p.value.read()] as [string, Float32Array])));
}

function expectBitEqual(got: Map<string, Float32Array>, want: Map<string, Float32Array>): void {
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [name, w] of want) {
    const g = got.get(name)!;
    const same = Buffer.from(g.buffer, g.byteOffset, g.byteLength).equals(Buffer.from(w.buffer, w.byteOffset, w.byteLength));
    if (!same) {
      const i = g.findIndex((v, k) => v !== w[k]);
      throw new Error(`${name} differs from the uninterrupted run: first at [${i}]: ${g[i]} vs ${w[i]}`);
    }
  }
}

function dispose(t: Trainer): void {
  t.dispose();
  t.model.dispose();
}

async function resume(e: Engine, bytes: Uint8Array): Promise<Trainer> {
  return trainerFromCheckpoint(e, readCheckpoint(bytes, 'mid.safetensors'), 'mid.safetensors');
}

describe('mid-epoch checkpoints resume exactly', () => {
  const data = tinyImages(100, 1); // 12 batches of 8 per epoch (the last 4 samples dropped)
  const EPOCHS = 2;
  const total = EPOCHS * 12;
  let want: Map<string, Float32Array>;
  let wantEvents: { loss: number }[];

  it('a stop within the epoch leaves the state there; resuming ends where an uninterrupted run ends, bit for bit', async () => {
    const e = await getEngine();
    const straight = await newTrainer(e, total);
    wantEvents = await straight.fit(data, { ...FIT, epochs: EPOCHS });
    want = await everything(straight);
    expect(straight.state.step).toBe(total);
    dispose(straight);

    for (const stopAt of [5, 17]) {
      const first = await newTrainer(e, total);
      const events = await first.fit(data, { ...FIT, epochs: EPOCHS, shouldStop: () => first.state.step >= stopAt });
      expect(first.state).toMatchObject({ step: stopAt, epoch: Math.floor(stopAt / 12), batch: stopAt % 12 });
      expect(events).toHaveLength(Math.floor(stopAt / 12));
      const bytes = await checkpointBytes(first, datasetInfo(data));
      dispose(first);
      const back = await resume(e, bytes);
      expect(back.state.batch).toBe(stopAt % 12);
      const rest = await back.fit(data, { ...FIT, epochs: EPOCHS - back.state.epoch });
      expect(back.state).toMatchObject({ step: total, epoch: EPOCHS, batch: 0 });
      expectBitEqual(await everything(back), want);
      // The resumed epoch reports all of its batches (those before the stop come from the checkpoint).
      const resumedEpoch = rest[0];
      expect(resumedEpoch.loss).toBeCloseTo(wantEvents[resumedEpoch.epoch - 1].loss, 5);
      dispose(back);
    }
  });

  it('checkpoints every N steps: resuming from one (as after a kill) ends bit-exact', async () => {
    const e = await getEngine();
    const saved: { step: number; bytes: Uint8Array }[] = [];
    const t = await newTrainer(e, total);
    await t.fit(data, {
      ...FIT,
      epochs: EPOCHS,
      checkpointEvery: { steps: 5 },
      onCheckpoint: async (ev) => {
        saved.push({ step: ev.step, bytes: await checkpointBytes(t, datasetInfo(data)) });
      },
    });
    // Steps 5, 10 (epoch 1), 15, 20 (epoch 2); never at an epoch's last batch (12, 24).
    expect(saved.map((s) => s.step)).toEqual([5, 10, 15, 20]);
    expectBitEqual(await everything(t), want);
    dispose(t);
    const back = await resume(e, saved[2].bytes); // epoch 2, batch 3
    expect(back.state).toMatchObject({ epoch: 1, batch: 3, step: 15 });
    await back.fit(data, { ...FIT, epochs: EPOCHS - back.state.epoch });
    expectBitEqual(await everything(back), want);
    dispose(back);
  });

  it('refuses, before any step, to continue an epoch on other data or batching', async () => {
    const e = await getEngine();
    const t = await newTrainer(e, total);
    await t.fit(data, { ...FIT, epochs: 1, shouldStop: () => t.state.step >= 7 });
    const bytes = await checkpointBytes(t, datasetInfo(data));
    dispose(t);
    const other = tinyImages(100, 2); // same size, other samples
    const cases: [string, Dataset, Partial<FitOptions>, RegExp][] = [
      ['fewer samples', tinyImages(90, 1), {}, /100 training samples, this data has 90/],
      ['other samples', other, {}, /other training data of the same size/],
      ['another batch size', data, { batchSize: 4 }, /batches of 8, this run's are of 4/],
      ['no augmentation', data, { augment: undefined }, /augmentation shift by up to 1 \+ flip, this run's is none/],
    ];
    for (const [what, d, change, want] of cases) {
      const back = await resume(e, bytes);
      const err = await back.fit(d, { ...FIT, ...change, epochs: 1 }).catch((x) => x);
      expect(err, what).toBeInstanceOf(ResumeMismatchError);
      expect((err as Error).message).toMatch(want);
      expect((err as Error).message).toMatch(/epoch 1, batch 7 of 12/);
      expect(back.state.step, `${what}: no step ran`).toBe(7);
      dispose(back);
    }
  });
});

describe('divergence guard on a growing loss', () => {
  it('trips on a window mean more than `factor` times the lowest of the last `window` steps', () => {
    const g = new DivergenceGuard({ factor: 3, window: 100 });
    g.check(25, 2.0);
    g.check(50, 1.0);
    g.check(75, 2.9); // under 3x the lowest (1.0)
    expect(() => g.check(100, 3.1)).toThrow(/grew 3\.10-fold, from 1\.000 \(steps to 50\) to 3\.100 \(steps to 100\)/);
    // The lowest is only looked for within the window: 1.0 at step 50 is out of reach of step 200.
    const h = new DivergenceGuard({ factor: 3, window: 100 });
    h.check(50, 1.0);
    h.check(120, 2.5);
    expect(() => h.check(200, 3.5)).not.toThrow();
    expect(() => new DivergenceGuard({ factor: 1, window: 10 })).toThrow(/factor must be > 1/);
  });

  it('stops fit with DivergenceError, and a non-finite weight is never encoded as a checkpoint', async () => {
    const e = await getEngine();
    const data = tinyImages(100, 1);
    const t = await newTrainer(e, 24);
    // A learning rate that grows 4x every 3 steps: the loss climbs for a while before it overflows.
    const wild = await Trainer.create(t.model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.05, momentum: 0, schedule: { kind: 'step', everySteps: 3, gamma: 4 } } });
    const err = await wild.fit(data, { ...FIT, epochs: 3, logEvery: 2, divergence: { factor: 2, window: 50 } }).catch((x) => x);
    expect(err).toBeInstanceOf(DivergenceError);
    // Seeded: the growth guard trips while the loss is still finite, before the NaN guard would.
    expect((err as Error).message).toMatch(/diverged: the mean loss grew \d\.\d+-fold, from .* \(steps to \d+\) to .* over the limit of 2-fold within 50 steps/);
    expect(Number.isFinite((err as DivergenceError).loss)).toBe(true);
    // Push the weights past float range: the checkpoint refuses to encode them.
    const huge = await Trainer.create(t.model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 1e38, momentum: 0 } });
    await huge.step(new Float32Array(8 * 64).fill(1), new Float32Array(8).fill(1)).catch(() => {});
    await huge.step(new Float32Array(8 * 64).fill(1), new Float32Array(8).fill(2)).catch(() => {});
    await expect(checkpointBytes(huge, null, { requireFinite: true })).rejects.toThrow(/holds (NaN|-?Infinity) \(at index \d+\) after step \d+, so no checkpoint was written/);
    wild.dispose();
    huge.dispose();
    dispose(t);
  });
});

describe('a training run (runTraining)', () => {
  const data = tinyImages(100, 1);
  const EPOCHS = 2;
  const total = EPOCHS * 12;
  const info = datasetInfo(data);

  async function baseline(): Promise<Map<string, Float32Array>> {
    const e = await getEngine();
    const t = await newTrainer(e, total);
    await t.fit(data, { ...FIT, epochs: EPOCHS });
    const w = await everything(t);
    dispose(t);
    return w;
  }

  it('saves every N steps and at epoch ends, keeps the last K by step, and stops cleanly mid-epoch', async () => {
    const e = await getEngine();
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-run-'));
    const path = join(dir, 'ck.safetensors');
    const t = await newTrainer(e, total);
    const saves: string[] = [];
    const r = await runTraining(t, data, {
      epochs: EPOCHS,
      fit: () => FIT,
      dataset: info,
      store: new CheckpointFiles(path, 3),
      saveEvery: { steps: 5 },
      stopRequested: () => (t.state.step >= 17 ? 'test stop' : null),
      onSaved: (s, why) => saves.push(`${why}@${s.step}`),
    });
    expect(r.outcome).toBe('stopped');
    expect(r.stopReason).toBe('test stop');
    expect(saves).toEqual(['interval@5', 'interval@10', 'epoch@12', 'interval@15', 'stop@17']);
    expect(r.history.map((h) => h.epoch)).toEqual([1]);
    expect(r.last).toMatchObject({ path, state: { step: 17, epoch: 1, batch: 5 } });
    // The newest at the path, the two before it beside it; older ones pruned.
    expect(readdirSync(dir).sort()).toEqual(['ck-step12.safetensors', 'ck-step15.safetensors', 'ck.safetensors']);
    expect(readCheckpoint(new Uint8Array(readFileSync(join(dir, 'ck-step15.safetensors'))), 'kept').meta.state).toMatchObject({ step: 15, batch: 3 });
    expect(readCheckpoint(new Uint8Array(readFileSync(path)), path).meta.state).toMatchObject({ step: 17, batch: 5 });
    dispose(r.trainer);
  });

  it('after losing the GPU device mid-epoch, resumes on a new one from the last checkpoint and ends bit-exact', async () => {
    const want = await baseline();
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-lost-'));
    const e1 = await Engine.create({ log: () => {} });
    const engines: Engine[] = [e1];
    const t = await newTrainer(e1, total);
    const logs: string[] = [];
    const r = await runTraining(t, data, {
      epochs: EPOCHS,
      fit: () => ({ ...FIT, onStep: () => void (t.state.step >= 19 && !e1.isLost && e1.device.destroy()) }),
      dataset: info,
      store: new CheckpointFiles(join(dir, 'ck.safetensors')),
      saveEvery: { steps: 5 },
      newEngine: async () => {
        const e = await Engine.create({ log: () => {} });
        engines.push(e);
        return e;
      },
      log: (l) => logs.push(l),
    });
    expect(r.outcome, r.error?.message).toBe('finished');
    expect(r.recovered).toBe(true);
    expect(r.trainer).not.toBe(t);
    expect(logs[0]).toMatch(/GPU device was lost at step \d+ .*resume from .*ck\.safetensors \(epoch 2, batch 3 of 12\)/);
    expect(logs[1]).toMatch(/New device ready: resumed from .*ck\.safetensors at step 15/);
    expectBitEqual(await everything(r.trainer), want);
    dispose(r.trainer);
    for (const e of engines) e.destroy();
  });

  it('when no new device can be had, ends naming the checkpoint to resume from', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-lost-'));
    const e1 = await Engine.create({ log: () => {} });
    const t = await newTrainer(e1, total);
    const r = await runTraining(t, data, {
      epochs: EPOCHS,
      fit: () => ({ ...FIT, onStep: () => void (t.state.step >= 8 && !e1.isLost && e1.device.destroy()) }),
      dataset: info,
      store: new CheckpointFiles(join(dir, 'ck.safetensors')),
      saveEvery: { steps: 5 },
      newEngine: async () => {
        throw new Error('no adapter');
      },
    });
    expect(r.outcome).toBe('device-lost');
    expect(r.error?.message).toMatch(/GPU device was lost.*no new device could take over: no adapter/);
    expect(r.last).toMatchObject({ path: join(dir, 'ck.safetensors'), state: { step: 5 } });
    expect(existsSync(join(dir, 'ck.safetensors'))).toBe(true);
    e1.destroy();
  });
});

describe('pre-flight: outputs', () => {
  it('refuses a missing directory (unless --mkdir), a directory, a path under a file, one file named twice; writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-out-'));
    writeFileSync(join(dir, 'a-file'), 'x');
    const refusals: [OutputFile[], RegExp][] = [
      [[{ option: '--save', path: join(dir, 'no/such/ck.safetensors') }], /--save .*no\/such\/ck\.safetensors: the directory .*no\/such does not exist; create it, or pass --mkdir/],
      [[{ option: '--save', path: dir }], /--save .*: is a directory; name a file in it/],
      [[{ option: '--metrics-out', path: join(dir, 'a-file/deeper/m.json') }], /--metrics-out .*: .*\/a-file is a file, not a directory/],
      [
        [
          { option: '--save', path: join(dir, 'x.json') },
          { option: '--metrics-out', path: join(dir, '.', 'x.json') },
        ],
        /--save and --metrics-out both name .*x\.json: give each its own file/,
      ],
    ];
    for (const [files, want] of refusals) await expect(checkOutputs(files)).rejects.toThrow(want);
    expect(readdirSync(dir)).toEqual(['a-file']);
    const made = await checkOutputs([{ option: '--save', path: join(dir, 'new/deep/ck.safetensors') }], { mkdir: true });
    expect(made).toEqual([join(dir, 'new/deep')]);
    expect(readdirSync(join(dir, 'new/deep'))).toEqual([]); // the probe file is gone
  });
});

describe('checkpoint files (--keep)', () => {
  it('keeps the one it replaces when it knows its step (written by this run, or resumed from), never one it does not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-keep-'));
    const path = join(dir, 'ck.safetensors');
    const bytes = (v: number) => new Uint8Array([v]);
    // A file from some earlier run: its step is unknown, so it is replaced, not kept under a guessed name.
    writeFileSync(path, bytes(1));
    const fresh = new CheckpointFiles(path, 3);
    await fresh.write(bytes(2), 100);
    expect(readdirSync(dir)).toEqual(['ck.safetensors']);
    await fresh.write(bytes(3), 200);
    expect(readdirSync(dir).sort()).toEqual(['ck-step100.safetensors', 'ck.safetensors']);
    // A run resumed from the file at step 200 knows it: the next write keeps it, and prunes to 3 in all.
    const resumed = new CheckpointFiles(path, 3, 200);
    await resumed.write(bytes(4), 250);
    await resumed.write(bytes(5), 300);
    expect(readdirSync(dir).sort()).toEqual(['ck-step200.safetensors', 'ck-step250.safetensors', 'ck.safetensors']);
    expect([...readFileSync(join(dir, 'ck-step250.safetensors'))]).toEqual([4]);
    expect([...readFileSync(path)]).toEqual([5]);
    // The same step twice (a stop right after an interval save) keeps nothing twice.
    await resumed.write(bytes(6), 300);
    expect(readdirSync(dir).sort()).toEqual(['ck-step200.safetensors', 'ck-step250.safetensors', 'ck.safetensors']);
  });
});

describe('temporary files of interrupted writes', () => {
  it("those of dead writers are removed beside the checkpoint; a live writer's and other files stay", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-tmp-'));
    const path = join(dir, 'ck.safetensors');
    // A process id that was just in use and has exited: its writes can no longer finish.
    const child = spawn(process.execPath, ['-e', '']);
    const dead = child.pid!;
    await new Promise((r) => child.on('exit', r));
    const names = [`.ck.safetensors.tmp-${dead}-0a1b2c`, `.ck.safetensors.tmp-${process.ppid}-0a1b2c`, `.other.safetensors.tmp-${dead}-0a1b2c`, 'ck.safetensors'];
    for (const n of names) writeFileSync(join(dir, n), 'x');
    removeStaleTemporaryFiles(path);
    expect(readdirSync(dir).sort()).toEqual(names.slice(1).sort());
  });
});

describe('pre-flight: the model against the adapter and the host', () => {
  const limits = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 };
  const target = { batch: 64, evalBatch: 500, optimizerSlots: 2, limits, software: true, hostBytes: 64 * 2 ** 30, checkpoints: true };

  it('follows the layers of the presets before they are built: the same parameters and shapes as the built graph', async () => {
    const e = await getEngine();
    const cases: [string, number[], Record<string, unknown>][] = [
      ['mlp', [1, 28, 28], { hidden: [32, 16], dropout: 0.1 }],
      ['cnn', [1, 28, 28], {}],
      ['cnn-cifar', [3, 32, 32], {}],
    ];
    for (const [name, shape, opts] of cases) {
      const m = makePreset(name, 10, opts);
      const before = sequentialFootprint(m, shape)!;
      expect(before, name).not.toBeNull();
      await m.build(e, shape, { seed: 1 });
      const after = graphFootprint(m);
      const params = (f: typeof before) => f.layers.flatMap((l) => l.params.map((p) => `${p.name} [${p.shape.join(', ')}]`));
      expect(params(before), name).toEqual(params(after));
      // Fusion folds ReLUs into their producer: compare the outputs of the ops that remain.
      const outputs = new Map(before.layers.map((l) => [l.name.split(' ')[0], l.output.join('x')]));
      for (const l of after.layers) expect(outputs.get(l.name.split(' ')[0]), `${name} ${l.name}`).toBe(l.output.join('x'));
      m.dispose();
    }
  });

  it('names the layer, its bytes and the limit: weights, activations, and the host', () => {
    const big = sequentialFootprint(mlp(10, { hidden: [200000, 200000] }), [1, 28, 28])!;
    expect(() => checkFootprint(big, target)).toThrow(
      'layers.3 (Dense 200000→200000): 149.0 GiB (160,000,000,000 bytes) of weights (layers.3.weight [200000, 200000]); this adapter allows 1.0 GiB (1,073,741,824 bytes) per buffer (maxStorageBufferBindingSize), at most 268,435,456 values per tensor: make the layer smaller.',
    );
    // 784 -> 100,000 fits as weights (314 MB) but not as activations of 4,096 samples (1.6 GB).
    const wide = sequentialFootprint(mlp(10, { hidden: [100000] }), [1, 28, 28])!;
    expect(() => checkFootprint(wide, { ...target, batch: 4096, evalBatch: 10 })).toThrow(
      /^layers\.1 \(Dense 784→100000\): its output for a training batch of 4096 \[4096, 100000\] is 1\.5 GiB \(1,638,400,000 bytes\); this adapter allows 1\.0 GiB .*: a batch size of at most 2684 fits\.$/,
    );
    expect(() => checkFootprint(wide, target)).not.toThrow();
    // On a software adapter the "GPU" memory is host memory. Parameters: 784·100000 + 100000 +
    // 100000·10 + 10 = 79,500,010 values, 318,000,040 bytes; held 4 times (value, gradient, Adam's
    // m and v), plus the largest activation and its gradient (500 · 100000 · 4 bytes, twice):
    // 1,672,000,160 bytes. Checkpoints: 3 copies of weights and 2 Adam slots: 2,862,000,360 bytes.
    expect(() => checkFootprint(wide, { ...target, hostBytes: 2 ** 30 })).toThrow(
      /^the model needs at least 4\.2 GiB \(4,534,000,520 bytes\) of host memory \(1\.6 GiB \(1,672,000,160 bytes\) of parameters, gradients, optimizer state and activations, which a software adapter keeps in host memory, plus 2\.7 GiB \(2,862,000,360 bytes\) for checkpoints .*\), and this machine has 1\.0 GiB \(1,073,741,824 bytes\): make the model smaller\.$/,
    );
    expect(() => checkFootprint(wide, { ...target, hostBytes: 2 ** 30, software: false, checkpoints: false })).not.toThrow();
  });

  it('cannot follow custom layers before the build (checked on the graph once built)', () => {
    expect(sequentialFootprint(new Sequential([new Flatten(), new Dense(3)]), [4])).not.toBeNull();
    // A module that is not one of the known layers (here a nested model) cannot be followed.
    expect(sequentialFootprint(new Sequential([new Flatten(), new Sequential([new Dense(3)])]), [4])).toBeNull();
    expect(sequentialFootprint(new Sequential([new Dense(3)]), [1, 4, 4])).toBeNull(); // Dense on an image: the build names that
  });
});

describe('CLI option values and the resume command', () => {
  it('--save-every takes steps or a time; --max-time a time; --stop-on-divergence a factor above 1', () => {
    expect(saveEveryOption('500')).toEqual({ steps: 500 });
    expect(saveEveryOption('10m')).toEqual({ seconds: 600 });
    expect(saveEveryOption('1h30m')).toEqual({ seconds: 5400 });
    for (const bad of ['0', 'often', '-5', '1.5', '10 minutes', '']) expect(() => saveEveryOption(bad), bad).toThrow(/--save-every takes a number of steps \(e\.g\. 500\) or a time/);
    const maxTime = durationOption('--max-time');
    expect(maxTime('90')).toBe(90);
    expect(maxTime('2h')).toBe(7200);
    expect(maxTime('1.5m')).toBe(90);
    for (const bad of ['0', 'soon', '2x', '-1']) expect(() => maxTime(bad), bad).toThrow(/--max-time takes a time such as 2h/);
    const factor = factorOption('--stop-on-divergence');
    expect(factor('3')).toBe(3);
    for (const bad of ['1', '0.5', 'x']) expect(() => factor(bad), bad).toThrow(/--stop-on-divergence takes a factor above 1/);
    expect(formatDuration(300)).toBe('5m');
    expect(formatDuration(5400)).toBe('1h30m');
  });

  it('the resume command: this command line with --resume set to the checkpoint, quoted for a shell', () => {
    expect(resumeCommand(['train', '--dataset', 'my data.csv', '--resume', 'old.safetensors', '--save', 'ck.safetensors', '--epochs', '5'], 'ck.safetensors')).toBe(
      "wgtrain train --resume ck.safetensors --dataset 'my data.csv' --save ck.safetensors --epochs 5",
    );
    expect(resumeCommand(['train', '--resume=old', '--save', "it's.safetensors"], "it's.safetensors")).toBe(`wgtrain train --resume 'it'\\''s.safetensors' --save 'it'\\''s.safetensors'`);
  });
});
