// The CLI's predict command: a trained model asked about new data. Three sources: a CSV table of
// new rows (the checkpoint's feature columns found by name, its standardisation applied, the
// target column absent or skipped), an IDX images file, or the first test samples of a dataset.
// Predictions are printed in the target's units or as class names, as JSON lines, or written as
// CSV (the input rows with the predictions appended) with --out, atomically.
import { resolve } from 'node:path';
import { conformToTraining } from '../data/conform.ts';
import { readCsvFeatures } from '../data/csv-features.ts';
import { formatCsvRow, parseNumber } from '../data/csv-table.ts';
import { sampleSize, targetSize, type Dataset, type Split } from '../data/dataset.ts';
import { parseIdx } from '../data/idx.ts';
import { loadDataset } from '../data/node.ts';
import { readFileChecked, writeFileAtomic } from '../train/atomic.ts';
import { argmaxRows, softmaxRows } from '../train/metrics.ts';
import { predict } from '../train/trainer.ts';
import { splitOutputs } from '../train/outputs.ts';
import { UsageError } from './options.ts';
import { checkKind, formatUnits, outputsInTargetUnits, type DataTerms } from './results.ts';
import { checkDataMatches, csvOptions, imageOptions, isTableFile, openCheckpoint, withEngine, type CsvCliOptions, type OpenedCheckpoint } from './session.ts';

const log = (s: string) => process.stderr.write(`${s}\n`);

export interface PredictOptions extends CsvCliOptions {
  checkpoint: string;
  input?: string;
  dataset?: string;
  count?: number;
  json?: boolean;
  out?: string;
}

/** One sample's prediction: a value per output (regression) or a class with its probability. */
interface Prediction {
  /** regression: values in the target's units */
  values?: number[];
  /** classification */
  cls?: number;
  label?: string;
  probability?: number;
}

/** Where the samples came from: per sample a description for printing, and optionally its truth and its input cells. */
interface Samples {
  n: number;
  /** how to name sample i in printed lines */
  names: string[];
  /** CSV input: each row's line in the file */
  lines?: number[];
  truth?: (number | null)[];
  /** CSV input: the header and each row's cells, written back beside the predictions with --out */
  table?: { header: string[]; rows: string[][] };
}

export async function runPredict(o: PredictOptions): Promise<void> {
  if (o.out && o.input && resolve(o.out) === resolve(o.input)) throw new UsageError(`--out ${o.out} is the input file; write the predictions to another file.`);
  await withEngine(async (e) => {
    const opened = await openCheckpoint(e, o.checkpoint);
    const { model, terms } = opened;
    const { samples, outputs } = o.input ? await fromInput(opened, o) : await fromDataset(opened, o);
    const predictions = predictionsOf(outputs, samples.n, terms);
    if (o.out) {
      await writeFileAtomic(o.out, new TextEncoder().encode(predictionsCsv(samples, predictions, terms)));
      log(`${samples.n} prediction${samples.n === 1 ? '' : 's'} written to ${o.out}`);
    } else {
      for (let i = 0; i < samples.n; i++) console.log(predictionLine(i, samples, predictions[i], terms, o.json ?? false));
    }
    model.dispose();
  });
}

/** Whether a model takes table rows (standardised features) rather than images. */
function takesTables(opened: OpenedCheckpoint): boolean {
  return opened.info ? opened.info.normalization.kind === 'standardize' : opened.model.inputShape.length === 1;
}

