// Results in the data's own terms, computed on the host from a split's model outputs: regression
// errors in the target's units (MAE, RMSE, R²) and classification reports (confusion matrix,
// per-class precision / recall / F1, macro averages, top-k accuracy). Pure functions over plain
// arrays, with float64 sums: no GPU, no I/O, so that the CLI, the demo and tests share one
// definition, the one scikit-learn and Keras users know.
import { softmaxForward } from '../reference/softmax.ts';

/** Regression errors over `n` samples, in the units of the targets given. */
export interface RegressionMetrics {
  n: number;
  /** mean absolute error */
  mae: number;
  /** root mean squared error */
  rmse: number;
  /**
   * Coefficient of determination, 1 - SS_res / SS_tot about the mean of the targets given (as
   * scikit-learn's r2_score); averaged over target columns when there are several. null when a
   * target column is constant, where it is undefined.
   */
  r2: number | null;
}

/**
 * MAE, RMSE and R² of `predicted` against `target`, both [n * width] sample-major and in the
 * target's units (de-standardise model outputs first). MAE and RMSE are over all values.
 */
export function regressionMetrics(predicted: ArrayLike<number>, target: ArrayLike<number>, width = 1): RegressionMetrics {
  if (predicted.length !== target.length) throw new Error(`regressionMetrics: ${predicted.length} predictions for ${target.length} targets.`);
  if (!(Number.isInteger(width) && width >= 1) || target.length % width !== 0) throw new Error(`regressionMetrics: ${target.length} targets do not split into rows of ${width}.`);
  const n = target.length / width;
  if (n === 0) throw new Error('regressionMetrics: no samples.');
  let absSum = 0;
  let sqSum = 0;
  const mean = new Float64Array(width);
  const ssRes = new Float64Array(width);
  const ssTot = new Float64Array(width);
  for (let i = 0; i < target.length; i++) mean[i % width] += target[i] / n;
  for (let i = 0; i < target.length; i++) {
    const d = predicted[i] - target[i];
    const t = target[i] - mean[i % width];
    absSum += Math.abs(d);
    sqSum += d * d;
    ssRes[i % width] += d * d;
    ssTot[i % width] += t * t;
  }
  let r2: number | null = 0;
  for (let j = 0; j < width; j++) {
    if (ssTot[j] === 0) {
      r2 = null;
      break;
    }
    r2 += (1 - ssRes[j] / ssTot[j]) / width;
  }
  return { n, mae: absSum / target.length, rmse: Math.sqrt(sqSum / target.length), r2 };
}

/** Index of the largest score in each row of `scores` [n * numClasses]; the first on ties. */
export function argmaxRows(scores: ArrayLike<number>, numClasses: number): Int32Array {
  const n = scores.length / numClasses;
  if (!Number.isInteger(n)) throw new Error(`argmaxRows: ${scores.length} scores do not split into rows of ${numClasses}.`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (scores[i * numClasses + c] > scores[i * numClasses + best]) best = c;
    out[i] = best;
  }
  return out;
}

/**
 * Counts [numClasses * numClasses], row = true class, column = predicted class (scikit-learn's
 * layout): `counts[t * numClasses + p]` samples of class t were predicted as p.
 */
export function confusionMatrix(predicted: ArrayLike<number>, truth: ArrayLike<number>, numClasses: number): Int32Array {
  if (predicted.length !== truth.length) throw new Error(`confusionMatrix: ${predicted.length} predictions for ${truth.length} labels.`);
  const counts = new Int32Array(numClasses * numClasses);
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i];
    const p = predicted[i];
    if (!(Number.isInteger(t) && t >= 0 && t < numClasses)) throw new Error(`confusionMatrix: label ${t} of sample ${i} is out of range [0, ${numClasses}).`);
    if (!(Number.isInteger(p) && p >= 0 && p < numClasses)) throw new Error(`confusionMatrix: prediction ${p} of sample ${i} is out of range [0, ${numClasses}).`);
    counts[t * numClasses + p]++;
  }
  return counts;
}

/**
 * Fraction of samples whose true class is among the k highest scores. Ties rank the lower class
 * index first, as argmaxRows does, so top-1 accuracy equals the accuracy of the argmax.
 */
