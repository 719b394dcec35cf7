// The charts' own worker: Chart.js draws the loss and accuracy charts on canvases the page handed
// over (OffscreenCanvas), so that drawing them, the page's costliest drawing, never takes a turn
// of the page's main thread. The page sends new points; each message is drawn once.
import { Chart, Legend, LineController, LineElement, LinearScale, PointElement, Title, Tooltip, type ChartDataset } from 'chart.js';
import type { ChartMessage, Point } from './charts.ts';

Chart.register(LineController, LineElement, PointElement, LinearScale, Legend, Title, Tooltip);

const charts = new Map<number, Chart<'line', Point[]>>();

function create(m: Extract<ChartMessage, { kind: 'create' }>): void {
  const series = (label: string, color: string, points: boolean): ChartDataset<'line', Point[]> => ({
    label,
    data: [],
    borderColor: color,
    backgroundColor: color,
    borderWidth: 2,
    pointRadius: points ? 3 : 0,
    tension: 0.2,
  });
  const chart = new Chart<'line', Point[]>(m.canvas as unknown as HTMLCanvasElement, {
    type: 'line',
    data: { datasets: [series('train', '#2f6fde', false), series('validation', '#e0662b', true)] },
    options: {
      animation: false,
      // A worker has no layout to follow: the page gave the canvas its size in pixels.
      responsive: false,
      devicePixelRatio: m.devicePixelRatio,
      parsing: false,
      normalized: true,
      scales: {
        x: { type: 'linear', title: { display: true, text: 'step' }, min: 0 },
        y: { type: 'linear', min: 0, max: m.yMax, beginAtZero: true },
      },
      plugins: { title: { display: true, text: m.title }, legend: { position: 'bottom' } },
    },
  });
  charts.set(m.id, chart);
}

self.onmessage = (ev: MessageEvent<ChartMessage>) => {
  const m = ev.data;
  if (m.kind === 'create') return create(m);
  const chart = charts.get(m.id);
  if (!chart) return;
  if (m.kind === 'clear') for (const d of chart.data.datasets) d.data = [];
  else for (const [which, x, y] of m.points) chart.data.datasets[which].data.push({ x, y });
  chart.update('none');
};
