// Results in the data's own terms through the CLI, on tables the test writes: a regression file
// laid out like scikit-learn's (a metadata line above quoted names) reported in its target's
// units and priced on new rows, and a 6-class table reported per class. Figures are checked
// against what the test computes by other paths: the RMSE against the GPU's loss on standardised
// targets, the confusion matrix against per-sample predictions, the accuracy against the loss
// kernel's count.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCsv, parseCsvRows } from '../src/data/csv.ts';
import { Rng } from '../src/util/random.ts';
import { cli } from './helpers.ts';

const noStack = (stderr: string) => expect(stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);

/** price (in thousands) = 30 + 8*rooms - 0.1*age + 0.5*tax/10 + noise; the header quoted, a counts line above it. */
function housesCsv(n: number, seed: number): { text: string; rule: (rooms: number, age: number, tax: number) => number } {
  const r = new Rng(seed);
  const rule = (rooms: number, age: number, tax: number) => 30 + 8 * rooms - 0.1 * age + 0.05 * tax;
  const lines = [`${n},3,,`, '"ROOMS","AGE","TAX","PRICE"'];
  for (let i = 0; i < n; i++) {
    const rooms = Number(r.uniform(3, 9).toFixed(2));
    const age = Number(r.uniform(0, 100).toFixed(1));
    const tax = Math.round(r.uniform(180, 700));
    lines.push(`${rooms},${age},${tax},${(rule(rooms, age, tax) + 0.5 * r.normal()).toFixed(2)}`);
  }
  return { text: `${lines.join('\n')}\n`, rule };
}

