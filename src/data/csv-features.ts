// New rows to predict, from a CSV file: the feature columns a model was trained on, found by name
// in the file's header (in any order), with the training target and any ignored columns left out.
// Values come back raw, in training column order; the caller applies the training normalisation.
// A file that does not fit is refused per column: the missing ones, the ones training never saw,
// and each non-numeric cell by line and column.
import { layoutAdvice, missingColumnError, numericCell, readCsvTable, type CsvReadOptions, type CsvTable } from './csv-table.ts';
import { DataError } from './dataset.ts';

export interface CsvFeatureOptions extends CsvReadOptions {
  /** The training feature columns in input order; null when not known (then read by position). */
  featureNames: string[] | null;
  /** Features per sample the model takes. */
  numFeatures: number;
  /** The training target column: skipped when the file has it. */
  targetName?: string;
  /** Other columns to skip (an id, a label kept for reference). */
  ignoreColumns?: string[];
  /** Reject NaN and infinite values (default true). */
  checkFinite?: boolean;
}

export interface CsvFeatureRows {
  n: number;
  /** [n, numFeatures] raw feature values in training column order */
  x: Float32Array;
  /** the file as read: header and records (kept to write them back beside the predictions) */
  table: CsvTable;
  /** feature columns in another order than in training (1-based file column, 1-based training position), read by name */
  moved: { name: string; column: number; trained: number }[];
  /** columns in the file that are not features: the target and the ignored ones */
  unused: string[];
  /** true when columns were taken by position (no names to match: see CsvFeatureOptions) */
  byPosition: boolean;
}

const list = (names: string[]) => names.map((s) => `"${s}"`).join(', ');

/** Where each feature is in the file's header, by name; refuses missing and unknown columns, naming them. */
function columnsByName(fileLabel: string, table: CsvTable, featureNames: string[], skip: Set<string>): number[] {
  const { header } = table;
  const missing = featureNames.filter((f) => !header.includes(f));
  const extra = header.filter((h) => !featureNames.includes(h) && !skip.has(h));
  if (missing.length || extra.length) {
    const parts = [];
    if (missing.length) parts.push(`missing feature column${missing.length > 1 ? 's' : ''} ${list(missing)}`);
    if (extra.length) parts.push(`column${extra.length > 1 ? 's' : ''} ${list(extra)} not in training (skip with --ignore-columns ${extra.join(',')})`);
    const at = table.headerLine !== null ? { line: table.headerLine } : {};
    const advice = layoutAdvice(table);
    throw new DataError(fileLabel, `the columns do not match the model's: ${parts.join('; ')}. The model was trained on ${featureNames.join(', ')}${advice ? `; ${advice}` : ''}`, at);
  }
  return featureNames.map((f) => header.indexOf(f));
}

/** Read the rows of a CSV file as model features (see CsvFeatureOptions). */
export function readCsvFeatures(text: string, fileLabel: string, opts: CsvFeatureOptions): CsvFeatureRows {
  const F = opts.numFeatures;
  const table = readCsvTable(text, fileLabel, opts);
  const { header } = table;
  const ignore = new Set(opts.ignoreColumns ?? []);
  for (const c of ignore) if (!header.includes(c)) throw missingColumnError(fileLabel, table, `column "${c}" to ignore`);
  const skip = new Set([...ignore, ...(opts.targetName && header.includes(opts.targetName) ? [opts.targetName] : [])]);
  const names = opts.featureNames;
  if (names && names.length !== F) throw new Error(`readCsvFeatures: ${names.length} feature names for ${F} features.`);
  const byName = names !== null && (opts.header !== false || names.every((f) => header.includes(f)));
  let cols: number[];
  if (byName) {
    cols = columnsByName(fileLabel, table, names!, skip);
  } else {
    cols = header.map((_, c) => c).filter((c) => !skip.has(header[c]));
    if (cols.length !== F) {
      const why = names === null ? 'the model does not record its feature column names, so they are read by position' : 'without a header, columns are read by position';
      throw new DataError(fileLabel, `${why}: the model takes ${F} feature columns, the file has ${cols.length}${skip.size ? ` besides ${list([...skip])}` : ''}`);
    }
  }
  // A feature has moved when its rank among the feature columns differs from training's: columns
  // skipped in between (the target, an id) do not count.
  const ranks = [...cols].sort((a, b) => a - b);
  const moved = byName
    ? cols
        .map((c, f) => ({ name: names![f], column: c + 1, trained: f + 1, rank: ranks.indexOf(c) }))
        .filter((m) => m.rank !== m.trained - 1)
        .map(({ rank: _, ...m }) => m)
    : [];
  const checkFinite = opts.checkFinite ?? true;
  const n = table.rows.length;
  if (n === 0) throw new DataError(fileLabel, 'no rows to predict');
  const x = new Float32Array(n * F);
  for (let r = 0; r < n; r++) {
    const row = table.rows[r];
    if (row.cells.length !== header.length) {
      throw new DataError(fileLabel, `row has ${row.cells.length} fields, the ${table.headerLine !== null ? 'header' : 'first row'} has ${header.length}`, { line: row.line });
    }
    cols.forEach((c, f) => (x[r * F + f] = numericCell(row.cells[c], fileLabel, { line: row.line, column: header[c] }, checkFinite)));
  }
  return { n, x, table, moved, unused: header.filter((h) => skip.has(h)), byPosition: !byName };
}
