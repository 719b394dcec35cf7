// Tabular data from CSV text (browser file picker or Node): a header row, numeric feature
// columns and one target column chosen by name. The task is classification when the target is
// not numeric (or the caller says so), else regression. Train and test are split by a seeded
// shuffle, and features are standardised with train statistics only, so nothing of the test split
// leaks into training. Reading the table itself (layouts, quirks, cells) is csv-table.ts's job.
import { Rng } from '../util/random.ts';
import { missingColumnError, numericCell, parseNumber, readCsvTable, type CsvReadOptions, type CsvRow } from './csv-table.ts';
import { DataError, columnStats, type Dataset } from './dataset.ts';

export * from './csv-table.ts';

/** Options for `parseCsv`. */
export interface CsvOptions extends CsvReadOptions {
  /** Name of the target column (as in the header). */
  target: string;
  /** Force the task; by default classification if any target value is non-numeric, else regression. */
  task?: 'classification' | 'regression';
  /** Fraction of rows held out for the test split (default 0.2). */
  testFraction?: number;
  /** Seed of the train/test shuffle (default 0). */
  seed?: number;
  /** Reject NaN and infinite numbers, naming the first one's line and column (default true). */
  checkFinite?: boolean;
  /** Columns that are neither features nor the target (an id, a column not to learn from). */
  ignoreColumns?: string[];
}

/** Row indices of the train and test splits: a seeded shuffle, each split then kept in file order. */
export function splitIndices(n: number, testFraction: number, seed: number): { train: number[]; test: number[] } {
  const perm = new Rng(seed).shuffle(Array.from({ length: n }, (_, i) => i));
  const nTest = Math.round(n * testFraction);
  return {
    test: perm.slice(0, nTest).sort((a, b) => a - b),
    train: perm.slice(nTest).sort((a, b) => a - b),
  };
}

/**
 * Parse a CSV table into a dataset. Feature columns must all be numeric; the target column may
 * hold class names or numbers. Classification maps the sorted distinct target values to class
 * indices (`classNames` in that order); regression standardises targets with train statistics.
 */
