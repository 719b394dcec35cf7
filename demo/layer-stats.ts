// What the page keeps of the per-layer statistics the training worker sends (src/train/stats.ts
// records them on the GPU every few steps): the recent snapshots grouped by layer, the warnings
// they raise (StatsWatch, the CLI's rules), and the arithmetic of the panels that draw them
// (layer-panels.ts): histograms rebinned onto one value axis for a heat strip, and the scales of the
// small line charts. Plain data and numbers, no DOM: tested without a browser.
import { StatsWatch, type Histogram, type StatsSnapshot, type StatsWarning } from '../src/train/stats-series.ts';

/** Snapshots kept (and drawn) per layer: the heat strips' columns. */
export const KEEP = 120;

/** One parameter tensor over the kept snapshots (index-aligned with its layer's `steps`). */
export interface ParamTrack {
  /** Module path: `layers.1.weight`. */
  name: string;
  /** Its last path segment: `weight`, `bias`. */
  kind: string;
  shape: number[];
  decay: boolean;
  value: Histogram[];
  grad: Histogram[];
  norm: number[];
  gradNorm: number[];
  updateRatio: (number | null)[];
}

export interface LayerTrack {
  /** Module path of the layer: the parameters' names without their last segment. */
  name: string;
  steps: number[];
  params: ParamTrack[];
  /** The ReLU-like activation computed right after this layer (its producer), if any. */
  activation: string | null;
  /** Its share of outputs <= 0, per kept snapshot (empty without an activation). */
  dead: number[];
}

/** The latest figures of a layer, as the page shows them in numbers. */
export interface LayerLast {
  name: string;
  step: number;
  params: { name: string; shape: number[]; norm: number; gradNorm: number; updateRatio: number | null }[];
  activation: string | null;
  deadFraction: number | null;
}

/** `layers.1.weight` -> [`layers.1`, `weight`]; a name without a dot is its own layer. */
export function splitParamName(name: string): [string, string] {
  const i = name.lastIndexOf('.');
  return i < 0 ? [name, name] : [name.slice(0, i), name.slice(i + 1)];
}

export class LayerStatsBook {
  layers: LayerTrack[] = [];
  /** Snapshots received since the last clear. */
  received = 0;
  lastStep: number | null = null;
  private watch = new StatsWatch();
  /** Bumped when the set of layers changes (the panels are then built again). */
  shape = 0;

  get warnings(): StatsWarning[] {
    return this.watch.warnings;
  }

  clear(): void {
    this.layers = [];
    this.received = 0;
    this.lastStep = null;
    this.watch = new StatsWatch();
    this.shape++;
  }

  /** Take a snapshot; returns the warnings it raised. A step at or before the last one (training resumed from an earlier copy) replaces what followed it. */
  add(s: StatsSnapshot): StatsWarning[] {
    const names = s.params.map((p) => p.name).join('|');
    const known = this.layers.flatMap((l) => l.params.map((p) => p.name)).join('|');
    if (names !== known) this.build(s);
    if (this.lastStep !== null && s.step <= this.lastStep) {
      for (const l of this.layers) {
        const keep = l.steps.findIndex((t) => t >= s.step);
        if (keep >= 0) this.truncate(l, keep);
      }
    }
    const byName = new Map(s.params.map((p) => [p.name, p]));
    const deadBy = new Map(s.activations.map((a) => [a.name, a.deadFraction]));
    for (const l of this.layers) {
      l.steps.push(s.step);
      for (const t of l.params) {
        const p = byName.get(t.name)!;
        t.value.push(p.value.histogram);
        t.grad.push(p.grad.histogram);
        t.norm.push(p.value.norm);
        t.gradNorm.push(p.grad.norm);
        t.updateRatio.push(p.update.ratio);
      }
      if (l.activation !== null) l.dead.push(deadBy.get(l.activation) ?? NaN);
      if (l.steps.length > KEEP) this.drop(l, l.steps.length - KEEP);
    }
    this.received++;
    this.lastStep = s.step;
    return this.watch.check(s);
  }

  /** Layers in the order of their first parameter; each ReLU-like activation goes to the layer that produces it. */
  private build(s: StatsSnapshot): void {
    const layers = new Map<string, LayerTrack>();
    for (const p of s.params) {
      const [layer, kind] = splitParamName(p.name);
      let l = layers.get(layer);
      if (!l) {
        l = { name: layer, steps: [], params: [], activation: null, dead: [] };
        layers.set(layer, l);
      }
      l.params.push({ name: p.name, kind, shape: [...p.shape], decay: p.decay, value: [], grad: [], norm: [], gradNorm: [], updateRatio: [] });
    }
    for (const a of s.activations) {
      const l = layers.get(a.producer);
      if (l && l.activation === null) l.activation = a.name;
    }
    this.layers = [...layers.values()];
    this.shape++;
  }

  private truncate(l: LayerTrack, from: number): void {
    l.steps.length = from;
    l.dead.length = Math.min(l.dead.length, from);
    for (const t of l.params) for (const a of [t.value, t.grad, t.norm, t.gradNorm, t.updateRatio]) a.length = from;
  }

