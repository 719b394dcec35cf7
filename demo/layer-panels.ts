// The page's per-layer panels: for each layer with parameters, heat strips of its weights', biases'
// and gradients' histograms over time (one column per statistics snapshot, oldest left, values
// rebinned onto one axis: high values at the top), small line charts of the parameters' norms, their
// gradients' norms, the update ratio ||Δw||/||w|| (log scale, the sane band shaded) and the dead
// share of the ReLU after the layer, and the latest figures in numbers. Each panel is drawn on its
// own small canvases, a canvas per short task (main.ts schedules them).
import { chartScale, chartX, chartY, figure, heatStrip, KEEP, type LayerStatsBook, type LayerTrack } from './layer-stats.ts';
import { STATS_BANDS, type StatsWarning } from '../src/train/stats-series.ts';

/** Heat strip rows (value bins on the page). */
export const STRIP_ROWS = 40;
export const LINE_W = 100;
export const LINE_H = 44;
export const LINE_PAD = 4;
/** Colours of the heat strips at their densest: values blue, gradients orange. */
export const STRIP_COLOURS = { value: '#2f6fde', grad: '#d9480f' } as const;
/** One colour per parameter of a layer in its line charts (weight, bias, ...). */
export const SERIES_COLOURS = ['#2f6fde', '#e0662b', '#23894a', '#8e44ad', '#b8860b', '#444444'];

const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function canvas(w: number, h: number): HTMLCanvasElement {
  const c = el('canvas');
  c.width = w;
  c.height = h;
  return c;
}

type LineKind = 'norm' | 'grad-norm' | 'update-ratio' | 'dead';

interface Panel {
  root: HTMLElement;
  strips: { param: string; of: 'value' | 'grad'; canvas: HTMLCanvasElement; range: HTMLElement }[];
  lines: { kind: LineKind; canvas: HTMLCanvasElement; range: HTMLElement }[];
  cells: Map<string, HTMLElement>;
  dead: HTMLElement | null;
  /** The step the panel shows (null: not drawn yet). */
  step: number | null;
}

export class LayerPanels {
  private panels: (Panel | null)[] = [];
  private shape = -1;

  constructor(
    private readonly host: HTMLElement,
    private readonly warningsList: HTMLElement,
    private readonly book: LayerStatsBook,
  ) {}

  get count(): number {
    return this.panels.length;
  }

  /** The step each panel shows (null where not drawn yet). */
  get drawnSteps(): (number | null)[] {
    return this.panels.map((p) => p?.step ?? null);
  }

  /**
   * Start over if the book's layers changed (a new model); true when they did. The panels are
   * made by their first piece of drawing (see pieces), one per task.
   */
  sync(): boolean {
    if (this.shape === this.book.shape) return false;
    this.shape = this.book.shape;
    this.panels = this.book.layers.map(() => null);
    this.host.replaceChildren();
    return true;
  }

  private make(l: LayerTrack): Panel {
    const root = el('section', 'layer');
    root.dataset.layer = l.name;
    const head = el('h3', undefined, l.name);
    const dead = l.activation === null ? null : el('span', 'dead');
    if (dead) head.append(' ', dead);
    root.append(head);
    const strips: Panel['strips'] = [];
    const stripRows: HTMLElement[] = [];
    for (const p of l.params) {
      const stripRow = el('div', 'strips');
      stripRows.push(stripRow);
      for (const of of ['value', 'grad'] as const) {
        const fig = el('figure', 'strip');
        fig.dataset.param = p.name;
        fig.dataset.of = of;
        const c = canvas(KEEP, STRIP_ROWS);
        c.dataset.colour = STRIP_COLOURS[of];
        const range = el('span', 'range');
        fig.append(el('figcaption', undefined, `${of === 'value' ? p.kind : `∇ ${p.kind}`} [${p.shape.join('×')}]`), c, range);
        stripRow.append(fig);
        strips.push({ param: p.name, of, canvas: c, range });
      }
    }
    const lines: Panel['lines'] = [];
    const lineRow = el('div', 'lines');
    const titles: Record<LineKind, string> = { norm: '‖w‖', 'grad-norm': '‖∇w‖', 'update-ratio': '‖Δw‖/‖w‖ (log)', dead: `dead share of ${l.activation}` };
    for (const kind of ['norm', 'grad-norm', 'update-ratio', ...(l.activation ? ['dead' as const] : [])] as LineKind[]) {
      const fig = el('figure', 'line');
      fig.dataset.chart = kind;
      const c = canvas(LINE_W, LINE_H);
      const range = el('span', 'range');
      fig.append(el('figcaption', undefined, titles[kind]), c, range);
      lineRow.append(fig);
      lines.push({ kind, canvas: c, range });
    }
    const table = el('table', 'figures');
    const hrow = el('tr');
    for (const h of ['', '‖w‖', '‖∇w‖', '‖Δw‖/‖w‖']) hrow.append(el('th', undefined, h));
    table.append(el('thead'), el('tbody'));
    table.tHead!.append(hrow);
    const cells = new Map<string, HTMLElement>();
    l.params.forEach((p, i) => {
      const tr = el('tr');
      const name = el('td', 'name', p.kind);
      name.style.setProperty('--swatch', SERIES_COLOURS[i % SERIES_COLOURS.length]);
      tr.append(name);
      for (const field of ['norm', 'grad-norm', 'update-ratio']) {
        const td = el('td');
        td.dataset.param = p.name;
        td.dataset.field = field;
        cells.set(`${p.name}|${field}`, td);
        tr.append(td);
      }
      table.tBodies[0].append(tr);
    });
    root.append(...stripRows, lineRow, table);
    return { root, strips, lines, cells, dead, step: null };
  }

