// The CLI end to end, as a user runs it: usage errors, a short training run with a checkpoint and
// metrics, evaluate and predict from the checkpoint, and resume.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeIdx } from '../src/data/idx.ts';
import { readCheckpoint } from '../src/train/checkpoint.ts';
import { cli } from './helpers.ts';

describe('CLI usage errors: message, non-zero status, no stack trace', () => {
  const cases: [string, string[], RegExp][] = [
    ['negative learning rate', ['train', '--lr', '-0.1'], /--lr must be a positive number, got "-0.1"/],
    ['batch size 0', ['train', '--batch-size', '0'], /--batch-size must be a positive integer, got "0"/],
    ['unknown optimizer', ['train', '--optimizer', 'rmsprop'], /rmsprop.*invalid|Allowed choices are sgd, adam, adamw/],
    ['unknown dataset', ['train', '--dataset', 'imagenet', '--epochs', '1'], /imagenet.*(accepted|not found|does not exist)/i],
    ['bad hidden sizes', ['train', '--hidden', '128,x'], /--hidden must be a comma-separated list of positive integers/],
    ['dropout out of range', ['train', '--dropout', '1.5'], /--dropout must be in \[0, 1\)/],
    ['missing checkpoint', ['evaluate', '--checkpoint', '/nonexistent/model.safetensors'], /No such file.*model\.safetensors/],
    ['unknown command', ['fly'], /unknown command 'fly'/],
  ];
  for (const [what, args, want] of cases) {
    it(what, async () => {
      const r = await cli(args);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(want);
      expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/); // no stack frames
    });
  }
});

/** A tiny IDX dataset (digit-like blobs at class-dependent positions) that an MLP learns in seconds. */
function writeTinyIdx(dir: string): void {
  const make = (n: number, seed: number) => {
    const x = new Uint8Array(n * 28 * 28);
    const y = new Uint8Array(n);
    let s = seed;
    const rnd = () => {
      s = (s * 1103515245 + 12345) >>> 0;
      return s / 2 ** 32;
    };
    for (let i = 0; i < n; i++) {
      const c = i % 4;
      y[i] = c;
      const r0 = 4 + 10 * (c >> 1);
      const c0 = 4 + 10 * (c & 1);
      for (let r = 0; r < 8; r++) for (let q = 0; q < 8; q++) x[i * 784 + (r0 + r) * 28 + c0 + q] = 150 + Math.floor(100 * rnd());
    }
    return { x, y };
  };
  const tr = make(512, 1);
  const te = make(128, 2);
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), encodeIdx([512, 28, 28], tr.x));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), encodeIdx([512], tr.y));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), encodeIdx([128, 28, 28], te.x));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), encodeIdx([128], te.y));
}

describe('CLI training run', () => {
  it('trains, saves, evaluates to the same accuracy, predicts, and resumes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-cli-'));
    writeTinyIdx(dir);
    const ckpt = join(dir, 'model.safetensors');
    const metrics = join(dir, 'metrics.json');
    const train = await cli(['train', '--dataset', dir, '--hidden', '32', '--epochs', '2', '--batch-size', '32', '--lr', '0.01', '--save', ckpt, '--metrics-out', metrics, '--quiet']);
    expect(train.code, train.stderr).toBe(0);
    expect(train.stdout).toMatch(/test accuracy \d+\.\d+%/);
    // Without a GPU device node, the driver probe that only finds Dawn-rejected CPU drivers (and
    // warns about them) is skipped: stderr stays free of Dawn's adapter warnings.
    if (process.platform === 'linux' && !existsSync('/dev/dri') && !existsSync('/dev/nvidia0') && !process.env.VK_ICD_FILENAMES) {
      expect(train.stderr).not.toMatch(/While initializing adapter/);
    }
    const m = JSON.parse(readFileSync(metrics, 'utf8'));
    expect(m.dataset).toMatch(/^wgtrain-cli-/); // an IDX directory is named after itself
    expect(m.epochs).toBe(2);
    expect(m.trainLoss).toHaveLength(2);
    expect(m.trainLoss[1]).toBeLessThan(m.trainLoss[0]);
    expect(m.testAccuracy).toBeGreaterThan(0.9); // 4 well-separated blobs
    expect(m.adapter.name.length).toBeGreaterThan(0);
    expect(typeof m.adapter.isSoftware).toBe('boolean');
    expect(m.samplesPerSecond).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'metrics.svg'))).toBe(true);
    expect(readFileSync(join(dir, 'metrics.svg'), 'utf8')).toMatch(/^<svg/);

    const ev = await cli(['evaluate', '--checkpoint', ckpt, '--dataset', dir, '--metrics-out', join(dir, 'eval.json')]);
    expect(ev.code, ev.stderr).toBe(0);
    const e = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8'));
    expect(e.testAccuracy).toBe(m.testAccuracy);
    expect(e.testLoss).toBeCloseTo(m.testLoss, 5);
    // The classification report: IDX labels are digits (10 classes, 4 used here), each of the 128
    // test images counted once; more than 5 classes, so top-3 and top-5 too; the confusion matrix drawn.
    expect(ev.stdout).toMatch(/true \\ predicted\s+0\s+1\s+2\s+3\s+4\s+5\s+6\s+7\s+8\s+9/);
    expect(e.classification.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(128);
    expect(e.classification.perClass.map((c: { support: number }) => c.support)).toEqual([32, 32, 32, 32, 0, 0, 0, 0, 0, 0]);
    expect(e.classification.accuracy).toBeCloseTo(e.testAccuracy, 6);
    expect(e.classification.topK.map((t: { k: number }) => t.k)).toEqual([3, 5]);
    expect(readFileSync(join(dir, 'eval.confusion.svg'), 'utf8')).toMatch(/^<svg/);
    expect(existsSync(join(dir, 'metrics.confusion.svg'))).toBe(true);

    writeFileSync(join(dir, 'rows.csv'), 'a,b\n1,2\n');
    const table = await cli(['predict', '--checkpoint', ckpt, '--input', join(dir, 'rows.csv')]);
    expect(table.code).not.toBe(0);
    expect(table.stderr).toMatch(/is an image model \(samples \[1, 28, 28\]\); --input takes an IDX images file for it, not a table/);

    const pred = await cli(['predict', '--checkpoint', ckpt, '--dataset', dir, '--count', '4', '--json']);
    expect(pred.code, pred.stderr).toBe(0);
    const lines = pred.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(4);
    for (const l of lines) expect(l.predicted).toBe(l.truth);

    const resumed = await cli(['train', '--dataset', dir, '--resume', ckpt, '--epochs', '3', '--batch-size', '32', '--save', ckpt, '--quiet']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resumed .*epoch 2/);
    // Planned for 2 epochs, told 3: the cosine schedule ends at epoch 3 instead of training it at
    // rate 0; two thirds through, the rate is 0.01 * (1 + cos(2π/3)) / 2.
    expect(resumed.stderr).toMatch(/learning-rate schedule \(cosine\) refitted to end at epoch 3 \(step \d+\): the rate at the next step is 0\.00250/);
    expect(resumed.stderr).toMatch(/epoch 3\/3/);
  });
});