  private drop(l: LayerTrack, n: number): void {
    l.steps.splice(0, n);
    l.dead.splice(0, n);
    for (const t of l.params) for (const a of [t.value, t.grad, t.norm, t.gradNorm, t.updateRatio]) a.splice(0, n);
  }

  last(): LayerLast[] {
    return this.layers.map((l) => {
      const i = l.steps.length - 1;
      return {
        name: l.name,
        step: l.steps[i],
        params: l.params.map((t) => ({ name: t.name, shape: t.shape, norm: t.norm[i], gradNorm: t.gradNorm[i], updateRatio: t.updateRatio[i] })),
        activation: l.activation,
        deadFraction: l.activation === null ? null : l.dead[i],
      };
    });
  }
}

/** The value range a set of histograms spans (finite ends only); [0, 0] when none. */
export function histRange(hists: Histogram[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const h of hists) {
    if (Number.isFinite(h.lo)) lo = Math.min(lo, h.lo);
    if (Number.isFinite(h.hi)) hi = Math.max(hi, h.hi);
  }
  return lo <= hi ? [lo, hi] : [0, 0];
}

/**
 * A histogram (equal bins over [h.lo, h.hi]) redistributed over `rows` equal rows spanning
 * [lo, hi] (row 0 at lo): each bin's count is shared among the rows it overlaps, in proportion. A
 * histogram of zero width (every value the same) puts its counts in the row of that value; a
 * range of zero width puts everything in the middle row.
 */
export function rebin(h: Histogram, rows: number, lo: number, hi: number): Float64Array {
  const out = new Float64Array(rows);
  const n = h.counts.length;
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (n === 0 || total === 0 || !Number.isFinite(h.lo) || !Number.isFinite(h.hi)) return out;
  const span = hi - lo;
  if (!(span > 0)) {
    out[Math.floor(rows / 2)] = total;
    return out;
  }
  const rowOf = (v: number) => Math.min(rows - 1, Math.max(0, Math.floor(((v - lo) / span) * rows)));
  const bw = (h.hi - h.lo) / n;
  if (!(bw > 0)) {
    out[rowOf(h.lo)] = total;
    return out;
  }
  const rh = span / rows;
  for (let b = 0; b < n; b++) {
    const c = h.counts[b];
    if (!c) continue;
    const a0 = h.lo + b * bw;
    const a1 = a0 + bw;
    const r0 = rowOf(a0);
    const r1 = rowOf(a1);
    if (r0 === r1) {
      out[r0] += c;
      continue;
    }
    for (let r = r0; r <= r1; r++) {
      const overlap = Math.min(a1, lo + (r + 1) * rh) - Math.max(a0, lo + r * rh);
      if (overlap > 0) out[r] += (c * overlap) / bw;
    }
  }
  return out;
}

/**
 * A heat strip's intensities: one column per histogram (oldest left), `rows` rows (row 0 at the
 * top: the highest values), each column scaled so that its densest row is 1. Also the value
 * range of the rows.
 */
export function heatStrip(hists: Histogram[], rows: number): { columns: Float64Array[]; lo: number; hi: number } {
  const [lo, hi] = histRange(hists);
  const columns = hists.map((h) => {
    const col = rebin(h, rows, lo, hi).reverse();
    const top = col.reduce((m, v) => Math.max(m, v), 0);
    if (top > 0) for (let r = 0; r < rows; r++) col[r] /= top;
    return col;
  });
  return { columns, lo, hi };
}

/** The y scale of a small line chart: the range of its values (log10 of the positive ones when `log`), never empty. */
export function chartScale(series: (number | null)[][], log: boolean, fixed?: [number, number]): { lo: number; hi: number; log: boolean } {
  if (fixed) return { lo: fixed[0], hi: fixed[1], log };
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const v of s) {
      if (v === null || !Number.isFinite(v) || (log && v <= 0)) continue;
      const y = log ? Math.log10(v) : v;
      lo = Math.min(lo, y);
      hi = Math.max(hi, y);
    }
  }
  if (!(lo <= hi)) return { lo: log ? -1 : 0, hi: log ? 1 : 1, log };
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) {
    const pad = log ? 0.5 : Math.max(Math.abs(hi) * 0.1, 1e-6);
    return { lo: lo - pad, hi: hi + pad, log };
  }
  return { lo, hi, log };
}

/** Where a value goes on a chart `height` pixels tall with `pad` pixels above and below (null: not drawn). */
export function chartY(v: number | null, scale: { lo: number; hi: number; log: boolean }, height: number, pad: number): number | null {
  if (v === null || !Number.isFinite(v) || (scale.log && v <= 0)) return null;
  const y = scale.log ? Math.log10(v) : v;
  return height - pad - ((y - scale.lo) / (scale.hi - scale.lo)) * (height - 2 * pad);
}

/** Where a step goes on a chart `width` pixels wide: the first kept step at the left pad, the last at the right. */
export function chartX(step: number, first: number, last: number, width: number, pad: number): number {
  return last > first ? pad + ((step - first) / (last - first)) * (width - 2 * pad) : width - pad;
}

/** A figure as the panels print it: three significant digits, exponent form when very small or large. */
export function figure(v: number | null): string {
  if (v === null || Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '-∞';
  if (v === 0) return '0';
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}