  /**
   * Pieces of drawing panel `i`, each a short task's work: one per heat strip, one per line chart,
   * and last the figures (which mark the panel as showing the book's last step).
   */
  pieces(i: number): number {
    const l = this.book.layers[i];
    return l ? 1 + 2 * l.params.length + (l.activation ? 4 : 3) + 1 : 0;
  }

  /** Draw piece `k` of panel `i` (see pieces) from the book as it is now; piece 0 makes the panel if it is not there yet. */
  drawPiece(i: number, k: number): void {
    const l = this.book.layers[i];
    if (!l || i >= this.panels.length) return;
    if (k === 0) {
      if (this.panels[i]) return;
      const made = this.make(l);
      this.panels[i] = made;
      // In layer order, whichever panels are made already.
      const next = this.panels.slice(i + 1).find((p) => p !== null);
      this.host.insertBefore(made.root, next ? next.root : null);
      return;
    }
    k--;
    const panel = this.panels[i];
    if (!panel || !l.steps.length || panel.root.dataset.layer !== l.name) return;
    if (k < panel.strips.length) this.drawStripOf(panel.strips[k], l);
    else if (k < panel.strips.length + panel.lines.length) this.drawLineOf(panel.lines[k - panel.strips.length], l);
    else this.drawFigures(panel, l);
  }

  /** Make (if need be) and draw all of panel `i` at once. */
  draw(i: number): void {
    for (let k = 0; k < this.pieces(i); k++) this.drawPiece(i, k);
  }

  private drawStripOf(s: Panel['strips'][number], l: LayerTrack): void {
    const t = l.params.find((p) => p.name === s.param)!;
    const { lo, hi } = drawStrip(s.canvas, s.of === 'value' ? t.value : t.grad, STRIP_COLOURS[s.of]);
    s.canvas.dataset.lo = String(lo);
    s.canvas.dataset.hi = String(hi);
    s.canvas.dataset.columns = String(l.steps.length);
    s.range.textContent = `${figure(lo)} … ${figure(hi)}`;
  }

  private drawLineOf(c: Panel['lines'][number], l: LayerTrack): void {
    const series = c.kind === 'dead' ? [l.dead] : l.params.map((p) => (c.kind === 'norm' ? p.norm : c.kind === 'grad-norm' ? p.gradNorm : p.updateRatio));
    const colours = c.kind === 'dead' ? ['#c8322b'] : l.params.map((_, k) => SERIES_COLOURS[k % SERIES_COLOURS.length]);
    const scale = chartScale(series, c.kind === 'update-ratio', c.kind === 'dead' ? [0, 1] : undefined);
    drawLines(c.canvas, l.steps, series, colours, scale, c.kind === 'update-ratio' ? STATS_BANDS.updateRatio : null);
    Object.assign(c.canvas.dataset, { lo: String(scale.lo), hi: String(scale.hi), log: String(scale.log), first: String(l.steps[0]), last: String(l.steps.at(-1)), points: String(l.steps.length) });
    const shown = (v: number) => figure(scale.log ? 10 ** v : v);
    c.range.textContent = `${shown(scale.lo)} … ${shown(scale.hi)}`;
  }

