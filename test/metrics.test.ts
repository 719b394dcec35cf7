// The result metrics on hand-made cases whose values are worked out by hand in the comments:
// regression errors and R², a 3-class confusion matrix with its per-class and macro figures,
// top-k accuracy with ties, and softmax.
import { describe, expect, it } from 'vitest';
import { argmaxRows, classificationMetrics, classificationReport, confusionMatrix, regressionMetrics, softmaxRows, topKAccuracy, topKFor } from '../src/train/metrics.ts';

describe('regression metrics', () => {
  it('MAE, RMSE and R² of a known prediction', () => {
    // errors 0, 0, 0, 1: MAE 1/4, RMSE sqrt(1/4); SS_res 1, SS_tot about 2.5 is 2.25+0.25+0.25+2.25 = 5.
    const m = regressionMetrics([1, 2, 3, 5], [1, 2, 3, 4]);
    expect(m.n).toBe(4);
    expect(m.mae).toBeCloseTo(0.25, 12);
    expect(m.rmse).toBeCloseTo(0.5, 12);
    expect(m.r2).toBeCloseTo(0.8, 12);
  });

  it('R² is 1 for a perfect fit, 0 for the mean, negative for worse, null for a constant target', () => {
    expect(regressionMetrics([3, 7, 11], [3, 7, 11]).r2).toBe(1);
    expect(regressionMetrics([7, 7, 7], [3, 7, 11]).r2).toBeCloseTo(0, 12);
    // SS_res = 64+0+64 = 128 against SS_tot 32: 1 - 4 = -3.
    expect(regressionMetrics([11, 7, 3], [3, 7, 11]).r2).toBeCloseTo(-3, 12);
    expect(regressionMetrics([1, 2], [5, 5]).r2).toBeNull();
  });

  it('two target columns: errors over all values, R² the mean of the columns', () => {
    // column 0: as the first case (R² 0.8); column 1: targets 0,0,2,2 predicted 1 each, SS_res 4 = SS_tot: R² 0.
    const pred = [1, 1, 2, 1, 3, 1, 5, 1];
    const target = [1, 0, 2, 0, 3, 2, 4, 2];
    const m = regressionMetrics(pred, target, 2);
    expect(m.n).toBe(4);
    expect(m.mae).toBeCloseTo(5 / 8, 12);
    expect(m.rmse).toBeCloseTo(Math.sqrt(5 / 8), 12);
    expect(m.r2).toBeCloseTo(0.4, 12);
  });

  it('refuses mismatched lengths', () => {
    expect(() => regressionMetrics([1, 2], [1, 2, 3])).toThrow(/2 predictions for 3 targets/);
    expect(() => regressionMetrics([1, 2, 3], [1, 2, 3], 2)).toThrow(/rows of 2/);
  });
});