export function topKAccuracy(scores: ArrayLike<number>, truth: ArrayLike<number>, numClasses: number, k: number): number {
  if (scores.length !== truth.length * numClasses) throw new Error(`topKAccuracy: ${scores.length} scores for ${truth.length} samples of ${numClasses} classes.`);
  if (truth.length === 0) throw new Error('topKAccuracy: no samples.');
  let hits = 0;
  for (let i = 0; i < truth.length; i++) {
    const own = scores[i * numClasses + truth[i]];
    let above = 0;
    for (let c = 0; c < numClasses; c++) {
      const v = scores[i * numClasses + c];
      if (v > own || (v === own && c < truth[i])) above++;
    }
    if (above < k) hits++;
  }
  return hits / truth.length;
}

/** The k of the top-k accuracies worth reporting: 3 and 5 when there are more than 5 classes. */
export function topKFor(numClasses: number): number[] {
  return numClasses > 5 ? [3, 5] : [];
}

/** Precision, recall and F1 of one class, and its support (samples of that class). */
export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationReport {
  n: number;
  accuracy: number;
  classNames: string[];
  /** confusion[t][p]: samples of true class t predicted as p */
  confusion: number[][];
  perClass: ClassMetrics[];
  /** unweighted means over the classes that occur (in the labels or the predictions) */
  macro: { precision: number; recall: number; f1: number };
  /** top-k accuracies (see topKFor); empty for few classes */
  topK: { k: number; accuracy: number }[];
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);

/**
 * Per-class and macro-averaged precision, recall and F1 from a confusion matrix
 * (`counts[t * C + p]`). A ratio with a zero denominator (a class never predicted, or absent) is
 * 0, as scikit-learn's default. Macro averages are over the classes that occur among the labels or
 * the predictions, as scikit-learn's: a declared class that never occurs (labels 0-9 of which the
 * data uses 4) would otherwise pull them down.
 */
export function classificationReport(counts: ArrayLike<number>, numClasses: number, classNames?: string[]): Omit<ClassificationReport, 'topK'> {
  const C = numClasses;
  if (counts.length !== C * C) throw new Error(`classificationReport: ${counts.length} counts for ${C} classes.`);
  const names = Array.from({ length: C }, (_, c) => classNames?.[c] ?? String(c));
  const confusion = Array.from({ length: C }, (_, t) => Array.from({ length: C }, (_, p) => counts[t * C + p]));
  let n = 0;
  let correct = 0;
  const occurring: number[] = [];
  const perClass = names.map((name, c) => {
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < C; j++) {
      support += confusion[c][j];
      predicted += confusion[j][c];
    }
    const tp = confusion[c][c];
    n += support;
    correct += tp;
    if (support + predicted > 0) occurring.push(c);
    const precision = ratio(tp, predicted);
    const recall = ratio(tp, support);
    return { name, precision, recall, f1: ratio(2 * precision * recall, precision + recall), support };
  });
  const mean = (k: 'precision' | 'recall' | 'f1') =>
    ratio(
      occurring.reduce((s, c) => s + perClass[c][k], 0),
      occurring.length,
    );
  return { n, accuracy: ratio(correct, n), classNames: names, confusion, perClass, macro: { precision: mean('precision'), recall: mean('recall'), f1: mean('f1') } };
}

/** The whole report from model scores (logits or probabilities) [n * numClasses] and true labels. */
export function classificationMetrics(scores: ArrayLike<number>, truth: ArrayLike<number>, numClasses: number, classNames?: string[]): ClassificationReport {
  const counts = confusionMatrix(argmaxRows(scores, numClasses), truth, numClasses);
  const topK = topKFor(numClasses).map((k) => ({ k, accuracy: topKAccuracy(scores, truth, numClasses, k) }));
  return { ...classificationReport(counts, numClasses, classNames), topK };
}

/** Softmax of each row of logits [n * numClasses] into a new array: the CPU reference's softmax. */
export function softmaxRows(logits: ArrayLike<number>, numClasses: number): Float32Array {
  const out = new Float32Array(logits.length);
  softmaxForward(logits, out, numClasses);
  return out;
}
