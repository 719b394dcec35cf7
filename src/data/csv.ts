// Tabular data from CSV text (browser file picker or Node): a header row, numeric feature
// columns and one target column chosen by name. The task is classification when the target is
// not numeric (or the caller says so), else regression. Train and test are split by a seeded
// shuffle, and features are standardised with train statistics only, so nothing of the test split
// leaks into training. Errors name the file, the line and the column.
import { Rng } from '../util/random.ts';
import { DataError, columnStats, type Dataset } from './dataset.ts';

/** Options for `parseCsv`. */
export interface CsvOptions {
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
  /** Field separator (default ','). */
  delimiter?: string;
}

/** One parsed CSV record and the (1-based) line it starts on. */
export interface CsvRow {
  line: number;
  cells: string[];
}

/**
 * Split CSV text into records: RFC 4180 quoting (`"a, b"`, `""` for a quote, newlines inside
 * quotes), `\n` or `\r\n` line ends, a leading byte-order mark ignored, blank lines skipped.
 */
export function parseCsvRows(text: string, fileLabel: string, delimiter = ','): CsvRow[] {
  const rows: CsvRow[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let cells: string[] = [];
  let rowLine = 1;
  let anyQuoted = false;
  const endRow = () => {
    const blank = !anyQuoted && cells.length === 1 && cells[0].trim() === '';
    if (!blank) rows.push({ line: rowLine, cells });
    cells = [];
    anyQuoted = false;
  };
  while (i <= text.length) {
    // Start of a field.
    if (cells.length === 0) rowLine = line;
    let field = '';
    let j = i;
    while (j < text.length && (text[j] === ' ' || text[j] === '\t') && text[j] !== delimiter) j++;
    if (text[j] === '"') {
      anyQuoted = true;
      const openLine = line;
      j++;
      for (;;) {
        if (j >= text.length) throw new DataError(fileLabel, 'quoted field is never closed', { line: openLine });
        const c = text[j];
        if (c === '"') {
          if (text[j + 1] === '"') {
            field += '"';
            j += 2;
            continue;
          }
          j++;
          break;
        }
        if (c === '\n') line++;
        field += c;
        j++;
      }
      while (j < text.length && (text[j] === ' ' || text[j] === '\t' || text[j] === '\r') && text[j] !== delimiter && !(text[j] === '\r' && text[j + 1] === '\n')) j++;
      if (j < text.length && text[j] !== delimiter && text[j] !== '\n' && !(text[j] === '\r' && text[j + 1] === '\n')) {
        throw new DataError(fileLabel, `unexpected character '${text[j]}' after a closing quote`, { line });
      }
    } else {
      j = i;
      while (j < text.length && text[j] !== delimiter && text[j] !== '\n') j++;
      field = text.slice(i, j);
      if (field.endsWith('\r') && text[j] !== delimiter) field = field.slice(0, -1);
    }
    cells.push(field);
    if (j >= text.length) {
      endRow();
      break;
    }
    if (text[j] === delimiter) {
      i = j + 1;
      continue;
    }
    // End of a record: '\n' or '\r\n'.
    j += text[j] === '\r' ? 2 : 1;
    endRow();
    line++;
    i = j;
    if (i >= text.length) break;
  }
  return rows;
}

const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;

/** A cell as a number, or null if it is not one. `NaN`, `inf`, `-Infinity` parse (as non-finite). */
export function parseNumber(cell: string): number | null {
  const s = cell.trim();
  if (s === '') return null;
  const v = Number(s);
  if (!Number.isNaN(v)) return v;
  if (NON_FINITE.test(s)) return /nan/i.test(s) ? NaN : s.startsWith('-') ? -Infinity : Infinity;
  return null;
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
  const rows = parseCsvRows(text, fileLabel, opts.delimiter ?? ',');
  if (rows.length === 0) throw new DataError(fileLabel, 'file has no header row');
  const header = rows[0].cells.map((s) => s.trim());
  const seen = new Set<string>();
  for (const h of header) {
    if (seen.has(h)) throw new DataError(fileLabel, `column name "${h}" appears twice in the header`, { line: rows[0].line });
    seen.add(h);
  }
  const targetCol = header.indexOf(opts.target);
  if (targetCol < 0) {
    throw new DataError(fileLabel, `target column "${opts.target}" not found; the columns are: ${header.join(', ')}`, { line: rows[0].line });
  }
  const featureCols = header.map((_, c) => c).filter((c) => c !== targetCol);
  if (featureCols.length === 0) throw new DataError(fileLabel, 'no feature columns besides the target', { line: rows[0].line });
  const body = rows.slice(1);
  const n = body.length;
  const F = featureCols.length;

  const features = new Float64Array(n * F);
  const targets: string[] = [];
  body.forEach((row, r) => {
    if (row.cells.length !== header.length) {
      throw new DataError(fileLabel, `row has ${row.cells.length} fields, the header has ${header.length}`, { line: row.line });
    }
    featureCols.forEach((c, f) => {
      const v = parseNumber(row.cells[c]);
      const at = { line: row.line, column: header[c] };
      if (v === null) {
        const what = row.cells[c].trim() === '' ? 'empty cell (missing values are not supported)' : `"${row.cells[c]}" is not a number`;
        throw new DataError(fileLabel, what, at);
      }
      if (checkFinite && !Number.isFinite(v)) throw new DataError(fileLabel, `value "${row.cells[c].trim()}" is not finite`, at);
      features[r * F + f] = v;
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
    name: fileLabel.replace(/^.*[\\/]/, '').replace(/\.csv$/i, ''),
    inputShape: [F],
    featureNames: featureCols.map((c) => header[c]),
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
  const empty = targets.findIndex((t) => t === '');
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
