// The CIFAR-10 CNN preset through the CLI, as a user runs it: training on CIFAR-10 binary batches
// (a small set this test writes in the real file format) with augmentation and a checkpoint, then
// evaluate and predict from that checkpoint.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CIFAR10_CLASSES, CIFAR10_PIXELS, encodeCifarBatch } from '../src/data/cifar.ts';
import { readCheckpoint } from '../src/train/checkpoint.ts';
import { cli } from './helpers.ts';

/** n CIFAR-format images: class c is a noisy image whose dominant colour channel is c % 3. */
function cifarBatch(n: number, seed: number): { bytes: Uint8Array; labels: number[] } {
  let s = seed;
  const rnd = () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const x = new Uint8Array(n * CIFAR10_PIXELS);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    labels.push(c);
    for (let ch = 0; ch < 3; ch++) {
      const base = ch === c % 3 ? 180 : 40;
      for (let p = 0; p < 1024; p++) x[i * CIFAR10_PIXELS + ch * 1024 + p] = base + Math.floor(60 * rnd());
    }
  }
  return { bytes: encodeCifarBatch(x, labels), labels };
}

// Three CLI processes, each compiling its kernels: about 20 s of CPU time; the limit leaves room
// for a machine shared with other work.
describe('CLI: the cnn-cifar preset on CIFAR-10 binary batches', () => {
  it('trains one epoch with augmentation, saves, evaluates to the same accuracy and predicts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-cifar-'));
    writeFileSync(join(dir, 'data_batch_1.bin'), cifarBatch(32, 1).bytes);
    const test = cifarBatch(8, 2);
    writeFileSync(join(dir, 'test_batch.bin'), test.bytes);
    const ckpt = join(dir, 'cnn.safetensors');
    const metrics = join(dir, 'train.json');

    const train = await cli(['train', '--dataset', dir, '--model', 'cnn-cifar', '--epochs', '1', '--batch-size', '16', '--lr', '0.01', '--augment', '--save', ckpt, '--metrics-out', metrics, '--quiet']);
    expect(train.code, train.stderr).toBe(0);
    expect(train.stderr).toMatch(/dataset cifar10: 32 train \/ 8 test samples of \[3, 32, 32\]/);
    expect(train.stderr).toMatch(/Conv2d\+ReLU\s+\[32, 32, 32\]/);
    expect(train.stderr).toMatch(/GlobalAvgPool\s+\[128\]/);
    expect(train.stderr).toMatch(/epoch 1\/1: train loss \d/);
    expect(train.stdout).toMatch(/test accuracy \d+\.\d+%/);
    const m = JSON.parse(readFileSync(metrics, 'utf8'));
    expect(m.model).toBe('cnn-cifar');
    expect(m.epochs).toBe(1);
    expect(Number.isFinite(m.trainLoss[0])).toBe(true);

    // The checkpoint carries the conv weights in PyTorch's layout and the BatchNorm statistics.
    const saved = readCheckpoint(new Uint8Array(readFileSync(ckpt)), ckpt);
    expect(saved.tensors.get('layers.0.weight')!.shape).toEqual([32, 3, 3, 3]);
    expect(saved.meta.model.layers!.map((l) => l.kind)).toContain('BatchNorm2d');
    expect([...saved.tensors.keys()].filter((k) => k.endsWith('running_var')).length).toBe(3);

    const ev = await cli(['evaluate', '--checkpoint', ckpt, '--dataset', dir, '--metrics-out', join(dir, 'eval.json')]);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(/cifar10 test: loss \d+\.\d+, accuracy \d+\.\d+% \(8 samples\)/);
    const e = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8'));
    expect(e.testAccuracy).toBe(m.testAccuracy);
    expect(e.testLoss).toBeCloseTo(m.testLoss, 5);

    const pred = await cli(['predict', '--checkpoint', ckpt, '--dataset', dir, '--count', '5', '--json']);
    expect(pred.code, pred.stderr).toBe(0);
    const lines = pred.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(5);
    lines.forEach((l, i) => {
      expect(l.truth).toBe(test.labels[i]);
      expect(CIFAR10_CLASSES).toContain(l.label);
      expect(l.probability).toBeGreaterThan(0);
    });
  }, 300_000);
});
