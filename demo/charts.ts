// Live charts of loss and accuracy against the optimizer step: training values as they are read
// back (every few steps), validation values at each epoch end.
import { Chart, Legend, LineController, LineElement, LinearScale, PointElement, Title, Tooltip, type ChartDataset } from 'chart.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, Legend, Title, Tooltip);

type Point = { x: number; y: number };

export class MetricChart {
  private chart: Chart<'line', Point[]>;

  constructor(canvas: HTMLCanvasElement, title: string, yMax?: number) {
    const series = (label: string, color: string, points: boolean): ChartDataset<'line', Point[]> => ({
      label,
      data: [],
      borderColor: color,
      backgroundColor: color,
      borderWidth: 2,
      pointRadius: points ? 3 : 0,
      tension: 0.2,
    });
    this.chart = new Chart<'line', Point[]>(canvas, {
      type: 'line',
      data: { datasets: [series('train', '#2f6fde', false), series('validation', '#e0662b', true)] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        scales: {
          x: { type: 'linear', title: { display: true, text: 'step' }, min: 0 },
          y: { type: 'linear', min: 0, max: yMax, beginAtZero: true },
        },
        plugins: { title: { display: true, text: title }, legend: { position: 'bottom' } },
      },
    });
  }

  /** Add a point; drawn at the next draw() (drawing is the costly part: the page does it once per frame). */
  add(which: 'train' | 'validation', x: number, y: number): void {
    if (!Number.isFinite(y)) return;
    this.chart.data.datasets[which === 'train' ? 0 : 1].data.push({ x, y });
  }

  draw(): void {
    this.chart.update('none');
  }

  /** Number of points drawn, over both series. */
  get points(): number {
    return this.chart.data.datasets.reduce((n, d) => n + d.data.length, 0);
  }

  /** Remove every point; drawn at the next draw(). */
  clear(): void {
    for (const d of this.chart.data.datasets) d.data = [];
  }
}
