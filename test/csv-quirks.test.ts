// Real CSV files' quirks, each read when told how or refused with the option that reads it: a
// metadata line above the header (scikit-learn's `506,13,,,...`), ';' and tab separators, quoted
// names, no header, unnamed columns, decimal commas, ignored columns. Then rows to predict: the
// training feature columns found by name, and mismatches named per column.
import { describe, expect, it } from 'vitest';
import { conformToTraining } from '../src/data/conform.ts';
import { readCsvFeatures } from '../src/data/csv-features.ts';
import { detectDelimiter, parseCsv, readCsvTable } from '../src/data/csv.ts';
import { DataError } from '../src/data/dataset.ts';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

/** Every (feature row, target) of both splits, as strings, sorted: what the file held, whatever the split. */
function allRows(ds: ReturnType<typeof parseCsv>): string[] {
  const F = ds.inputShape[0];
  const out: string[] = [];
  for (const s of [ds.train, ds.test]) for (let i = 0; i < s.n; i++) out.push(`${Array.from(s.x.subarray(i * F, (i + 1) * F)).join(' ')} -> ${s.y[i]}`);
  return out.sort();
}

// Like scikit-learn's boston_house_prices.csv: a line of counts padded with empty fields, then quoted names.
const SKLEARN_LIKE = '6,3,,\n"RM","AGE","TAX","MEDV"\n6.5,65.2,296,24\n6.4,78.9,242,21.6\n7.1,61.1,242,34.7\n7,45.8,222,33.4\n7.1,54.2,222,36.2\n6.4,58.7,222,28.7\n';