describe("CLI: regression reported in the target's units, and new rows priced", () => {
  it('trains on a file with a metadata line (--skip-rows 1), reports MAE/RMSE/R², evaluates, predicts from a CSV', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-results-'));
    const { text, rule } = housesCsv(300, 3);
    const csv = join(dir, 'houses.csv');
    writeFileSync(csv, text);
    const ckpt = join(dir, 'houses.safetensors');
    const metrics = join(dir, 'houses.json');

    // As shipped, the file is refused with the option that reads it, and nothing is written.
    const refused = await cli(['train', '--dataset', csv, '--target', 'PRICE', '--epochs', '1', '--save', ckpt, '--quiet']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/houses\.csv: line 1: 2 of 4 columns have no name in the header.*pass --skip-rows 1/);
    noStack(refused.stderr);
    expect(existsSync(ckpt)).toBe(false);

    const epochs = 12;
    const train = await cli(['train', '--dataset', csv, '--skip-rows', '1', '--target', 'PRICE', '--hidden', '16', '--epochs', String(epochs), '--batch-size', '16', '--lr', '0.01', '--save', ckpt, '--metrics-out', metrics, '--quiet']);
    expect(train.code, train.stderr).toBe(0);
    expect(train.stderr).toMatch(/epoch 1\/12: .*test loss \d.* \| MAE \d.*, RMSE \d.*, R² -?\d/);
    expect(train.stdout).toMatch(/test PRICE: MAE \d+(\.\d+)?, RMSE \d+(\.\d+)?, R² \d\.\d{3} \(60 samples\)/);
    const m = JSON.parse(readFileSync(metrics, 'utf8'));
    expect(m.task).toBe('regression');
    expect(m.regression.target).toBe('PRICE');
    const t = m.regression.test;
    expect(t.n).toBe(60);
    // The RMSE in thousands, computed on the host from de-standardised predictions, against the
    // GPU's MSE on standardised targets scaled by the training targets' spread (f32 sums: 1e-3).
    const ds = parseCsv(text, 'houses.csv', { target: 'PRICE', skipRows: 1 });
    const std = ds.targetNormalization!.std[0];
    expect(Math.abs(t.rmse - Math.sqrt(m.testLoss) * std)).toBeLessThan(1e-3 * t.rmse);
    expect(t.mae).toBeLessThanOrEqual(t.rmse);
    expect(t.r2).toBeGreaterThan(0.9); // a linear rule with noise 0.5 against a spread of about 15
    expect(m.regression.validation).toHaveLength(epochs);
    expect(m.regression.validation.at(-1)).toEqual({ epoch: epochs, ...t });
    const curves = readFileSync(join(dir, 'houses.svg'), 'utf8');
    expect(curves).toContain('error (PRICE)');
    expect(curves).toContain('R²');
    expect(existsSync(join(dir, 'houses.confusion.svg'))).toBe(false);

    // evaluate reads the same split and gets the same figures.
    const ev = await cli(['evaluate', '--checkpoint', ckpt, '--dataset', csv, '--skip-rows', '1', '--metrics-out', join(dir, 'eval.json')]);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(/PRICE: MAE .*, RMSE .*, R² /);
    const e = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8'));
    for (const k of ['mae', 'rmse', 'r2'] as const) expect(e.regression.test[k]).toBeCloseTo(t[k], 5);

    // New rows: columns reordered, an id to ignore, no target. Predictions match the rows in training order.
    const rows = [
      [6, 20, 300],
      [4.5, 80, 500],
      [8.2, 5, 250],
    ];
    writeFileSync(join(dir, 'plain.csv'), `${['ROOMS,AGE,TAX', ...rows.map((r) => r.join(','))].join('\n')}\n`);
    writeFileSync(join(dir, 'new.csv'), `${['id;TAX;ROOMS;AGE', ...rows.map((r, i) => `h${i};${r[2]};${r[0]};${r[1]}`)].join('\n')}\n`);
    const plain = await cli(['predict', '--checkpoint', ckpt, '--input', join(dir, 'plain.csv'), '--json']);
    expect(plain.code, plain.stderr).toBe(0);
    const plainValues = plain.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).predicted as number);
    const out = join(dir, 'pred.csv');
    const pred = await cli(['predict', '--checkpoint', ckpt, '--input', join(dir, 'new.csv'), '--ignore-columns', 'id', '--out', out]);
    expect(pred.code, pred.stderr).toBe(0);
    expect(pred.stderr).toMatch(/columns read by name in another order than in training: .*TAX \(column 2, trained as feature 3\)/);
    const written = parseCsvRows(readFileSync(out, 'utf8'), out);
    expect(written[0].cells).toEqual(['id', 'TAX', 'ROOMS', 'AGE', 'predicted_PRICE']);
    expect(written.slice(1).map((r) => r.cells[0])).toEqual(['h0', 'h1', 'h2']);
    const priced = written.slice(1).map((r) => Number(r.cells[4]));
    priced.forEach((p, i) => {
      expect(p).toBeCloseTo(plainValues[i], 3);
      // In the target's units: near the rule, within a few test RMSEs.
      expect(Math.abs(p - rule(rows[i][0], rows[i][1], rows[i][2]))).toBeLessThan(4 * t.rmse + 1);
    });

    // Bad rows are named per column, and a failed predict leaves the earlier output as it was.
    const before = readFileSync(out, 'utf8');
    writeFileSync(join(dir, 'missing.csv'), 'ROOMS,TAX,colour\n6,300,red\n');
    const missing = await cli(['predict', '--checkpoint', ckpt, '--input', join(dir, 'missing.csv'), '--out', out]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/missing\.csv: line 1: the columns do not match the model's: missing feature column "AGE"; column "colour" not in training/);
    noStack(missing.stderr);
    writeFileSync(join(dir, 'text.csv'), 'ROOMS,AGE,TAX\n6,20,300\n5,old,400\n');
    const nonNumeric = await cli(['predict', '--checkpoint', ckpt, '--input', join(dir, 'text.csv'), '--out', out]);
    expect(nonNumeric.code).not.toBe(0);
    expect(nonNumeric.stderr).toMatch(/text\.csv: line 3, column "AGE": "old" is not a number/);
    expect(readFileSync(out, 'utf8')).toBe(before);
  });
});