describe('CLI on a CSV file (regression)', () => {
  it('predicts a house price from its features', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-csv-'));
    const lines = ['area,rooms,age,price'];
    let s = 7;
    const rnd = () => {
      s = (s * 1103515245 + 12345) >>> 0;
      return s / 2 ** 32;
    };
    for (let i = 0; i < 600; i++) {
      const area = 40 + 160 * rnd();
      const rooms = 1 + Math.floor(5 * rnd());
      const age = 60 * rnd();
      const price = 2000 * area + 15000 * rooms - 800 * age + 5000 * (rnd() - 0.5);
      lines.push(`${area.toFixed(1)},${rooms},${age.toFixed(1)},${price.toFixed(0)}`);
    }
    const csv = join(dir, 'houses.csv');
    writeFileSync(csv, `${lines.join('\n')}\n`);
    const metrics = join(dir, 'm.json');
    const r = await cli(['train', '--dataset', csv, '--target', 'price', '--hidden', '16', '--epochs', '30', '--batch-size', '32', '--lr', '0.01', '--metrics-out', metrics, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(metrics, 'utf8'));
    expect(m.testAccuracy).toBeNull();
    // MSE on standardised targets: the rule is linear, noise is ~1% of the spread.
    expect(m.testLoss).toBeLessThan(0.02);

    const bad = await cli(['train', '--dataset', csv, '--target', 'cost', '--epochs', '1']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/houses\.csv.*cost.*(area|columns)/);
  });
});

describe('CLI augmentation defaults', () => {
  it('a resumed run keeps the augmentation it was trained with; --augment none turns it off; a new ViT shifts by default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-augment-'));
    writeTinyIdx(dir);
    const ckpt = join(dir, 'model.safetensors');
    const common = ['train', '--dataset', dir, '--hidden', '16', '--batch-size', '64', '--quiet'];
    const first = await cli([...common, '--augment', 'shift', '--epochs', '1', '--save', ckpt]);
    expect(first.code, first.stderr).toBe(0);
    expect(readCheckpoint(new Uint8Array(readFileSync(ckpt)), ckpt).meta.run?.augment).toEqual({ pad: 2, flip: false });

    // Resumed without --augment: the run's own shift, said so, and recorded again.
    const resumed = await cli([...common, '--resume', ckpt, '--epochs', '2', '--save', ckpt]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`augmentation: shift (the run's own, from ${ckpt}; --augment none turns it off)`);
    expect(readCheckpoint(new Uint8Array(readFileSync(ckpt)), ckpt).meta.run?.augment).toEqual({ pad: 2, flip: false });

    // --augment none: no augmentation, and none recorded.
    const plain = await cli([...common, '--resume', ckpt, '--epochs', '3', '--augment', 'none', '--save', ckpt]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).not.toContain('augmentation:');
    expect(readCheckpoint(new Uint8Array(readFileSync(ckpt)), ckpt).meta.run?.augment).toBeNull();

    // A new ViT run without --augment shifts its images (0 epochs: the run is planned, nothing trains).
    const vit = await cli(['train', '--dataset', dir, '--model', 'vit', '--depth', '1', '--width', '8', '--heads', '2', '--epochs', '0', '--quiet']);
    expect(vit.code, vit.stderr).toBe(0);
    expect(vit.stderr).toContain("augmentation: shift (the vit preset's default; --augment none turns it off)");
    const mlp = await cli([...common, '--epochs', '0']);
    expect(mlp.stderr).not.toContain('augmentation:');
  });
});