export function parseCsv(text: string, fileLabel: string, opts: CsvOptions): Dataset {
  const testFraction = opts.testFraction ?? 0.2;
  const seed = opts.seed ?? 0;
  const checkFinite = opts.checkFinite ?? true;
  if (!(testFraction > 0 && testFraction < 1)) throw new Error(`${fileLabel}: testFraction must be in (0, 1), got ${testFraction}`);
  const table = readCsvTable(text, fileLabel, opts);
  const { header } = table;
  const at = table.headerLine !== null ? { line: table.headerLine } : {};
  const targetCol = header.indexOf(opts.target);
  if (targetCol < 0) throw missingColumnError(fileLabel, table, `target column "${opts.target}"`);
  const ignored = new Set(opts.ignoreColumns ?? []);
  for (const c of ignored) {
    if (!header.includes(c)) throw missingColumnError(fileLabel, table, `column "${c}" to ignore`);
    if (c === opts.target) throw new DataError(fileLabel, `column "${c}" is the target; it cannot also be ignored`, at);
  }
  const featureCols = header.map((_, c) => c).filter((c) => c !== targetCol && !ignored.has(header[c]));
  if (featureCols.length === 0) throw new DataError(fileLabel, 'no feature columns besides the target', at);
  const body = table.rows;
  const n = body.length;
  const F = featureCols.length;

  const features = new Float64Array(n * F);
  const targets: string[] = [];
  body.forEach((row, r) => {
    if (row.cells.length !== header.length) {
      throw new DataError(fileLabel, `row has ${row.cells.length} fields, the ${table.headerLine !== null ? 'header' : 'first row'} has ${header.length}`, { line: row.line });
    }
    featureCols.forEach((c, f) => {
      features[r * F + f] = numericCell(row.cells[c], fileLabel, { line: row.line, column: header[c] }, checkFinite);
    });
    targets.push(row.cells[targetCol].trim());
  });

  // Targets are checked before splitting, so a bad value is reported whatever the row count.
  const numeric = targets.map(parseNumber);
  const task = opts.task ?? (numeric.every((v) => v !== null) ? 'regression' : 'classification');
  const regressionY = task === 'regression' ? regressionTargets(targets, numeric, body, fileLabel, opts.target, checkFinite) : null;
  const classes = task === 'classification' ? classIndex(targets, numeric, body, fileLabel, opts.target) : null;

  const { train, test } = splitIndices(n, testFraction, seed);
  if (train.length === 0 || test.length === 0) {
    throw new DataError(fileLabel, `${n} data rows are too few to split with testFraction ${testFraction}`);
  }
  const gather = (idx: number[]) => {
    const x = new Float32Array(idx.length * F);
    idx.forEach((r, i) => x.set(features.subarray(r * F, (r + 1) * F), i * F));
    return x;
  };
  const xTrain = gather(train);
  const xTest = gather(test);
  const base = {
    name: fileLabel.replace(/^.*[\\/]/, '').replace(/\.(csv|tsv)$/i, ''),
    inputShape: [F],
    featureNames: featureCols.map((c) => header[c]),
    targetName: opts.target,
    normalization: { kind: 'standardize' as const, ...columnStats(xTrain, train.length, F) },
    source: `${fileLabel}: ${n} rows, target "${opts.target}", seeded split (seed ${seed}): ${train.length} train / ${test.length} test`,
  };

  if (regressionY) {
    const yTrain = Float32Array.from(train, (r) => regressionY[r]);
    const yTest = Float32Array.from(test, (r) => regressionY[r]);
    return {
      ...base,
      task: 'regression',
      numClasses: 1,
      train: { n: train.length, x: xTrain, y: yTrain },
      test: { n: test.length, x: xTest, y: yTest },
      targetNormalization: columnStats(yTrain, train.length, 1),
    };
  }
  const { classNames, classOf } = classes!;
  const labels = (idx: number[]) => (classNames.length <= 256 ? Uint8Array.from(idx, (r) => classOf[r]) : Int32Array.from(idx, (r) => classOf[r]));
  return {
    ...base,
    task: 'classification',
    numClasses: classNames.length,
    classNames,
    train: { n: train.length, x: xTrain, y: labels(train) },
    test: { n: test.length, x: xTest, y: labels(test) },
  };
}

/** Regression targets as numbers; a non-numeric (or, when checked, non-finite) one names its line. */
function regressionTargets(targets: string[], numeric: (number | null)[], body: CsvRow[], fileLabel: string, target: string, checkFinite: boolean): Float64Array {
  const y = new Float64Array(targets.length);
  numeric.forEach((v, r) => {
    const at = { line: body[r].line, column: target };
    if (v === null) throw new DataError(fileLabel, `target "${targets[r]}" is not a number (regression needs numeric targets)`, at);
    if (checkFinite && !Number.isFinite(v)) throw new DataError(fileLabel, `target "${targets[r]}" is not finite`, at);
    y[r] = v;
  });
  return y;
}

/** Class names (sorted distinct target values: numerically when all are numbers) and each row's class. */
function classIndex(targets: string[], numeric: (number | null)[], body: CsvRow[], fileLabel: string, target: string): { classNames: string[]; classOf: number[] } {
  const empty = targets.indexOf('');
  if (empty >= 0) throw new DataError(fileLabel, 'empty target', { line: body[empty].line, column: target });
  const allNumeric = numeric.every((v) => v !== null);
  // Numeric labels are keyed by value so that "1" and "1.0" are one class.
  const keys = allNumeric ? numeric.map((v) => String(v)) : targets;
  const distinct = [...new Set(keys)];
  if (allNumeric) distinct.sort((a, b) => Number(a) - Number(b));
  else distinct.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(distinct.map((k, i) => [k, i]));
  return { classNames: distinct, classOf: keys.map((k) => index.get(k)!) };
}