describe('CSV quirks', () => {
  it('a metadata line above the header is refused with --skip-rows 1, and read with it', () => {
    const msg = errorOf(() => parseCsv(SKLEARN_LIKE, 'houses.csv', { target: 'MEDV' }));
    expect(msg).toContain('houses.csv: line 1: 2 of 4 columns have no name');
    expect(msg).toContain('the header seems to be on line 2: pass --skip-rows 1');
    const ds = parseCsv(SKLEARN_LIKE, 'houses.csv', { target: 'MEDV', skipRows: 1, testFraction: 0.34 });
    expect(ds.featureNames).toEqual(['RM', 'AGE', 'TAX']);
    expect(ds.targetName).toBe('MEDV');
    expect(ds.task).toBe('regression');
    expect(ds.train.n + ds.test.n).toBe(6);
    const want = [6.5, 65.2, 296, 24, 6.4, 78.9, 242, 21.6, 7.1, 61.1, 242, 34.7, 7, 45.8, 222, 33.4, 7.1, 54.2, 222, 36.2, 6.4, 58.7, 222, 28.7];
    const rows = Array.from(
      { length: 6 },
      (_, r) =>
        `${want
          .slice(r * 4, r * 4 + 3)
          .map(Math.fround)
          .join(' ')} -> ${Math.fround(want[r * 4 + 3])}`,
    );
    expect(allRows(ds)).toEqual(rows.sort());
    // Lines keep their numbers in the file after skipping.
    expect(errorOf(() => parseCsv(SKLEARN_LIKE.replace('7,45.8', '7,forty'), 'houses.csv', { target: 'MEDV', skipRows: 1 }))).toContain('line 6, column "AGE": "forty" is not a number');
  });

  it("';' and tab separators are detected; a file where ',' and ';' both fit is refused naming --delimiter", () => {
    const comma = 'a,b,t\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n9,10,x\n';
    const semi = comma.replaceAll(',', ';');
    const tab = comma.replaceAll(',', '\t');
    expect(detectDelimiter(comma, 'c.csv')).toBe(',');
    expect(detectDelimiter(semi, 's.csv')).toBe(';');
    expect(detectDelimiter(tab, 't.tsv')).toBe('\t');
    expect(allRows(parseCsv(semi, 's.csv', { target: 't' }))).toEqual(allRows(parseCsv(comma, 'c.csv', { target: 't' })));
    expect(allRows(parseCsv(tab, 't.tsv', { target: 't' }))).toEqual(allRows(parseCsv(comma, 'c.csv', { target: 't' })));
    // Each line splits into 2 fields on ',' and on ';': guessing either is unsafe.
    const both = 'a,b;t\n1,2;3\n4,5;6\n';
    expect(errorOf(() => readCsvTable(both, 'both.csv'))).toMatch(/both\.csv: line 1: the field separator is ambiguous: ',' and ';'.*pass --delimiter/);
    expect(readCsvTable(both, 'both.csv', { delimiter: ';' }).header).toEqual(['a,b', 't']);
  });

  it('quoted names (with the separator inside) and a decimal comma named as such', () => {
    const t = readCsvTable('"size; m2";"price"\n"1";2\n3;4\n', 'q.csv');
    expect(t.delimiter).toBe(';');
    expect(t.header).toEqual(['size; m2', 'price']);
    expect(t.rows.map((r) => r.cells)).toEqual([
      ['1', '2'],
      ['3', '4'],
    ]);
    const msg = errorOf(() => parseCsv('a;t\n1,5;2\n2;3\n', 'eu.csv', { target: 't' }));
    expect(msg).toContain('eu.csv: line 2, column "a": "1,5" is not a number (a decimal comma? use a decimal point)');
  });

  it('no header: --no-header names columns by position; a file of numbers without it is told so', () => {
    const text = '150,4,setosa,versicolor\n5.1,3.5,1.4,0\n4.9,3.0,1.4,0\n6.3,3.3,6.0,2\n5.8,2.7,5.1,2\n6.4,3.2,4.5,1\n';
    // Read as shipped, line 1 (counts and class names) is taken for a header; the message says what to do.
    const asShipped = errorOf(() => parseCsv(text, 'iris.csv', { target: 'species' }));
    expect(asShipped).toContain('target column "species" not found; the columns are: 150, 4, setosa, versicolor');
    expect(asShipped).toContain('pass --skip-rows 1 --no-header');
    expect(errorOf(() => parseCsv(text, 'iris.csv', { target: '4', skipRows: 1 }))).toContain('the file seems to have no header: pass --no-header');
    const ds = parseCsv(text, 'iris.csv', { target: '4', skipRows: 1, header: false, task: 'classification', testFraction: 0.4 });
    expect(ds.featureNames).toEqual(['1', '2', '3']);
    expect(ds.classNames).toEqual(['0', '1', '2']);
    expect(ds.train.n + ds.test.n).toBe(5);
  });

  it('an unnamed column (a saved index) is refused, naming it', () => {
    const msg = errorOf(() => parseCsv(',a,t\n0,1,2\n1,3,4\n', 'pandas.csv', { target: 't' }));
    expect(msg).toContain('pandas.csv: line 1: column 1 has no name in the header ",a,t"');
    expect(msg).toContain('--no-header');
  });

  it('ignored columns are neither features nor target; unknown ones are named', () => {
    const text = 'id,a,b,t\n10,1,2,3\n11,4,5,6\n12,7,8,9\n13,1,1,1\n14,2,2,2\n';
    const ds = parseCsv(text, 'ids.csv', { target: 't', ignoreColumns: ['id'] });
    expect(ds.featureNames).toEqual(['a', 'b']);
    expect(allRows(ds)).not.toContain('10 1 2 -> 3');
    expect(allRows(ds)).toContain('1 2 -> 3');
    expect(errorOf(() => parseCsv(text, 'ids.csv', { target: 't', ignoreColumns: ['ID'] }))).toContain('column "ID" to ignore not found; the columns are: id, a, b, t');
    expect(errorOf(() => parseCsv(text, 'ids.csv', { target: 't', ignoreColumns: ['t'] }))).toContain('is the target');
  });

  it('skipping past the end of the file is named', () => {
    expect(errorOf(() => readCsvTable('a,b\n1,2\n', 'short.csv', { skipRows: 3 }))).toContain('skipRows 3 skips the whole file (it has 2 lines)');
  });
});