async function fromInput(opened: OpenedCheckpoint, o: PredictOptions): Promise<{ samples: Samples; outputs: Float32Array }> {
  const file = o.input!;
  if (takesTables(opened)) return fromCsv(opened, o, file);
  if (isTableFile(file)) {
    throw new UsageError(`checkpoint ${o.checkpoint} is an image model (samples [${opened.model.inputShape.join(', ')}]); --input takes an IDX images file for it, not a table.`);
  }
  const { model } = opened;
  const size = sampleSize({ inputShape: [...model.inputShape] });
  const idx = parseIdx(await readFileChecked(file), file, 'images');
  const per = idx.dims.slice(1).reduce((a, b) => a * b, 1);
  if (per !== size) throw new UsageError(`${file} holds images of ${idx.dims.slice(1).join('x')} = ${per} pixels; the model takes [${model.inputShape.join(', ')}] = ${size}.`);
  const n = Math.min(o.count ?? 10, idx.dims[0]);
  const x = Float32Array.from(idx.data.subarray(0, n * size), (v) => v / 255);
  const outputs = await predict(model, x, n);
  return { samples: { n, names: Array.from({ length: n }, (_, i) => `#${i}`) }, outputs };
}

/** New rows from a table: the checkpoint's columns, its standardisation, through the same batcher as training. */
async function fromCsv(opened: OpenedCheckpoint, o: PredictOptions, file: string): Promise<{ samples: Samples; outputs: Float32Array }> {
  const { model, info } = opened;
  if (!info) throw new UsageError(`checkpoint ${o.checkpoint} does not record how its training data was standardised, so it cannot read raw table rows.`);
  const F = sampleSize(info);
  const text = new TextDecoder().decode(await readFileChecked(file));
  const rows = readCsvFeatures(text, file, { featureNames: info.featureNames ?? null, numFeatures: F, targetName: info.targetName, ...csvOptions(o) });
  if (rows.byPosition) log(`${file}: ${info.featureNames ? 'no header' : `checkpoint ${o.checkpoint} does not record its column names`}: the ${F} columns are read by position as the model's features, in training order`);
  if (rows.moved.length) log(`${file}: columns read by name in another order than in training: ${rows.moved.map((m) => `${m.name} (column ${m.column}, trained as feature ${m.trained})`).join(', ')}`);
  if (rows.unused.length) log(`${file}: not used as features: ${rows.unused.join(', ')}${info.targetName && rows.unused.includes(info.targetName) ? ` (${info.targetName} is the target)` : ''}`);
  const n = Math.min(o.count ?? rows.n, rows.n);
  const split: Split = { n, x: rows.x.subarray(0, n * F), y: new Float32Array(n * targetSize(info)) };
  const data: Dataset = { ...info, name: file, train: split, test: split };
  const outputs = await splitOutputs(model, split, data);
  const records = rows.table.rows.slice(0, n);
  const targetCol = info.targetName !== undefined ? rows.table.header.indexOf(info.targetName) : -1;
  const truth = targetCol >= 0 ? records.map((r) => knownTarget(r.cells[targetCol], info)) : undefined;
  return {
    samples: { n, names: records.map((r) => `line ${r.line}`), lines: records.map((r) => r.line), truth, table: { header: rows.table.header, rows: records.map((r) => r.cells) } },
    outputs,
  };
}

/**
 * A target cell of a table to predict, shown beside the prediction: a number (regression) or the
 * index of a class the model knows (numeric labels matched as values, as training reads them).
 */
function knownTarget(cell: string, terms: DataTerms): number | null {
  const v = parseNumber(cell);
  if (terms.task === 'regression') return v !== null && Number.isFinite(v) ? v : null;
  const names = terms.classNames ?? [];
  const i = names.indexOf(cell.trim());
  return i >= 0 ? i : v !== null && names.includes(String(v)) ? names.indexOf(String(v)) : null;
}

