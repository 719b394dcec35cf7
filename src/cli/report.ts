// What a run leaves behind: the metrics JSON (written atomically, so a failed run never leaves a
// half-written file over a previous one), a picture of the curves beside it (loss and accuracy;
// for regression also the errors in the target's units and R² per epoch), and for a classifier
// the confusion matrix as a picture.
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { AdapterReport } from '../gpu/device.ts';
import { writeFileAtomic } from '../train/atomic.ts';
import type { ClassificationReport, RegressionMetrics } from '../train/metrics.ts';
import type { EpochEvent, TrainState } from '../train/trainer.ts';

/** Regression results in the target's units: the test split, and the validation split after each epoch. */
export interface RegressionReport {
  /** the target column, whose units the errors are in */
  target: string | null;
  test: RegressionMetrics;
  /** one entry per epoch of this run, in order */
  validation: (RegressionMetrics & { epoch: number })[];
}

export interface RunMetrics {
  command: 'train' | 'evaluate';
  dataset: string;
  model: string;
  adapter: { name: string; description: string; isSoftware: boolean };
  epochs: number;
  batchSize?: number;
  optimizer?: unknown;
  seed?: number;
  trainLoss: number[];
  trainAccuracy: (number | null)[];
  valLoss?: number[];
  valAccuracy?: (number | null)[];
  /** null when the run stopped before its end (the test split is evaluated only at the end) */
  testLoss: number | null;
  testAccuracy: number | null;
  samplesPerSecond: number | null;
  seconds: number;
  parameters?: number;
  peakGpuBytes?: number;
  checkpoint?: string;
  task?: 'classification' | 'regression';
  /** regression: MAE, RMSE and R² in the target's units */
  regression?: RegressionReport;
  /** classification: confusion matrix, per-class precision / recall / F1, macro averages, top-k */
  classification?: ClassificationReport;
  /** A run that ended before its last epoch: why, where training stood, and the checkpoint to resume from. */
  stopped?: { reason: string; at: TrainState; checkpoint: string | null };
}

export function adapterSummary(a: AdapterReport): RunMetrics['adapter'] {
  return { name: a.name, description: a.description, isSoftware: a.isSoftware };
}

/** One point of a curve: a metric's value for a series (train, test, MAE, ...) at an epoch. */
export interface CurvePoint {
  epoch: number;
  value: number;
  series: string;
  metric: string;
}

/** Loss (and accuracy, when defined) per epoch, train and validation/test. */
export function historyPoints(history: EpochEvent[]): CurvePoint[] {
  const rows: CurvePoint[] = [];
  for (const h of history) {
    rows.push({ epoch: h.epoch, value: h.loss, series: 'train', metric: 'loss' });
    if (h.valLoss !== undefined) rows.push({ epoch: h.epoch, value: h.valLoss, series: 'test', metric: 'loss' });
    if (h.accuracy !== null) rows.push({ epoch: h.epoch, value: h.accuracy, series: 'train', metric: 'accuracy' });
    if (h.valAccuracy !== undefined && h.valAccuracy !== null) rows.push({ epoch: h.epoch, value: h.valAccuracy, series: 'test', metric: 'accuracy' });
  }
  return rows;
}

/** MAE and RMSE (one panel, in the target's units) and R² (another) of the test split per epoch. */
export function regressionPoints(r: RegressionReport): CurvePoint[] {
  const units = `error (${r.target ?? 'target units'})`;
  return r.validation.flatMap((v) => [
    { epoch: v.epoch, value: v.mae, series: 'MAE', metric: units },
    { epoch: v.epoch, value: v.rmse, series: 'RMSE', metric: units },
    ...(v.r2 === null ? [] : [{ epoch: v.epoch, value: v.r2, series: 'test', metric: 'R²' }]),
  ]);
}

async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** SVG of curves per epoch, one panel per metric (loss, accuracy, errors in target units, R²). */
export async function curvesSvg(points: CurvePoint[], title: string): Promise<string> {
  const metrics = [...new Set(points.map((r) => r.metric))];
  return renderSvg({
    title,
    data: { values: points },
    hconcat: metrics.map((m) => ({
      width: 320,
      height: 220,
      transform: [{ filter: { field: 'metric', equal: m } }],
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', title: m, scale: { zero: false } },
        color: { field: 'series', type: 'nominal', title: null },
      },
    })),
  });
}

/**
 * SVG of a confusion matrix: rows the true class, columns the predicted one, each cell shaded by
 * its share of the row (the recall on the diagonal) and labelled with its count.
 */
export async function confusionSvg(r: ClassificationReport, title: string): Promise<string> {
  const C = r.classNames.length;
  const cells = r.confusion.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, p) => ({ truth: r.classNames[t], predicted: r.classNames[p], count, share: total ? count / total : 0 }));
  });
  const side = Math.max(160, Math.min(640, 36 * C));
  const order = r.classNames;
  return renderSvg({
    title,
    data: { values: cells },
    width: side,
    height: side,
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: order, title: 'predicted', axis: { labelAngle: -45 } },
      y: { field: 'truth', type: 'nominal', sort: order, title: 'true' },
    },
    layer: [
      {
        mark: 'rect',
        encoding: { color: { field: 'share', type: 'quantitative', title: 'share of row', scale: { scheme: 'blues', domain: [0, 1] } } },
      },
      // Counts written in the cells while they stay legible.
      ...(C <= 30
        ? [
            {
              mark: { type: 'text' as const, fontSize: C > 15 ? 8 : 11 },
              encoding: {
                text: { field: 'count', type: 'quantitative' as const },
                color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
              },
            },
          ]
        : []),
    ],
  });
}

/** The pictures beside a metrics file `m.json`: `m.svg` (curves) and `m.confusion.svg`. */
export function picturePaths(metricsPath: string): { curves: string; confusion: string } {
  const base = metricsPath.replace(/\.json$/i, '');
  return { curves: `${base}.svg`, confusion: `${base}.confusion.svg` };
}

/**
 * Write metrics JSON to `path`, the curves beside it when there is a history (plus `extraPoints`,
 * such as the regression errors per epoch), and the confusion matrix for a classifier. Returns
 * the pictures written.
 */
export async function writeMetrics(path: string, metrics: RunMetrics, history: EpochEvent[], extraPoints: CurvePoint[] = []): Promise<string[]> {
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(metrics, null, 2) + '\n'));
  const pictures = picturePaths(path);
  const written: string[] = [];
  const title = `${metrics.model} on ${metrics.dataset}`;
  if (history.length) {
    await writeFileAtomic(pictures.curves, new TextEncoder().encode(await curvesSvg([...historyPoints(history), ...extraPoints], title)));
    written.push(pictures.curves);
  }
  if (metrics.classification) {
    await writeFileAtomic(pictures.confusion, new TextEncoder().encode(await confusionSvg(metrics.classification, `${title}: test confusion matrix`)));
    written.push(pictures.confusion);
  }
  return written;
}