describe('CSV rows to predict', () => {
  const names = ['RM', 'AGE', 'TAX'];
  const opts = { featureNames: names, numFeatures: 3, targetName: 'MEDV' };

  it('features found by name in any order, target and ignored columns skipped, values in training order', () => {
    const text = 'id,TAX,MEDV,RM,AGE\nh1,296,24,6.5,65.2\nh2,242,21.6,6.4,78.9\n';
    const r = readCsvFeatures(text, 'new.csv', { ...opts, ignoreColumns: ['id'] });
    expect(r.n).toBe(2);
    expect(Array.from(r.x)).toEqual([6.5, 65.2, 296, 6.4, 78.9, 242].map(Math.fround));
    expect(r.unused).toEqual(['id', 'MEDV']);
    expect(r.byPosition).toBe(false);
    // TAX comes first among the features in the file, third in training; RM and AGE each move one place.
    expect(r.moved).toEqual([
      { name: 'RM', column: 4, trained: 1 },
      { name: 'AGE', column: 5, trained: 2 },
      { name: 'TAX', column: 2, trained: 3 },
    ]);
    // Skipped columns in between do not count as a change of order.
    expect(readCsvFeatures('RM,MEDV,AGE,TAX\n1,2,3,4\n', 'new.csv', opts).moved).toEqual([]);
  });

  it('missing and unknown columns are named, with the training columns', () => {
    const msg = errorOf(() => readCsvFeatures('rm,AGE,TAX,colour\n1,2,3,red\n', 'new.csv', opts));
    expect(msg).toContain('new.csv: line 1: the columns do not match the model\'s: missing feature column "RM"; columns "rm", "colour" not in training (skip with --ignore-columns rm,colour)');
    expect(msg).toContain('The model was trained on RM, AGE, TAX');
  });

  it('a non-numeric or empty cell is named by line and column; a short row by line', () => {
    expect(errorOf(() => readCsvFeatures('RM,AGE,TAX\n1,2,3\n4,old,6\n', 'new.csv', opts))).toContain('new.csv: line 3, column "AGE": "old" is not a number');
    expect(errorOf(() => readCsvFeatures('RM,AGE,TAX\n1,,3\n', 'new.csv', opts))).toContain('line 2, column "AGE": empty cell');
    expect(errorOf(() => readCsvFeatures('RM,AGE,TAX\n1,2\n', 'new.csv', opts))).toContain('line 2: row has 2 fields, the header has 3');
  });

  it('without names (an older model, or no header), columns are taken by position and counted', () => {
    const byPos = readCsvFeatures('p,q,r\n1,2,3\n', 'new.csv', { featureNames: null, numFeatures: 3 });
    expect(byPos.byPosition).toBe(true);
    expect(Array.from(byPos.x)).toEqual([1, 2, 3]);
    expect(errorOf(() => readCsvFeatures('p,q\n1,2\n', 'new.csv', { featureNames: null, numFeatures: 3 }))).toContain('the model takes 3 feature columns, the file has 2');
    // A model trained on a file without a header knows its columns as 1..N: a file without one matches by position names, its target skipped.
    const noHeader = readCsvFeatures('5.1,3.5,0\n', 'new.csv', { featureNames: ['1', '2'], numFeatures: 2, targetName: '3', header: false });
    expect(Array.from(noHeader.x)).toEqual([5.1, 3.5].map(Math.fround));
    expect(noHeader.unused).toEqual(['3']);
    const headerless = readCsvFeatures('6.5,65.2,296\n', 'new.csv', { ...opts, header: false });
    expect(headerless.byPosition).toBe(true);
    expect(Array.from(headerless.x)).toEqual([6.5, 65.2, 296].map(Math.fround));
  });
});

describe('a table read again for a trained model', () => {
  const trained = parseCsv('x,y,kind\n1,2,ant\n2,3,bee\n3,4,cat\n4,5,ant\n5,6,bee\n6,7,cat\n', 'train.csv', { target: 'kind' });

  it('takes the training standardisation and re-indexes labels to the training classes', () => {
    // No "ant" here: read alone, "bee" would be class 0 and "cat" class 1.
    const again = parseCsv('x,y,kind\n10,20,bee\n30,40,cat\n50,60,cat\n70,80,bee\n90,99,cat\n', 'new.csv', { target: 'kind', testFraction: 0.4 });
    expect(again.classNames).toEqual(['bee', 'cat']);
    const c = conformToTraining(again, trained, 'new.csv');
    expect(c.classNames).toEqual(['ant', 'bee', 'cat']);
    expect(c.numClasses).toBe(3);
    expect(c.normalization).toEqual(trained.normalization);
    const names = (s: typeof c.train) => Array.from(s.y, (k) => c.classNames![k]);
    expect([...names(c.train), ...names(c.test)].sort()).toEqual(['bee', 'bee', 'cat', 'cat', 'cat']);
  });

  it('refuses classes training never saw and columns that differ, naming them', () => {
    const owl = parseCsv('x,y,kind\n1,2,owl\n2,3,ant\n3,4,owl\n4,5,ant\n5,6,ant\n', 'owl.csv', { target: 'kind' });
    expect(errorOf(() => conformToTraining(owl, trained, 'owl.csv'))).toContain('class "owl" never seen in training; the model knows ant, bee, cat');
    const cols = parseCsv('x,z,kind\n1,2,ant\n2,3,bee\n3,4,cat\n4,5,ant\n5,6,bee\n', 'cols.csv', { target: 'kind' });
    expect(errorOf(() => conformToTraining(cols, trained, 'cols.csv'))).toContain("the feature columns differ from the model's: missing y; not in training z");
  });
});
