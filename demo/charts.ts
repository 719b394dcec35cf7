// Live charts of loss and accuracy against the optimizer step: training values as they are read
// back (every few steps), validation values at each epoch end. Chart.js draws them in a worker of
// their own (chart-worker.ts) on the canvases handed over to it; this side keeps the points to send.

export type Point = { x: number; y: number };

/** What the page tells the chart worker. Series 0 is training, 1 validation. */
export type ChartMessage = { kind: 'create'; id: number; canvas: OffscreenCanvas; title: string; yMax?: number; devicePixelRatio: number } | { kind: 'points'; id: number; points: [0 | 1, number, number][] } | { kind: 'clear'; id: number };

let worker: Worker | null = null;
let nextId = 0;

export class MetricChart {
  private readonly id = nextId++;
  private pending: [0 | 1, number, number][] = [];
  private count = 0;

  constructor(canvas: HTMLCanvasElement, title: string, yMax?: number) {
    worker ??= new Worker(new URL('./chart-worker.ts', import.meta.url), { type: 'module' });
    // The canvas's pixels are fixed now, from its laid-out size: the worker cannot follow layout.
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round((canvas.clientWidth || 480) * dpr);
    canvas.height = Math.round((canvas.clientHeight || 260) * dpr);
    const offscreen = canvas.transferControlToOffscreen();
    const msg: ChartMessage = { kind: 'create', id: this.id, canvas: offscreen, title, yMax, devicePixelRatio: dpr };
    worker.postMessage(msg, [offscreen]);
  }

  /** Add a point; sent to be drawn at the next draw(). */
  add(which: 'train' | 'validation', x: number, y: number): void {
    if (!Number.isFinite(y)) return;
    this.pending.push([which === 'train' ? 0 : 1, x, y]);
    this.count++;
  }

  /** Send the points added since the last draw (the worker draws them). */
  draw(): void {
    if (!this.pending.length) return;
    const msg: ChartMessage = { kind: 'points', id: this.id, points: this.pending };
    worker!.postMessage(msg);
    this.pending = [];
  }

  /** Number of points drawn or to draw, over both series. */
  get points(): number {
    return this.count;
  }

  /** Remove every point. */
  clear(): void {
    this.pending = [];
    this.count = 0;
    const msg: ChartMessage = { kind: 'clear', id: this.id };
    worker!.postMessage(msg);
  }
}
