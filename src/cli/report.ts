// What a run leaves behind: the metrics JSON (written atomically, so a failed run never leaves a
// half-written file over a previous one) and a picture of the loss and accuracy curves beside it.
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { AdapterReport } from '../gpu/device.ts';
import { writeFileAtomic } from '../train/atomic.ts';
import type { EpochEvent } from '../train/trainer.ts';

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
  testLoss: number;
  testAccuracy: number | null;
  samplesPerSecond: number | null;
  seconds: number;
  parameters?: number;
  peakGpuBytes?: number;
  checkpoint?: string;
}

export function adapterSummary(a: AdapterReport): RunMetrics['adapter'] {
  return { name: a.name, description: a.description, isSoftware: a.isSoftware };
}

/** SVG of loss (and accuracy, when defined) per epoch, train and validation/test. */
export async function curvesSvg(history: EpochEvent[], title: string): Promise<string> {
  const rows: { epoch: number; value: number; series: string; metric: string }[] = [];
  for (const h of history) {
    rows.push({ epoch: h.epoch, value: h.loss, series: 'train', metric: 'loss' });
    if (h.valLoss !== undefined) rows.push({ epoch: h.epoch, value: h.valLoss, series: 'test', metric: 'loss' });
    if (h.accuracy !== null) rows.push({ epoch: h.epoch, value: h.accuracy, series: 'train', metric: 'accuracy' });
    if (h.valAccuracy !== undefined && h.valAccuracy !== null) rows.push({ epoch: h.epoch, value: h.valAccuracy, series: 'test', metric: 'accuracy' });
  }
  const metrics = [...new Set(rows.map((r) => r.metric))];
  const spec: vl.TopLevelSpec = {
    title,
    data: { values: rows },
    hconcat: metrics.map((m) => ({
      width: 320,
      height: 220,
      transform: [{ filter: `datum.metric === '${m}'` }],
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', title: m, scale: { zero: false } },
        color: { field: 'series', type: 'nominal', title: null },
      },
    })),
  };
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Write metrics JSON to `path` and the curves to `<path without .json>.svg`; returns the SVG path. */
export async function writeMetrics(path: string, metrics: RunMetrics, history: EpochEvent[]): Promise<string | null> {
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(metrics, null, 2) + '\n'));
  if (!history.length) return null;
  const svgPath = path.replace(/\.json$/i, '') + '.svg';
  await writeFileAtomic(svgPath, new TextEncoder().encode(await curvesSvg(history, `${metrics.model} on ${metrics.dataset}`)));
  return svgPath;
}