describe('classification metrics', () => {
  // True class per sample and the prediction, listed so that the confusion matrix (rows true) is
  //   A: 5 1 0   (support 6)
  //   B: 2 3 1   (support 6)
  //   C: 0 0 4   (support 4)
  // Predicted totals 7, 4, 5. Precision 5/7, 3/4, 4/5; recall 5/6, 3/6, 4/4;
  // F1 = 2tp / (2tp + fp + fn): 10/13, 6/10, 8/9. Accuracy 12/16.
  const truth = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2];
  const pred = [0, 0, 1, 0, 0, 0, 1, 0, 2, 1, 0, 1, 2, 2, 2, 2];

  it('a 3-class confusion matrix and its per-class and macro figures', () => {
    const counts = confusionMatrix(pred, truth, 3);
    expect(Array.from(counts)).toEqual([5, 1, 0, 2, 3, 1, 0, 0, 4]);
    const r = classificationReport(counts, 3, ['A', 'B', 'C']);
    expect(r.n).toBe(16);
    expect(r.accuracy).toBeCloseTo(0.75, 12);
    expect(r.confusion).toEqual([
      [5, 1, 0],
      [2, 3, 1],
      [0, 0, 4],
    ]);
    const want = [
      { name: 'A', precision: 5 / 7, recall: 5 / 6, f1: 10 / 13, support: 6 },
      { name: 'B', precision: 3 / 4, recall: 1 / 2, f1: 6 / 10, support: 6 },
      { name: 'C', precision: 4 / 5, recall: 1, f1: 8 / 9, support: 4 },
    ];
    r.perClass.forEach((m, c) => {
      expect(m.name).toBe(want[c].name);
      expect(m.support).toBe(want[c].support);
      expect(m.precision).toBeCloseTo(want[c].precision, 12);
      expect(m.recall).toBeCloseTo(want[c].recall, 12);
      expect(m.f1).toBeCloseTo(want[c].f1, 12);
    });
    expect(r.macro.precision).toBeCloseTo((5 / 7 + 3 / 4 + 4 / 5) / 3, 12);
    expect(r.macro.recall).toBeCloseTo(7 / 9, 12);
    expect(r.macro.f1).toBeCloseTo((10 / 13 + 6 / 10 + 8 / 9) / 3, 12);
  });

  it('a class never predicted has precision 0 (and F1 0), and still counts in the macro average', () => {
    const r = classificationReport(confusionMatrix([0, 0, 0], [0, 1, 0], 2), 2);
    expect(r.classNames).toEqual(['0', '1']);
    expect(r.perClass[1]).toEqual({ name: '1', precision: 0, recall: 0, f1: 0, support: 1 });
    expect(r.perClass[0].precision).toBeCloseTo(2 / 3, 12);
    expect(r.macro.recall).toBeCloseTo(0.5, 12);
  });

  it('macro averages leave out declared classes that occur neither as labels nor as predictions', () => {
    // Classes 0-4 declared, 0-2 used: the report of the 3-class case above, with two empty rows and columns.
    const r = classificationReport(confusionMatrix(pred, truth, 5), 5);
    expect(r.perClass[3]).toEqual({ name: '3', precision: 0, recall: 0, f1: 0, support: 0 });
    expect(r.macro.recall).toBeCloseTo(7 / 9, 12);
    expect(r.macro.f1).toBeCloseTo((10 / 13 + 6 / 10 + 8 / 9) / 3, 12);
    // A class predicted but never a label counts (precision 0, recall 0).
    const fp = classificationReport(confusionMatrix([0, 2], [0, 0], 3), 3);
    expect(fp.macro.precision).toBeCloseTo(0.5, 12);
    expect(fp.macro.recall).toBeCloseTo(0.25, 12);
  });

  it('from scores: argmax (first on ties), the same report, and top-k where there are more than 5 classes', () => {
    // One-hot scores of the predictions above give the same report.
    const scores = new Float32Array(truth.length * 3);
    pred.forEach((p, i) => (scores[i * 3 + p] = 1));
    const r = classificationMetrics(scores, truth, 3, ['A', 'B', 'C']);
    expect(r.accuracy).toBeCloseTo(0.75, 12);
    expect(r.topK).toEqual([]);
    expect(Array.from(argmaxRows([0.1, 0.5, 0.5, 2, -1, 0], 3))).toEqual([1, 0]);
    expect(topKFor(3)).toEqual([]);
    expect(topKFor(10)).toEqual([3, 5]);
  });

  it('top-k accuracy counts the true class among the k highest scores; ties rank lower indices first', () => {
    // sample 0: true 2 ranks 2nd (after 3); sample 1: true 0 ranks 4th; sample 2: all tied, true 1 ranks 2nd.
    const scores = [0.1, 0.2, 0.3, 0.4, 0.1, 0.2, 0.3, 0.4, 1, 1, 1, 1];
    const truth2 = [2, 0, 1];
    expect(topKAccuracy(scores, truth2, 4, 1)).toBe(0);
    expect(topKAccuracy(scores, truth2, 4, 2)).toBeCloseTo(2 / 3, 12);
    expect(topKAccuracy(scores, truth2, 4, 3)).toBeCloseTo(2 / 3, 12);
    expect(topKAccuracy(scores, truth2, 4, 4)).toBe(1);
    // Top-1 equals argmax accuracy, ties included.
    const tied = [1, 1, 0, 5, 5, 0];
    expect(topKAccuracy(tied, [0, 1], 3, 1)).toBe(0.5);
  });

  it('refuses labels out of range', () => {
    expect(() => confusionMatrix([0, 3], [0, 1], 3)).toThrow(/prediction 3 of sample 1/);
    expect(() => confusionMatrix([0, 1], [0, -1], 3)).toThrow(/label -1 of sample 1/);
  });

  it('softmax rows sum to 1 and survive large logits', () => {
    const p = softmaxRows([0, Math.log(3), 1000, 1000], 2);
    expect(p[0]).toBeCloseTo(0.25, 6);
    expect(p[1]).toBeCloseTo(0.75, 6);
    expect(p[2]).toBeCloseTo(0.5, 6);
  });
});