async function fromDataset(opened: OpenedCheckpoint, o: PredictOptions): Promise<{ samples: Samples; outputs: Float32Array }> {
  const { model, info, terms } = opened;
  const spec = o.dataset ?? info?.name;
  if (!spec) throw new UsageError('pass --input FILE or --dataset NAME.');
  if (!o.dataset && info?.featureNames) throw new UsageError(`checkpoint ${o.checkpoint} was trained on the table "${info.name}": pass --input new.csv (rows to predict) or --dataset FILE.csv.`);
  let data = loadDataset(spec, { target: terms.targetName, task: terms.task, log, ...csvOptions(o), images: imageOptions(spec, o, info) });
  checkKind(terms, o.checkpoint, data);
  if (info) data = conformToTraining(data, info, spec);
  checkDataMatches(data, info, o.checkpoint);
  const n = Math.min(o.count ?? 10, data.test.n);
  const split: Split = { n, x: data.test.x.subarray(0, n * sampleSize(data)), y: data.test.y.subarray(0, n * targetSize(data)) };
  const outputs = await splitOutputs(model, split, data);
  const truth = Array.from(split.y.subarray(0, n), Number);
  return { samples: { n, names: Array.from({ length: n }, (_, i) => `#${i}`), truth: terms.task === 'classification' || targetSize(data) === 1 ? truth : undefined }, outputs };
}

function predictionsOf(outputs: Float32Array, n: number, terms: DataTerms): Prediction[] {
  const C = outputs.length / n;
  if (terms.task === 'regression') {
    const values = outputsInTargetUnits(outputs, terms);
    return Array.from({ length: n }, (_, i) => ({ values: Array.from(values.subarray(i * C, (i + 1) * C)) }));
  }
  const probs = softmaxRows(outputs, C);
  const cls = argmaxRows(outputs, C);
  return Array.from(cls, (c, i) => ({ cls: c, label: terms.classNames?.[c] ?? String(c), probability: probs[i * C + c] }));
}

function predictionLine(i: number, s: Samples, p: Prediction, terms: DataTerms, json: boolean): string {
  const truth = s.truth?.[i] ?? null;
  if (terms.task === 'regression') {
    const v = p.values!;
    const shownV = v.map((x) => Number(f32(x)));
    if (json) return JSON.stringify({ index: i, ...(s.lines ? { line: s.lines[i] } : {}), predicted: shownV.length === 1 ? shownV[0] : shownV, truth });
    const shown = v.map(formatUnits).join(', ');
    return `${s.names[i]}: ${terms.targetName ? `${terms.targetName} ` : ''}${shown}${truth !== null ? `  true: ${formatUnits(truth)}` : ''}`;
  }
  if (json) return JSON.stringify({ index: i, ...(s.lines ? { line: s.lines[i] } : {}), predicted: p.cls, label: p.label, probability: Number(f32(p.probability!)), truth });
  const trueLabel = truth !== null ? (terms.classNames?.[truth] ?? String(truth)) : null;
  return `${s.names[i]}: ${p.label} (${(100 * p.probability!).toFixed(1)}%)${trueLabel !== null ? `  true: ${trueLabel}${truth === p.cls ? '' : '  MISTAKE'}` : ''}`;
}

/** The predictions as CSV: the input's columns when it was a table, then the prediction columns. */
function predictionsCsv(s: Samples, predictions: Prediction[], terms: DataTerms): string {
  const name = `predicted_${terms.targetName ?? 'value'}`;
  const width = predictions[0]?.values?.length ?? 1;
  const predHeader = terms.task === 'regression' ? (width === 1 ? [name] : Array.from({ length: width }, (_, j) => `${name}_${j}`)) : [terms.targetName ? name : 'predicted', 'probability'];
  const inputHeader = s.table ? s.table.header : ['index', ...(s.truth ? ['truth'] : [])];
  const lines = [formatCsvRow([...inputHeader, ...predHeader])];
  predictions.forEach((p, i) => {
    const input = s.table ? s.table.rows[i] : [String(i), ...(s.truth ? [truthCell(s.truth[i], terms)] : [])];
    const pred = terms.task === 'regression' ? p.values!.map(f32) : [p.label!, f32(p.probability!)];
    lines.push(formatCsvRow([...input, ...pred]));
  });
  return `${lines.join('\n')}\n`;
}

/** A float32 value written with the digits it holds (about 7), not its float64 expansion. */
const f32 = (v: number) => String(Number(v.toPrecision(7)));

const truthCell = (t: number | null, terms: DataTerms) => (t === null ? '' : terms.task === 'classification' ? (terms.classNames?.[t] ?? String(t)) : String(t));
