// The page's per-layer statistics without a browser (demo/layer-stats.ts): snapshots grouped by
// layer with their ReLU, the latest figures, a dead layer's warning, resumed steps replacing what
// followed them, histograms rebinned onto one axis for the heat strips, and the charts' scales.
import { describe, expect, it } from 'vitest';
import { chartScale, chartX, chartY, figure, heatStrip, KEEP, LayerStatsBook, rebin } from '../demo/layer-stats.ts';
import type { StatsSnapshot, TensorSummary } from '../src/train/stats-series.ts';

function summary(norm: number, lo: number, hi: number, counts: number[]): TensorSummary {
  const n = counts.reduce((a, b) => a + b, 0);
  return { count: n, mean: (lo + hi) / 2, std: 1, min: lo, max: hi, norm, nonFinite: 0, histogram: { lo, hi, counts } };
}

/** A two-layer MLP's snapshot: layers.1 (Dense) -> layers.2 (ReLU) -> layers.3 (Dense). */
function snapshot(step: number, dead: number, scale = 1): StatsSnapshot {
  const p = (name: string, shape: number[], decay: boolean, norm: number) => ({
    name,
    shape,
    decay,
    value: summary(norm * scale, -scale, scale, [1, 2, 4, 2]),
    grad: dead >= 1 && name.startsWith('layers.1') ? summary(0, 0, 0, [8, 0, 0, 0]) : summary(norm / 100, -0.01, 0.01, [2, 2, 2, 2]),
    update: { norm: norm * 1e-3, ratio: decay ? 1e-3 * (1 + step / 10) : null },
  });
  return {
    step,
    batch: 8,
    params: [p('layers.1.weight', [4, 3], true, 2), p('layers.1.bias', [4], false, 0.5), p('layers.3.weight', [2, 4], true, 1.5), p('layers.3.bias', [2], false, 0.1)],
    activations: [{ name: 'layers.2', producer: 'layers.1', kind: 'relu', shape: [4], deadFraction: dead, mean: 0, nonFinite: 0 }],
  };
}

describe('demo: per-layer statistics of the page', () => {
  it('groups parameters by layer, attaches each ReLU to its producer, keeps the latest figures and names a dead layer', () => {
    const book = new LayerStatsBook();
    book.add(snapshot(0, 0.3));
    book.add(snapshot(10, 0.5, 2));
    expect(book.layers.map((l) => [l.name, l.params.map((p) => p.kind), l.activation])).toEqual([
      ['layers.1', ['weight', 'bias'], 'layers.2'],
      ['layers.3', ['weight', 'bias'], null],
    ]);
    const last = book.last();
    expect(last[0]).toEqual({
      name: 'layers.1',
      step: 10,
      params: [
        { name: 'layers.1.weight', shape: [4, 3], norm: 4, gradNorm: 0.02, updateRatio: 2e-3 },
        { name: 'layers.1.bias', shape: [4], norm: 1, gradNorm: 0.005, updateRatio: null },
      ],
      activation: 'layers.2',
      deadFraction: 0.5,
    });
    expect(last[1].deadFraction).toBeNull();
    expect(book.layers[0].steps).toEqual([0, 10]);
    expect(book.layers[0].params[0].norm).toEqual([2, 4]);
    expect(book.warnings).toEqual([]);

    const warned = book.add(snapshot(20, 1));
    expect(warned.map((w) => `${w.name} ${w.kind}`)).toEqual(['layers.1.weight zero-gradient', 'layers.1.bias zero-gradient', 'layers.2 dead-activation']);
    expect(warned[2].message).toContain("layers.2: 100% of this ReLU's outputs (after layers.1) are zero: the layer is dead");
    // Training resumed from an earlier copy: step 10 again replaces 10 and 20.
    book.add(snapshot(10, 0.2));
    expect(book.layers[0].steps).toEqual([0, 10]);
    expect(book.layers[0].dead).toEqual([0.3, 0.2]);
    expect(book.received).toBe(4);
  });

  it('keeps the last KEEP snapshots per layer', () => {
    const book = new LayerStatsBook();
    for (let s = 0; s < KEEP + 5; s++) book.add(snapshot(s * 5, 0.1));
    expect(book.layers[1].steps).toHaveLength(KEEP);
    expect(book.layers[1].steps[0]).toBe(25);
    expect(book.layers[1].params[0].value).toHaveLength(KEEP);
    expect(book.layers[0].dead).toHaveLength(KEEP);
  });

  it('rebins histograms onto one axis: counts kept, shared in proportion to overlap', () => {
    // Bins [0,1), [1,2) onto 4 rows over [0, 2): each bin lands in two rows, half each; over [0, 4), one row each.
    expect([...rebin({ lo: 0, hi: 2, counts: [4, 2] }, 4, 0, 2)]).toEqual([2, 2, 1, 1]);
    expect([...rebin({ lo: 0, hi: 2, counts: [4, 2] }, 4, 0, 4)]).toEqual([4, 2, 0, 0]);
    // One bin [0, 2) onto rows of width 1.5 over [-1, 5): rows [-1, .5) get .5/2 of it, [.5, 2) 1.5/2.
    const r = rebin({ lo: 0, hi: 2, counts: [8] }, 4, -1, 5);
    expect([...r].map((v) => +v.toFixed(6))).toEqual([2, 6, 0, 0]);
    // Zero-width histogram: all in the row of its value; zero-width range: the middle row.
    expect([...rebin({ lo: 3, hi: 3, counts: [5, 0] }, 4, 0, 4)]).toEqual([0, 0, 0, 5]);
    expect([...rebin({ lo: 0, hi: 0, counts: [5] }, 5, 0, 0)]).toEqual([0, 0, 5, 0, 0]);
  });

  it('makes heat strip columns over the shared range, the densest row of each 1, high values at the top', () => {
    const { columns, lo, hi } = heatStrip(
      [
        { lo: 0, hi: 1, counts: [3, 1] },
        { lo: 1, hi: 2, counts: [0, 2] },
      ],
      4,
    );
    expect([lo, hi]).toEqual([0, 2]);
    expect([...columns[0]]).toEqual([0, 0, 1 / 3, 1]);
    expect([...columns[1]]).toEqual([1, 0, 0, 0]);
  });

  it('scales the small charts: linear or log10, never empty, and maps values and steps to pixels', () => {
    expect(
      chartScale(
        [
          [1, 3],
          [2, null],
        ],
        false,
      ),
    ).toEqual({ lo: 1, hi: 3, log: false });
    expect(chartScale([[1e-3, 1e-1, 0, null]], true)).toEqual({ lo: -3, hi: -1, log: true });
    const flat = chartScale([[2, 2]], false);
    expect(flat.lo).toBeLessThan(2);
    expect(flat.hi).toBeGreaterThan(2);
    expect(chartScale([[null]], true)).toEqual({ lo: -1, hi: 1, log: true });
    const s = { lo: -3, hi: -1, log: true };
    expect(chartY(1e-1, s, 56, 4)).toBe(4);
    expect(chartY(1e-3, s, 56, 4)).toBe(52);
    expect(chartY(1e-2, s, 56, 4)).toBeCloseTo(28, 10);
    expect(chartY(0, s, 56, 4)).toBeNull();
    expect(chartX(10, 0, 20, 108, 4)).toBe(54);
    expect(chartX(7, 7, 7, 108, 4)).toBe(104);
    expect([figure(12.3456), figure(2.5e-5), figure(null), figure(0), figure(Infinity)]).toEqual(['12.3', '2.50e-5', '–', '0', '∞']);
  });
});
