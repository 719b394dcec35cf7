// CSV tabular data: quoting, task detection, class mapping, the seeded split, standardisation
// with train statistics, and errors naming the file, line and column. The house-price fixture is
// generated here from a known linear rule plus noise, and the rule is recovered from the batches.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Batcher } from '../src/data/batcher.ts';
import { parseCsv, parseCsvRows } from '../src/data/csv.ts';
import { DataError, unstandardizeTargets } from '../src/data/dataset.ts';
import { loadDataset } from '../src/data/node.ts';
import { Rng } from '../src/util/random.ts';

const root = mkdtempSync(join(tmpdir(), 'wgtrain-csv-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Synthetic house prices: price = 120*sqft + 15000*rooms - 800*age + 30000 + N(0, 2000). */
function houseCsv(n: number, seed: number): string {
  const r = new Rng(seed);
  const lines = ['sqft,rooms,age,price'];
  for (let i = 0; i < n; i++) {
    const sqft = Math.round(r.uniform(400, 3000));
    const rooms = 1 + r.int(6);
    const age = Math.round(r.uniform(0, 80));
    const price = 120 * sqft + 15000 * rooms - 800 * age + 30000 + 2000 * r.normal();
    lines.push(`${sqft},${rooms},${age},${price.toFixed(2)}`);
  }
  return `${lines.join('\n')}\n`;
}

function expectError(fn: () => unknown, ...parts: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(DataError);
  for (const p of parts) expect((err as Error).message).toContain(p);
}

/** Solve the symmetric system A w = b (Gaussian elimination with partial pivoting, float64). */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  return M.map((row, i) => row[n] / row[i]);
}

describe('CSV', () => {
  it('house prices: regression, standardised from train statistics, the linear rule recoverable from batches', () => {
    const path = join(root, 'houses.csv');
    writeFileSync(path, houseCsv(500, 7));
    const ds = loadDataset(path, { target: 'price' });
    expect(ds.name).toBe('houses');
    expect(ds.task).toBe('regression');
    expect(ds.numClasses).toBe(1);
    expect(ds.inputShape).toEqual([3]);
    expect(ds.featureNames).toEqual(['sqft', 'rooms', 'age']);
    expect(ds.test.n).toBe(100);
    expect(ds.train.n).toBe(400);
    if (ds.normalization.kind !== 'standardize') throw new Error('expected standardize');
    expect(ds.targetNormalization).toBeDefined();

    // Batched train features have mean 0 and std 1 per column; targets too.
    const b = new Batcher(ds.train, ds, { batchSize: 64, shuffle: true, seed: 3 });
    const X: number[][] = [];
    const Y: number[] = [];
    const xb = new Float32Array(64 * 3);
    const yb = new Float32Array(64);
    for (let k = 0; k < b.numBatches; k++) {
      const count = b.fill(0, k, xb, yb);
      for (let i = 0; i < count; i++) {
        X.push([1, xb[i * 3], xb[i * 3 + 1], xb[i * 3 + 2]]);
        Y.push(yb[i]);
      }
    }
    expect(X.length).toBe(400);
    for (let j = 1; j < 4; j++) {
      const col = X.map((r) => r[j]);
      const mean = col.reduce((a, v) => a + v, 0) / col.length;
      const sd = Math.sqrt(col.reduce((a, v) => a + (v - mean) ** 2, 0) / col.length);
      expect(Math.abs(mean)).toBeLessThan(1e-5); // f32 rounding of standardised values
      expect(Math.abs(sd - 1)).toBeLessThan(1e-5);
    }
    // Least squares on the standardised train batches, then predict the test split in price units.
    const A = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => X.reduce((s, r) => s + r[i] * r[j], 0)));
    const w = solve(
      A,
      [0, 1, 2, 3].map((i) => X.reduce((s, r, k) => s + r[i] * Y[k], 0)),
    );
    const tb = new Batcher(ds.test, ds, { batchSize: 100, shuffle: false, seed: 0 });
    const tx = new Float32Array(300);
    const ty = new Float32Array(100);
    expect(tb.fill(0, 0, tx, ty)).toBe(100);
    const pred = new Float32Array(100);
    for (let i = 0; i < 100; i++) pred[i] = w[0] + w[1] * tx[i * 3] + w[2] * tx[i * 3 + 1] + w[3] * tx[i * 3 + 2];
    unstandardizeTargets(ds, pred);
    const truth = ds.test.y as Float32Array;
    let maxErr = 0;
    for (let i = 0; i < 100; i++) maxErr = Math.max(maxErr, Math.abs(pred[i] - truth[i]));
    // Noise has sd 2000; 4.5 sd over 100 samples is essentially never exceeded.
    expect(maxErr).toBeLessThan(9000);
    // In original units the fitted sqft weight is near 120 per square foot.
    expect(Math.abs((w[1] * ds.targetNormalization!.std[0]) / ds.normalization.std[0] - 120)).toBeLessThan(3);
  });

  it('record splitting: quotes, doubled quotes, newlines in quotes, CRLF, blank lines, BOM', () => {
    const text = '\ufeffa,b,c\r\n1,"x, ""y""",3\r\n\r\n  \n4,"two\nlines",6\n7,,9';
    const rows = parseCsvRows(text, 't.csv');
    expect(rows.map((r) => r.cells)).toEqual([
      ['a', 'b', 'c'],
      ['1', 'x, "y"', '3'],
      ['4', 'two\nlines', '6'],
      ['7', '', '9'],
    ]);
    expect(rows.map((r) => r.line)).toEqual([1, 2, 5, 7]);
  });

  it('classification: string targets map to sorted class names; quoted numbers are numbers', () => {
    const text = 'w,"len",species\n1,"2.5",virginica\n2,3,setosa\n3,1,"versicolor"\n4,2,setosa\n5,5,virginica\n';
    const ds = parseCsv(text, 'iris.csv', { target: 'species', testFraction: 0.4, seed: 1 });
    expect(ds.task).toBe('classification');
    expect(ds.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(ds.numClasses).toBe(3);
    expect(ds.train.n + ds.test.n).toBe(5);
    expect(ds.test.n).toBe(2);
    // Every row is in exactly one split, with its own label.
    const byW = new Map<number, number>();
    for (const s of [ds.train, ds.test]) for (let i = 0; i < s.n; i++) byW.set(s.x[i * 2], s.y[i]);
    expect([...byW.entries()].sort((a, b) => a[0] - b[0])).toEqual([
      [1, 2],
      [2, 0],
      [3, 1],
      [4, 0],
      [5, 2],
    ]);
    const len = [ds.train, ds.test].flatMap((s) => Array.from({ length: s.n }, (_, i) => s.x[i * 2 + 1]));
    expect(len).toContain(2.5);
  });

  it('task option: numeric targets as classes (sorted numerically), or regression refused for strings', () => {
    const text = 'f,t\n1,10\n2,2\n3,10\n4,2.0\n5,1\n';
    const ds = parseCsv(text, 'n.csv', { target: 't', task: 'classification' });
    expect(ds.classNames).toEqual(['1', '2', '10']);
    expect(parseCsv(text, 'n.csv', { target: 't' }).task).toBe('regression');
    expectError(() => parseCsv('f,t\n1,a\n2,b\n', 's.csv', { target: 't', task: 'regression' }), 's.csv', 'line 2', 'column "t"', 'not a number');
  });

  it('the split is a function of the seed', () => {
    const text = houseCsv(50, 1);
    const a = parseCsv(text, 'h.csv', { target: 'price', seed: 5 });
    const b = parseCsv(text, 'h.csv', { target: 'price', seed: 5 });
    const c = parseCsv(text, 'h.csv', { target: 'price', seed: 6 });
    expect(a.test.x).toEqual(b.test.x);
    expect(a.test.x).not.toEqual(c.test.x);
    expect(a.test.n).toBe(10);
  });

  it('errors name the file, line and column', () => {
    const f = 'bad.csv';
    expectError(() => parseCsv('a,b,price\n1,2,3\n4,five,6\n', f, { target: 'price' }), 'bad.csv: line 3, column "b"', '"five" is not a number');
    expectError(() => parseCsv('a,b\n1,2\n', f, { target: 'price' }), 'bad.csv: line 1', 'target column "price" not found; the columns are: a, b');
    expectError(() => parseCsv('a,b,t\n1,2,3\n\n4,5\n', f, { target: 't' }), 'line 4', 'row has 2 fields, the header has 3');
    expectError(() => parseCsv('a,t\n1,2\n"3,4\n', f, { target: 't' }), 'line 3', 'never closed');
    expectError(() => parseCsv('a,t\n1,2\n,4\n', f, { target: 't' }), 'line 3, column "a"', 'empty cell');
    expectError(() => parseCsv('a,a,t\n1,2,3\n', f, { target: 't' }), 'line 1', 'appears twice');
  });

  it('checkFinite reports the first NaN or infinity; off, they pass through', () => {
    const text = 'a,b,t\n1,2,3\n4,5,6\n7,NaN,9\n1,inf,2\n3,4,5\n';
    expectError(() => parseCsv(text, 'nan.csv', { target: 't' }), 'nan.csv: line 4, column "b"', 'not finite');
    expectError(() => parseCsv('a,t\n1,1e999\n2,3\n', 'inf.csv', { target: 't' }), 'line 2, column "t"', 'not finite');
    const ds = parseCsv(text, 'nan.csv', { target: 't', checkFinite: false, testFraction: 0.2 });
    const all = [...ds.train.x, ...ds.test.x];
    expect(all.some((v) => Number.isNaN(v))).toBe(true);
    expect(all).toContain(Infinity);
  });
});