/** Six classes of 2-D points around a circle, named by animal; noise small enough to separate most. */
function animalsCsv(n: number, seed: number): string {
  const names = ['ant', 'bee', 'cat', 'dog', 'eel', 'fox'];
  const r = new Rng(seed);
  const lines = ['x\ty\tanimal'];
  for (let i = 0; i < n; i++) {
    const c = r.int(6);
    const a = (2 * Math.PI * c) / 6;
    lines.push(`${(3 * Math.cos(a) + 0.8 * r.normal()).toFixed(3)}\t${(3 * Math.sin(a) + 0.8 * r.normal()).toFixed(3)}\t${names[c]}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('CLI: a classification report', () => {
  it('evaluate prints per-class figures and the confusion matrix; the JSON and the picture hold them; values agree with per-sample predictions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-report-'));
    const tsv = join(dir, 'animals.tsv');
    writeFileSync(tsv, animalsCsv(400, 5));
    const ckpt = join(dir, 'animals.safetensors');
    const train = await cli(['train', '--dataset', tsv, '--target', 'animal', '--hidden', '16', '--epochs', '6', '--batch-size', '16', '--lr', '0.02', '--save', ckpt, '--metrics-out', join(dir, 'train.json'), '--quiet']);
    expect(train.code, train.stderr).toBe(0);
    expect(train.stdout).toMatch(/test macro precision \d\.\d{3}, recall \d\.\d{3}, F1 \d\.\d{3}; top-3 \d+\.\d\d%, top-5 \d+\.\d\d%/);
    expect(existsSync(join(dir, 'train.confusion.svg'))).toBe(true);

    const evalJson = join(dir, 'eval.json');
    const ev = await cli(['evaluate', '--checkpoint', ckpt, '--dataset', tsv, '--metrics-out', evalJson]);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(/class\s+precision\s+recall\s+f1\s+support/);
    expect(ev.stdout).toMatch(/^cat\s+\d\.\d{3}\s+\d\.\d{3}\s+\d\.\d{3}\s+\d+$/m);
    expect(ev.stdout).toMatch(/^macro avg\s/m);
    expect(ev.stdout).toMatch(/^top-5 accuracy\s/m);
    expect(ev.stdout).toMatch(/true \\ predicted\s+0\s+1\s+2\s+3\s+4\s+5/);
    expect(ev.stdout).toMatch(/^2 cat(\s+\d+){6}$/m);
    const r = JSON.parse(readFileSync(evalJson, 'utf8'));
    const c = r.classification;
    expect(c.classNames).toEqual(['ant', 'bee', 'cat', 'dog', 'eel', 'fox']);
    expect(c.n).toBe(80);
    // The accuracy of the report (argmax on the host) is the loss kernel's correct count.
    expect(c.accuracy).toBeCloseTo(r.testAccuracy, 6);
    expect(c.topK.map((k: { k: number }) => k.k)).toEqual([3, 5]);
    expect(c.topK[0].accuracy).toBeGreaterThanOrEqual(c.accuracy);
    expect(c.topK[1].accuracy).toBeGreaterThanOrEqual(c.topK[0].accuracy);
    expect(JSON.parse(readFileSync(join(dir, 'train.json'), 'utf8')).classification.confusion).toEqual(c.confusion);
    const picture = readFileSync(join(dir, 'eval.confusion.svg'), 'utf8');
    for (const name of c.classNames) expect(picture).toContain(name);

    // Per-sample predictions of the same test split give the same matrix, counted here.
    const pred = await cli(['predict', '--checkpoint', ckpt, '--dataset', tsv, '--count', '80', '--json']);
    expect(pred.code, pred.stderr).toBe(0);
    const counted = Array.from({ length: 6 }, () => new Array(6).fill(0));
    for (const l of pred.stdout
      .trim()
      .split('\n')
      .map((s) => JSON.parse(s)))
      counted[l.truth][l.predicted]++;
    expect(counted).toEqual(c.confusion);
    c.perClass.forEach((m: { support: number; recall: number }, k: number) => {
      expect(m.support).toBe(counted[k].reduce((a, b) => a + b, 0));
      expect(m.recall).toBeCloseTo(counted[k][k] / m.support, 12);
    });

    // New rows with the target column present: it is skipped, and shown beside the prediction.
    writeFileSync(join(dir, 'new.csv'), 'animal,x,y\ncat,-1.5,2.6\nfox,1.5,-2.6\n');
    const rows = await cli(['predict', '--checkpoint', ckpt, '--input', join(dir, 'new.csv')]);
    expect(rows.code, rows.stderr).toBe(0);
    expect(rows.stderr).toMatch(/not used as features: animal \(animal is the target\)/);
    expect(rows.stdout).toMatch(/^line 2: (ant|bee|cat|dog|eel|fox) \(\d+\.\d%\) {2}true: cat/m);

    // A classifier given a regression table (and the reverse) is named as such.
    const houses = join(dir, 'houses.csv');
    writeFileSync(houses, 'x,y,price\n1,2,3.5\n2,3,4.25\n3,4,5.5\n4,5,6.75\n5,6,7.5\n');
    const wrongKind = await cli(['evaluate', '--checkpoint', ckpt, '--dataset', houses, '--target', 'price']);
    expect(wrongKind.code).not.toBe(0);
    expect(wrongKind.stderr).toMatch(/checkpoint .*animals\.safetensors is a classifier \(6 classes: ant, bee, cat, dog, eel, \.\.\.\), but "houses" is a regression dataset/);
    noStack(wrongKind.stderr);
  });
});