  private drawFigures(panel: Panel, l: LayerTrack): void {
    const k = l.steps.length - 1;
    for (const p of l.params) {
      const put = (field: string, v: number | null) => {
        const td = panel.cells.get(`${p.name}|${field}`)!;
        td.dataset.value = String(v);
        td.textContent = figure(v);
      };
      put('norm', p.norm[k]);
      put('grad-norm', p.gradNorm[k]);
      put('update-ratio', p.updateRatio[k]);
    }
    if (panel.dead) {
      const d = l.dead[k];
      panel.dead.dataset.value = String(d);
      panel.dead.textContent = `${Number.isFinite(d) ? (100 * d).toFixed(1) : '–'}% of ${l.activation}'s outputs ≤ 0`;
      panel.dead.classList.toggle('bad', d >= STATS_BANDS.deadFraction);
    }
    // The step shown: that of the figures, and of every strip and chart drawn with as many columns.
    const drawn = [...panel.strips.map((s) => s.canvas), ...panel.lines.map((c) => c.canvas)];
    const complete = drawn.every((c) => Number(c.dataset.columns ?? c.dataset.points) === l.steps.length && (c.dataset.last === undefined || Number(c.dataset.last) === l.steps[k]));
    panel.root.dataset.step = String(l.steps[k]);
    panel.step = complete ? l.steps[k] : null;
  }

  /** The warnings, newest last, each naming its layer. */
  drawWarnings(warnings: StatsWarning[]): void {
    if (this.warningsList.childElementCount === warnings.length) return;
    this.warningsList.replaceChildren(
      ...warnings.map((w) => {
        const li = el('li', undefined, w.message);
        li.dataset.name = w.name;
        li.dataset.kind = w.kind;
        return li;
      }),
    );
    this.warningsList.hidden = warnings.length === 0;
  }

  clear(): void {
    this.panels = [];
    this.shape = -1;
    this.host.replaceChildren();
    this.warningsList.replaceChildren();
    this.warningsList.hidden = true;
  }
}

/**
 * A canvas's 2D context, drawn by the CPU in the page's process: an accelerated canvas would wait
 * on the GPU process, which on a software adapter is busy training, and its waits make long tasks.
 */
function context(c: HTMLCanvasElement): CanvasRenderingContext2D {
  return c.getContext('2d', { willReadFrequently: true })!;
}

/** A heat strip: one column per histogram, stretched over the width; white where no values are. */
function drawStrip(c: HTMLCanvasElement, hists: LayerTrack['params'][number]['value'], colour: string): { lo: number; hi: number } {
  const ctx = context(c);
  const img = ctx.createImageData(c.width, c.height);
  img.data.fill(255);
  const { columns, lo, hi } = heatStrip(hists, c.height);
  const [r, g, b] = rgb(colour);
  // The snapshots share the strip's width: snapshot j fills pixel columns j·W/n up to (j+1)·W/n.
  for (let x = 0; x < c.width && columns.length; x++) {
    const col = columns[Math.floor((x * columns.length) / c.width)];
    for (let y = 0; y < c.height; y++) {
      const v = col[y];
      if (!(v > 0)) continue;
      // A square root lifts the thin tails into sight; the densest row is the full colour.
      const t = Math.sqrt(v);
      const o = (y * c.width + x) * 4;
      img.data[o] = Math.round(255 + t * (r - 255));
      img.data[o + 1] = Math.round(255 + t * (g - 255));
      img.data[o + 2] = Math.round(255 + t * (b - 255));
    }
  }
  ctx.putImageData(img, 0, 0);
  return { lo, hi };
}

/** A small line chart: one polyline per series, a dot at each series' last point (when it has a value); `band` shaded (log charts). */
function drawLines(c: HTMLCanvasElement, steps: number[], series: (number | null)[][], colours: string[], scale: ReturnType<typeof chartScale>, band: [number, number] | null): void {
  const ctx = context(c);
  const { width: W, height: H } = c;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);
  if (band) {
    const top = Math.max(0, Math.min(H, chartY(band[1], scale, H, LINE_PAD)!));
    const bottom = Math.max(0, Math.min(H, chartY(band[0], scale, H, LINE_PAD)!));
    ctx.fillStyle = '#e3f4e8';
    if (bottom > top) ctx.fillRect(0, top, W, bottom - top);
  }
  const first = steps[0];
  const last = steps[steps.length - 1];
  // Lines first, then the dots on top of every line: a dot shows its series' colour.
  const ends: ([number, number] | null)[] = series.map((s, k) => {
    ctx.strokeStyle = colours[k];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let open = false;
    let end: [number, number] | null = null;
    s.forEach((v, i) => {
      const y = chartY(v, scale, H, LINE_PAD);
      end = null;
      if (y === null) {
        open = false;
        return;
      }
      const x = chartX(steps[i], first, last, W, LINE_PAD);
      if (open) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      open = true;
      end = [x, y];
    });
    ctx.stroke();
    return end;
  });
  ends.forEach((end, k) => {
    if (!end) return;
    ctx.fillStyle = colours[k];
    ctx.beginPath();
    ctx.arc(end[0], end[1], 2.5, 0, 2 * Math.PI);
    ctx.fill();
  });
}
