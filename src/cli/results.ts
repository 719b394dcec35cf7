// Results as people read them: a split's model outputs turned into errors in the target's units
// or a classification report (src/train/metrics.ts computes them), and the compact text the CLI
// prints. Also the check that a checkpoint's kind of model (classifier or regression) is the
// kind the data asks for, named on both sides when it is not.
import { unstandardizeTargets, type Dataset, type Split } from '../data/dataset.ts';
import { classificationMetrics, regressionMetrics, type ClassificationReport, type RegressionMetrics } from '../train/metrics.ts';
import { UsageError } from './options.ts';

/** What the CLI knows of a model's data: from the dataset at hand or from a checkpoint. */
export type DataTerms = Pick<Dataset, 'name' | 'task' | 'numClasses' | 'classNames' | 'targetNormalization' | 'targetName'>;

/** Model outputs [n * numClasses] mapped back to target units: a copy, de-standardised. */
export function outputsInTargetUnits(outputs: Float32Array, terms: Pick<Dataset, 'targetNormalization'>): Float32Array {
  return unstandardizeTargets(terms, outputs.slice());
}

/** MAE, RMSE and R² of a regression split, in the target's units. */
export function regressionResult(outputs: Float32Array, split: Split, terms: DataTerms): RegressionMetrics {
  return regressionMetrics(outputsInTargetUnits(outputs, terms), split.y, terms.numClasses);
}

/** The classification report of a split from its logits. */
export function classificationResult(outputs: Float32Array, split: Split, terms: DataTerms): ClassificationReport {
  return classificationMetrics(outputs, split.y, terms.numClasses, terms.classNames);
}

/** A value in the target's units: 4 significant digits, whole numbers from 10,000 up. */
export function formatUnits(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1e4 ? v.toFixed(0) : String(Number(v.toPrecision(4)));
}

const fmtR2 = (r2: number | null) => (r2 === null ? 'undefined (constant target)' : r2.toFixed(3));

/** `MAE 2.31, RMSE 3.4, R² 0.852`: errors in the target's units. */
export function formatRegression(m: RegressionMetrics): string {
  return `MAE ${formatUnits(m.mae)}, RMSE ${formatUnits(m.rmse)}, R² ${fmtR2(m.r2)}`;
}

/** The target's name for a line of results: `MEDV` or `the target`. */
export function targetLabel(terms: Pick<DataTerms, 'targetName'>): string {
  return terms.targetName ? terms.targetName : 'the target';
}

const f3 = (v: number) => v.toFixed(3);

/** Macro averages and top-k on one line. */
export function formatClassificationSummary(r: ClassificationReport): string {
  const topK = r.topK.map((t) => `top-${t.k} ${(100 * t.accuracy).toFixed(2)}%`).join(', ');
  return `macro precision ${f3(r.macro.precision)}, recall ${f3(r.macro.recall)}, F1 ${f3(r.macro.f1)}${topK ? `; ${topK}` : ''}`;
}

/** Rows of cells as a text table: the first column (names) left-aligned, numbers right-aligned. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const isNum = (s: string) => /^[\d.%-]+$/.test(s);
  return rows
    .map((r) =>
      r
        .map((cell, c) => (c > 0 && isNum(cell) ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Per-class precision, recall, F1 and support, then the macro averages, accuracy and top-k. */
export function formatClassificationTable(r: ClassificationReport): string {
  const rows = [['class', 'precision', 'recall', 'f1', 'support']];
  for (const m of r.perClass) rows.push([m.name, f3(m.precision), f3(m.recall), f3(m.f1), String(m.support)]);
  rows.push(['macro avg', f3(r.macro.precision), f3(r.macro.recall), f3(r.macro.f1), String(r.n)]);
  rows.push(['accuracy', '', '', f3(r.accuracy), String(r.n)]);
  for (const t of r.topK) rows.push([`top-${t.k} accuracy`, '', '', f3(t.accuracy), String(r.n)]);
  return table(rows);
}

/** The confusion matrix with classes numbered: rows the true class (with its name), columns the predicted one. */
export function formatConfusion(r: ClassificationReport): string {
  const C = r.classNames.length;
  const rows = [['true \\ predicted', ...Array.from({ length: C }, (_, p) => String(p))]];
  r.confusion.forEach((counts, t) => rows.push([r.classNames[t] === String(t) ? String(t) : `${t} ${r.classNames[t]}`, ...counts.map(String)]));
  return table(rows);
}

/** Describe a model's kind for messages: `a classifier (3 classes: a, b, c)` or `a regression model (of MEDV)`. */
export function describeKind(terms: Pick<DataTerms, 'task' | 'numClasses' | 'classNames' | 'targetName'>): string {
  if (terms.task === 'regression') return `a regression model${terms.targetName ? ` (of ${terms.targetName})` : ''}`;
  const names = terms.classNames ? `: ${terms.classNames.slice(0, 5).join(', ')}${terms.classNames.length > 5 ? ', ...' : ''}` : '';
  return `a classifier (${terms.numClasses} classes${names})`;
}

/**
 * Refuse data of the other kind than the model: a classifier's checkpoint given regression data
 * (numeric targets to report errors on), or a regression checkpoint given class labels.
 */
export function checkKind(model: Pick<DataTerms, 'task' | 'numClasses' | 'classNames' | 'targetName'>, checkpoint: string, data: DataTerms): void {
  if (model.task === data.task) return;
  const what =
    data.task === 'regression'
      ? `a regression dataset (numeric targets${data.targetName ? ` in "${data.targetName}"` : ''}), for errors in its units`
      : `a classification dataset (${data.numClasses} classes${data.targetName ? ` in "${data.targetName}"` : ''})`;
  const fix = model.task === 'classification' ? ' (pass --task classification if its numeric targets are class labels)' : '';
  throw new UsageError(`checkpoint ${checkpoint} is ${describeKind(model)}, but "${data.name}" is ${what}${fix}.`);
}
