// What a run leaves behind: the metrics JSON (written atomically, so a failed run never leaves a
// half-written file over a previous one), a picture of the curves beside it (loss and accuracy;
// for regression also the errors in the target's units and R² per epoch), for a classifier
// the confusion matrix as a picture, and with --stats-every the per-layer statistics over time.
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { AdapterReport } from '../gpu/device.ts';
import { writeFileAtomic } from '../train/atomic.ts';
import type { ClassificationReport, RegressionMetrics } from '../train/metrics.ts';
import { STATS_BANDS, type StatsSeries, type StatsWarning } from '../train/stats-series.ts';
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
  /** --stats-every: per-layer statistics over time, and the warnings they raised */
  stats?: StatsReport;
}

/** Per-layer statistics of a run (src/train/stats-series.ts), as the metrics JSON holds them. */
export interface StatsReport extends StatsSeries {
  /** Steps between snapshots. */
  every: number;
  /** Histogram bins per tensor. */
  bins: number;
  warnings: StatsWarning[];
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

/** One point of a statistics panel: a parameter's or activation's figure at a step. */
export interface StatsPoint {
  step: number;
  value: number;
  name: string;
  panel: string;
}

/** Panels of the statistics picture, in order: whose lines they hold, and whether their y axis is in decades. */
const STATS_PANELS: { panel: string; names: string; decades: boolean }[] = [
  { panel: 'weight norm', names: 'parameter', decades: false },
  { panel: 'gradient norm', names: 'parameter', decades: true },
  { panel: 'update ratio ||Δw||/||w||', names: 'weight', decades: true },
  { panel: 'dead fraction (outputs <= 0)', names: 'activation', decades: false },
];

/**
 * A y axis in decades that still shows an exact zero (a dead layer's gradient, a weight that does
 * not move): symlog, linear below the lowest decade drawn, ticks at 0 and at each power of ten.
 */
function decadeAxis(values: number[]): { scale: Record<string, unknown>; axis: Record<string, unknown> } {
  const positive = values.filter((v) => v > 0);
  const lo = Math.floor(Math.log10(positive.length ? Math.min(...positive) : 1e-6));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(positive.length ? Math.max(...positive) : 1)));
  const ticks = Array.from({ length: hi - lo + 1 }, (_, i) => Number(`1e${lo + i}`));
  return {
    scale: { type: 'symlog', constant: Number(`1e${lo - 1}`), domain: [0, ticks[ticks.length - 1]] },
    axis: { values: [0, ...ticks], labelExpr: "datum.value === 0 ? '0' : format(datum.value, '.0e')" },
  };
}

/** The points of the statistics picture: norms per parameter, update ratios per weight, dead shares per activation. */
export function statsPoints(s: StatsSeries): StatsPoint[] {
  const rows: StatsPoint[] = [];
  const [weightNorm, gradNorm, ratio, dead] = STATS_PANELS.map((p) => p.panel);
  s.steps.forEach((step, i) => {
    for (const p of s.params) {
      rows.push({ step, value: p.value.norm[i], name: p.name, panel: weightNorm });
      rows.push({ step, value: p.grad.norm[i], name: p.name, panel: gradNorm });
      const r = p.updateRatio[i];
      if (p.decay && r !== null) rows.push({ step, value: r, name: p.name, panel: ratio });
    }
    for (const a of s.activations) {
      const kind = a.kind === 'relu' ? 'ReLU' : 'LeakyReLU';
      rows.push({ step, value: a.deadFraction[i], name: a.producer === a.name ? `${a.name} (${kind})` : `${a.name} (${kind} after ${a.producer})`, panel: dead });
    }
  });
  return rows.filter((r) => Number.isFinite(r.value));
}

/**
 * SVG of per-layer statistics over training steps, one panel each: weight norms, gradient norms,
 * the update ratio of each weight (with the sane band 1e-4..1e-1 drawn as dashed rules), and the
 * dead share of each ReLU-like activation. Lines per parameter or activation, named in a legend.
 */
export async function statsSvg(points: StatsPoint[], title: string): Promise<string> {
  const [lo, hi] = STATS_BANDS.updateRatio;
  const panels = STATS_PANELS.filter((p) => points.some((r) => r.panel === p.panel));
  return renderSvg({
    title,
    data: { values: points },
    columns: 2,
    concat: panels.map((p) => {
      const values = points.filter((r) => r.panel === p.panel).map((r) => r.value);
      // The update ratio's axis always takes in the sane band, drawn over it.
      const y = p.decades ? decadeAxis(p.panel.startsWith('update ratio') ? [...values, lo, hi] : values) : { scale: p.panel.startsWith('dead') ? { domain: [0, 1] } : { zero: false }, axis: {} };
      const line = {
        transform: [{ filter: { field: 'panel', equal: p.panel } }],
        mark: { type: 'line' as const, point: true },
        encoding: {
          x: { field: 'step', type: 'quantitative' as const, title: 'step' },
          y: { field: 'value', type: 'quantitative' as const, title: p.panel, scale: y.scale, axis: y.axis },
          color: { field: 'name', type: 'nominal' as const, title: p.names, legend: { labelLimit: 360 } },
        },
      };
      if (!p.panel.startsWith('update ratio')) return { width: 320, height: 220, ...line };
      const band = { data: { values: [{ bound: lo }, { bound: hi }] }, mark: { type: 'rule' as const, strokeDash: [4, 4], color: 'gray' }, encoding: { y: { field: 'bound', type: 'quantitative' as const } } };
      return { width: 320, height: 220, layer: [line, band] };
    }),
    resolve: { scale: { color: 'independent', y: 'independent' } },
  } as vl.TopLevelSpec);
}

/** The pictures beside a metrics file `m.json`: `m.svg` (curves), `m.confusion.svg` and `m.stats.svg`. */
export function picturePaths(metricsPath: string): { curves: string; confusion: string; stats: string } {
  const base = metricsPath.replace(/\.json$/i, '');
  return { curves: `${base}.svg`, confusion: `${base}.confusion.svg`, stats: `${base}.stats.svg` };
}

/**
 * Write metrics JSON to `path`, the curves beside it when there is a history (plus `extraPoints`,
 * such as the regression errors per epoch), and the confusion matrix for a classifier. Returns
 * the pictures written.
 */
export async function writeMetrics(path: string, metrics: RunMetrics, history: EpochEvent[], extraPoints: CurvePoint[] = []): Promise<string[]> {
  await writeFileAtomic(path, new TextEncoder().encode(`${JSON.stringify(metrics, null, 2)}\n`));
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
  if (metrics.stats?.steps.length) {
    await writeFileAtomic(pictures.stats, new TextEncoder().encode(await statsSvg(statsPoints(metrics.stats), `${title}: per-layer statistics every ${metrics.stats.every} steps`)));
    written.push(pictures.stats);
  }
  return written;
}
