// End-to-end test of the browser demo: build it with Vite, serve demo/dist from 127.0.0.1 with a
// small static server, and drive it in headless Chromium on its WebGPU adapter (SwiftShader on
// machines without a GPU) through the page's own controls. Page state is read from the
// read-only `window.__demo` snapshot, not scraped from text.
import * as ort from 'onnxruntime-node';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { Browser, ElementHandle, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoStatus } from '../demo/main.ts';
import { encodeIdx } from '../src/data/idx.ts';
import { PNG } from 'pngjs';
import { LINE_PAD, SERIES_COLOURS } from '../demo/layer-panels.ts';
import { figure, KEEP } from '../demo/layer-stats.ts';
import { launchChromium, serve } from './browser.ts';
import { writeImageFolder } from './image-fixtures.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'demo', 'dist');
const SCREENSHOT = join(ROOT, 'test-output', 'demo.png');
const SCREENSHOT_IMAGES = join(ROOT, 'test-output', 'demo-image-folder.png');

const demo = (page: Page) => page.evaluate(() => window.__demo) as Promise<DemoStatus>;

/** Record the page's main-thread long tasks (over 50 ms) from its start: Chromium reports them to a PerformanceObserver. */
async function recordLongTasks(page: Page): Promise<void> {
  await page.evaluateOnNewDocument(() => {
    const w = window as unknown as { __longTasks: { start: number; duration: number }[] };
    w.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
}

/** The page's clock now (performance.now()), to bound a span of interest. */
const pageNow = (page: Page) => page.evaluate(() => performance.now());

/** Long tasks that started within [from, to] of the page's clock. */
async function longTasksBetween(page: Page, from: number, to: number): Promise<{ start: number; duration: number }[]> {
  const all = await page.evaluate(() => (window as unknown as { __longTasks: { start: number; duration: number }[] }).__longTasks);
  return all.filter((t) => t.start >= from && t.start <= to);
}

/** The page's training worker (demo/worker.ts; the charts have a worker of their own, chart-worker.ts). */
async function trainingWorker(page: Page) {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const w = page.workers().find((x) => /\/worker-[^/]*\.js$/.test(x.url()));
    if (w) return w;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `The page started no training worker within 30 s (workers: ${
      page
        .workers()
        .map((x) => x.url())
        .join(', ') || 'none'
    }).`,
  );
}

/** Wait until the page's status is one of `want` (or error/no-webgpu, which fail with the page's message). */
async function waitForStatus(page: Page, want: DemoStatus['status'][], timeout: number): Promise<DemoStatus> {
  const stops = [...new Set([...want, 'error', 'no-webgpu'])];
  await page.waitForFunction((s: string[]) => s.includes(window.__demo.status), { timeout, polling: 200 }, stops);
  const st = await demo(page);
  if (!want.includes(st.status)) throw new Error(`The demo reached status "${st.status}" instead of ${want.join('/')}: ${st.error ?? 'no error message'}`);
  return st;
}

/** The first file in `dir` whose name matches (a finished download, not a .crdownload), waiting up to `timeout` ms. */
async function waitForFile(dir: string, name: RegExp, timeout: number): Promise<string> {
  const until = Date.now() + timeout;
  while (Date.now() < until) {
    const hit = readdirSync(dir).find((f) => name.test(f));
    if (hit) return join(dir, hit);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`No file matching ${name} appeared in ${dir} within ${timeout} ms.`);
}

async function setValue(page: Page, selector: string, value: string): Promise<void> {
  await page.$eval(
    selector,
    (el, v) => {
      (el as HTMLInputElement | HTMLSelectElement).value = v;
      el.dispatchEvent(new Event('input', { bubbles: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    },
    value,
  );
}

/**
 * The explanation pictures: per test image the `kinds` of canvas, each the image's size, and the
 * maps not blank (more than a few distinct colours); as many right and wrong as the page says.
 */
async function checkExplanations(page: Page, kinds: string[], size: number, explained: { right: number; wrong: number }): Promise<void> {
  const figs = await page.$$eval('#explain figure', (els) =>
    els.map((f) => ({
      outcome: (f as HTMLElement).dataset.outcome,
      canvases: Array.from(f.querySelectorAll('canvas')).map((c) => {
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const colours = new Set<number>();
        for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return { kind: c.dataset.kind, width: c.width, height: c.height, colours: colours.size };
      }),
    })),
  );
  expect(figs.filter((f) => f.outcome === 'right')).toHaveLength(explained.right);
  expect(figs.filter((f) => f.outcome === 'wrong')).toHaveLength(explained.wrong);
  for (const f of figs) {
    expect(f.canvases.map((c) => c.kind)).toEqual(kinds);
    for (const c of f.canvases) {
      expect([c.width, c.height]).toEqual([size, size]);
      if (c.kind !== 'image') expect(c.colours, `${f.outcome} ${c.kind}`).toBeGreaterThan(4);
    }
  }
}

const hexRgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

/**
 * The "Inside the layers" panels once they show the last snapshot: one per layer of the page's
 * status, in order; each figure printed equals the status's value (and is the panels' own
 * formatting of it); each heat strip has as many columns as snapshots kept, stretched over its
 * width, and a pixel of its full colour in every pixel column (each snapshot's densest values); each small chart has its series' colour
 * at the point where the status's last value lands on its scale. Returns the status.
 */
async function checkLayerPanels(page: Page): Promise<DemoStatus['layerStats']> {
  // The status and the panels read in one go (a snapshot arriving between two reads would mismatch them).
  const read = () =>
    page.evaluate(() => {
      const ls = window.__demo.layerStats;
      if (!(ls.snapshots > 0 && ls.panels > 0 && ls.drawnStep === ls.lastStep)) return null;
      const sections = Array.from(document.querySelectorAll('#layer-panels section.layer'));
      return {
        ls,
        seen: sections.map((sec) => {
          const el = sec as HTMLElement;
          const px = (c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data);
          return {
            layer: el.dataset.layer!,
            step: Number(el.dataset.step),
            cells: Array.from(el.querySelectorAll('td[data-field]')).map((td) => ({ param: (td as HTMLElement).dataset.param!, field: (td as HTMLElement).dataset.field!, value: (td as HTMLElement).dataset.value!, text: td.textContent! })),
            dead: (el.querySelector('h3 .dead') as HTMLElement | null)?.dataset.value ?? null,
            strips: Array.from(el.querySelectorAll('figure.strip')).map((f) => {
              const c = f.querySelector('canvas')!;
              return { param: (f as HTMLElement).dataset.param!, of: (f as HTMLElement).dataset.of!, width: c.width, height: c.height, colour: c.dataset.colour!, columns: Number(c.dataset.columns), pixels: px(c) };
            }),
            lines: Array.from(el.querySelectorAll('figure.line')).map((f) => {
              const c = f.querySelector('canvas')!;
              const d = c.dataset;
              return { kind: (f as HTMLElement).dataset.chart!, width: c.width, height: c.height, lo: Number(d.lo), hi: Number(d.hi), log: d.log === 'true', pixels: px(c) };
            }),
          };
        }),
      };
    });
  const until = Date.now() + 30_000;
  let got = await read();
  while (!got && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    got = await read();
  }
  if (!got) throw new Error(`The layer panels did not show the last statistics within 30 s: ${JSON.stringify((await demo(page)).layerStats).slice(0, 400)}`);
  const { ls, seen } = got;
  expect(ls.panels).toBe(ls.layers.length);
  expect(seen.map((p) => p.layer)).toEqual(ls.layers.map((l) => l.name));
  for (const [i, layer] of ls.layers.entries()) {
    const panel = seen[i];
    expect(panel.step).toBe(ls.lastStep);
    // Numbers: what is printed is the status's value.
    const fields: Record<string, 'norm' | 'gradNorm' | 'updateRatio'> = { norm: 'norm', 'grad-norm': 'gradNorm', 'update-ratio': 'updateRatio' };
    expect(panel.cells).toHaveLength(3 * layer.params.length);
    for (const c of panel.cells) {
      const v = layer.params.find((p) => p.name === c.param)![fields[c.field]];
      expect(c.value === 'null' ? null : Number(c.value), `${c.param} ${c.field}`).toBe(v);
      expect(c.text).toBe(figure(v));
    }
    expect(panel.dead === null ? null : Number(panel.dead)).toBe(layer.deadFraction);
    // Heat strips: a value and a gradient strip per parameter.
    expect(panel.strips.map((s) => `${s.param}/${s.of}`)).toEqual(layer.params.flatMap((p) => [`${p.name}/value`, `${p.name}/grad`]));
    for (const s of panel.strips) {
      expect(s.columns).toBe(Math.min(ls.snapshots, KEEP));
      const [r, g, b] = hexRgb(s.colour);
      // Snapshot j fills pixel columns j·W/n up to (j+1)·W/n; each has its densest row at the full colour.
      for (let x = 0; x < s.width; x++) {
        let full = 0;
        for (let y = 0; y < s.height; y++) {
          const o = (y * s.width + x) * 4;
          if (s.pixels[o] === r && s.pixels[o + 1] === g && s.pixels[o + 2] === b) full++;
        }
        expect(full, `${s.param} ${s.of} pixel column ${x} (snapshot ${Math.floor((x * s.columns) / s.width)})`).toBeGreaterThan(0);
      }
    }
    // Line charts: each series' last value is drawn where the chart's scale puts it, in its colour.
    expect(panel.lines.map((l) => l.kind)).toEqual(['norm', 'grad-norm', 'update-ratio', ...(layer.deadFraction === null ? [] : ['dead'])]);
    for (const l of panel.lines) {
      const values = l.kind === 'dead' ? [layer.deadFraction] : layer.params.map((p) => (l.kind === 'norm' ? p.norm : l.kind === 'grad-norm' ? p.gradNorm : p.updateRatio));
      const colours = l.kind === 'dead' ? ['#c8322b'] : layer.params.map((_, k) => SERIES_COLOURS[k % SERIES_COLOURS.length]);
      const ys = values.map((v) => (v === null || !Number.isFinite(v) || (l.log && v <= 0) ? null : l.height - LINE_PAD - (((l.log ? Math.log10(v) : v) - l.lo) / (l.hi - l.lo)) * (l.height - 2 * LINE_PAD)));
      const x = l.width - LINE_PAD;
      let checked = 0;
      ys.forEach((y, k) => {
        if (y === null) return;
        expect(y, `${layer.name} ${l.kind} ${k}`).toBeGreaterThanOrEqual(LINE_PAD - 1e-6);
        expect(y).toBeLessThanOrEqual(l.height - LINE_PAD + 1e-6);
        // A later series' dot on top of this one hides it.
        if (ys.some((y2, k2) => k2 > k && y2 !== null && Math.abs(y2 - y) < 6)) return;
        const o = (Math.floor(y) * l.width + Math.floor(x)) * 4;
        expect([l.pixels[o], l.pixels[o + 1], l.pixels[o + 2]], `${layer.name} ${l.kind} series ${k} at y=${y.toFixed(1)}`).toEqual(hexRgb(colours[k]));
        checked++;
      });
      expect(checked, `${layer.name} ${l.kind}`).toBeGreaterThan(0);
    }
  }
  // The warnings, each naming its layer, as listed in the status.
  const warnings = await page.$$eval('#layer-warnings li', (lis) => lis.map((li) => ({ name: (li as HTMLElement).dataset.name, kind: (li as HTMLElement).dataset.kind, text: li.textContent })));
  expect(warnings).toEqual(ls.warnings.map((w) => ({ name: w.name, kind: w.kind, text: w.message })));
  return ls;
}

describe('browser demo (headless Chromium, WebGPU)', () => {
  let browser: Browser | null = null;
  let server: Server | null = null;
  let url = '';
  let userDataDir = '';
  const pageLog: string[] = [];

  beforeAll(async () => {
    const vite = resolve(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
    await promisify(execFile)(process.execPath, [vite, 'build', 'demo', '--logLevel', 'warn'], { cwd: ROOT, maxBuffer: 16 << 20 });
    expect(existsSync(join(DIST, 'index.html'))).toBe(true);
    ({ server, url } = await serve(DIST));
    userDataDir = mkdtempSync(join(tmpdir(), 'demo-e2e-chromium-'));
    browser = await launchChromium("The demo's end-to-end test", userDataDir);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  async function openPage(): Promise<Page> {
    const page = await browser!.newPage();
    page.on('console', (m) => pageLog.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => pageLog.push(`[pageerror] ${(e as Error).message}`));
    await recordLongTasks(page);
    await page.goto(url, { waitUntil: 'load' });
    return page;
  }

  it('trains an MLP on the bundled digits, draws charts and pictures, predicts a drawn digit, saves, pauses, resets and loads', async () => {
    const page = await openPage();
    try {
      const ready = await waitForStatus(page, ['ready'], 60_000);
      await page.waitForFunction(() => window.__demo.dataset !== null, { timeout: 30_000 });
      expect(ready.adapter).not.toBeNull();
      console.info(`demo e2e: adapter ${ready.adapter!.name} (${ready.adapter!.description}), software: ${ready.adapter!.isSoftware}`);

      await setValue(page, '#preset', 'mlp');
      await setValue(page, '#hidden', '32');
      await setValue(page, '#optimizer', 'adam');
      await setValue(page, '#lr', '0.003');
      await setValue(page, '#batch', '64');
      await setValue(page, '#epochs', '1');
      const t0 = Date.now();
      const from = await pageNow(page);
      await page.click('#start');
      const done = await waitForStatus(page, ['done'], 120_000);
      // Training runs in the worker: the page's main thread never blocked for more than 50 ms meanwhile.
      const long = await longTasksBetween(page, from, await pageNow(page));
      console.info(`demo e2e: main-thread long tasks during training: ${long.length ? long.map((t) => `${t.duration.toFixed(0)} ms`).join(', ') : 'none'}`);
      expect(long).toEqual([]);
      console.info(
        `demo e2e: 1 epoch, ${done.step} steps in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${Math.round(done.samplesPerSecond ?? 0)} samples/s; loss ${done.losses[0].toFixed(3)} -> ${done.lastLoss!.toFixed(3)}, val accuracy ${done.valAccuracy}`,
      );

      // Learning: the loss fell and accuracy is well above chance (0.1 for ten classes).
      expect(done.step).toBeGreaterThanOrEqual(100);
      expect(done.losses.length).toBeGreaterThanOrEqual(10);
      expect(done.losses.at(-1)!).toBeLessThan(0.7 * done.losses[0]);
      expect(done.lastAccuracy!).toBeGreaterThan(0.2);
      expect(done.valAccuracy!).toBeGreaterThan(0.2);

      // The matmul tuner's choices persist in localStorage, so the next visit does not measure again.
      const tuned = await page.evaluate(() => localStorage.getItem('webgpu-train:tune'));
      expect(tuned).not.toBeNull();
      const perAdapter = Object.values(JSON.parse(tuned!) as Record<string, Record<string, string>>);
      expect(perAdapter.length).toBeGreaterThan(0);
      expect(Object.keys(perAdapter[0]).some((k) => k.startsWith('matmul'))).toBe(true);

      // Charts: data points, and the training line's blue on the loss canvas.
      expect(done.chartPoints).toBeGreaterThan(10);
      // The charts draw in a worker of their own (an OffscreenCanvas): read what the page shows.
      const shot = PNG.sync.read(Buffer.from(await (await page.$('#loss-chart'))!.screenshot({ type: 'png' })));
      let blue = 0;
      for (let i = 0; i < shot.data.length; i += 4) if (shot.data[i + 2] > shot.data[i] + 80) blue++;
      expect(blue).toBeGreaterThan(100);

      // Pictures: weight images, a test grid and a confusion matrix whose counts cover the test split.
      expect(done.picturesUpdated).toBeGreaterThan(0);
      expect(await page.$$eval('#weights canvas', (els) => els.length)).toBe(32);
      expect(await page.$$eval('#test-grid figure', (els) => els.length)).toBe(40);
      const confusionTotal = await page.$$eval('#confusion tbody td', (cells) => cells.reduce((s, c) => s + Number(c.textContent || 0), 0));
      expect(confusionTotal).toBe(done.dataset!.test);

      // Inside the layers: statistics every 10 steps (the page's default) of the two Dense layers.
      const ls = await checkLayerPanels(page);
      console.info(
        `demo e2e: layer statistics: ${ls.snapshots} snapshots up to step ${ls.lastStep}; ${ls.layers.map((l) => `${l.name} |w| ${figure(l.params[0].norm)} |g| ${figure(l.params[0].gradNorm)} ratio ${figure(l.params[0].updateRatio)}${l.deadFraction === null ? '' : ` dead ${figure(l.deadFraction)}`}`).join('; ')}; warnings: ${ls.warnings.length}`,
      );
      expect(ls.every).toBe(10);
      const due = Math.ceil(done.step / 10);
      expect(ls.snapshots).toBeGreaterThanOrEqual(due - 1); // a due step finding every readback busy is skipped
      expect(ls.snapshots).toBeLessThanOrEqual(due);
      expect(ls.lastStep! % 10).toBe(0);
      expect(ls.lastStep!).toBeGreaterThan(done.step - 21);
      expect(ls.layers.map((l) => l.params.map((p) => p.shape))).toEqual([
        [[32, 784], [32]],
        [[10, 32], [10]],
      ]);
      for (const l of ls.layers) for (const p of l.params) expect(p.norm).toBeGreaterThan(0);
      expect(ls.layers[0].deadFraction).toBeGreaterThanOrEqual(0);
      expect(ls.layers[0].deadFraction).toBeLessThan(0.99);
      expect(ls.layers[1].deadFraction).toBeNull();
      // What the page shows of them: coloured pixels in the panels' picture (blue strips and lines, orange gradients).
      // Panels out of sight are not rendered (content-visibility): bring them into view, let a few frames pass.
      await page.$eval('#layer-panels', (el) => el.scrollIntoView({ block: 'center' }));
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(r)))));
      await new Promise((r) => setTimeout(r, 200));
      const panelShot = PNG.sync.read(Buffer.from(await (await page.$('#layer-panels'))!.screenshot({ type: 'png' })));
      let bluePx = 0;
      let orangePx = 0;
      for (let i = 0; i < panelShot.data.length; i += 4) {
        const [r, g, b] = [panelShot.data[i], panelShot.data[i + 1], panelShot.data[i + 2]];
        if (b > r + 60) bluePx++;
        if (r > b + 100 && g < r - 40) orangePx++;
      }
      expect(bluePx).toBeGreaterThan(500);
      expect(orangePx).toBeGreaterThan(500);

      // Draw a "7" with mouse events; the prediction's probabilities sum to 1.
      await page.$eval('#pad', (el) => el.scrollIntoView({ block: 'center' }));
      const box = (await (await page.$('#pad'))!.boundingBox())!;
      const at = (fx: number, fy: number) => [box.x + fx * box.width, box.y + fy * box.height] as const;
      await page.mouse.move(...at(0.3, 0.25));
      await page.mouse.down();
      await page.mouse.move(...at(0.7, 0.25), { steps: 8 });
      await page.mouse.move(...at(0.45, 0.8), { steps: 12 });
      await page.mouse.up();
      await new Promise((r) => setTimeout(r, 300)); // the pad reports changes once per animation frame
      await page.waitForFunction(() => window.__demo.prediction?.drawing === window.__demo.drawing, { timeout: 30_000 });
      const drawn = await demo(page);
      const probs = drawn.prediction!.probabilities;
      console.info(`demo e2e: the drawn 7 was predicted as ${drawn.prediction!.label} (p=${Math.max(...probs).toFixed(2)})`);
      // A clear 7 after the MNIST-style preprocessing: a model at ~88% accuracy gets it right.
      expect(drawn.prediction!.label).toBe('7');
      expect(probs).toHaveLength(10);
      for (const p of probs) expect(p).toBeGreaterThanOrEqual(0);
      expect(Math.abs(probs.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-4);

      mkdirSync(join(ROOT, 'test-output'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      // Save: the download is a safetensors checkpoint (8-byte header length, then JSON).
      const downloads = mkdtempSync(join(tmpdir(), 'demo-e2e-downloads-'));
      const cdp = await page.createCDPSession();
      await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
      const gridBefore = await page.$eval('#test-grid', (el) => el.textContent);
      await page.click('#save');
      const saved = await waitForFile(downloads, /\.safetensors$/, 30_000);
      const bytes = readFileSync(saved);
      const headerLength = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
      expect((header.__metadata__ as { format: string }).format).toBe('webgpu-train/1');
      // The panels are the model's layers with parameters, as the checkpoint names them.
      const modelTensors = Object.keys(header).filter((k) => k !== '__metadata__' && !k.startsWith('optim.'));
      expect(ls.layers.flatMap((l) => l.params.map((p) => p.name)).sort()).toEqual(modelTensors.sort());
      // Export ONNX: the download is a model onnxruntime runs (inputs [batch, 1, 28, 28], 10 outputs).
      await page.click('#save-onnx');
      const onnxFile = await waitForFile(downloads, /\.onnx$/, 30_000);
      const session = await ort.InferenceSession.create(readFileSync(onnxFile));
      const ran = await session.run({ input: new ort.Tensor('float32', new Float32Array(2 * 784), [2, 1, 28, 28]) });
      expect(ran.output.dims).toEqual([2, 10]);
      await session.release();

      // Continue training, pause: the step count stops moving; then Reset gives a fresh device.
      await setValue(page, '#epochs', '5');
      await page.click('#start');
      await page.waitForFunction((s: number) => window.__demo.step >= s + 10, { timeout: 30_000 }, drawn.step);
      await page.click('#pause');
      await new Promise((r) => setTimeout(r, 1500)); // the loop stops at its next read-back, a few steps on
      const paused = await demo(page);
      expect(paused.status).toBe('paused');
      await new Promise((r) => setTimeout(r, 1000));
      expect((await demo(page)).step).toBe(paused.step);
      await page.click('#reset');
      const fresh = await waitForStatus(page, ['ready'], 60_000);
      expect(fresh.step).toBe(0);
      expect(fresh.losses).toHaveLength(0);
      expect(fresh.adapter).not.toBeNull();

      // Load the saved checkpoint into the new device: same step, same test predictions.
      await ((await page.$('#load')) as ElementHandle<HTMLInputElement>).uploadFile(saved);
      await page.waitForFunction((n: number) => window.__demo.status === 'done' && window.__demo.picturesUpdated > n, { timeout: 60_000 }, fresh.picturesUpdated);
      const loaded = await demo(page);
      expect(loaded.step).toBe(done.step);
      expect(await page.$eval('#test-grid', (el) => el.textContent)).toBe(gridBefore);

      // A dead hidden layer (its biases far negative before the ReLU), loaded and trained on: the
      // page names it in the warnings and its panel shows every output zero.
      const deadFile = join(downloads, 'dead.safetensors');
      const firstBias = modelTensors.find((k) => k.endsWith('.bias'))!;
      const deadLayer = firstBias.replace(/\.bias$/, '');
      const meta = header[firstBias] as { dtype: string; data_offsets: [number, number] };
      expect(meta.dtype).toBe('F32');
      const deadBytes = Buffer.from(bytes);
      const body = 8 + headerLength;
      for (let o = body + meta.data_offsets[0]; o < body + meta.data_offsets[1]; o += 4) deadBytes.writeFloatLE(-30, o);
      writeFileSync(deadFile, deadBytes);
      const beforeDead = await demo(page);
      await ((await page.$('#load')) as ElementHandle<HTMLInputElement>).uploadFile(deadFile);
      await page.waitForFunction((n: number) => window.__demo.status === 'done' && window.__demo.picturesUpdated > n, { timeout: 60_000 }, beforeDead.picturesUpdated);
      expect((await demo(page)).layerStats.snapshots).toBe(0);
      await setValue(page, '#epochs', '1');
      await page.click('#start');
      await page.waitForFunction(() => window.__demo.layerStats.warnings.some((w) => w.kind === 'dead-activation'), { timeout: 60_000, polling: 200 });
      await page.click('#pause');
      const deadStats = await checkLayerPanels(page);
      const deadWarning = deadStats.warnings.find((w) => w.kind === 'dead-activation')!;
      console.info(`demo e2e: dead layer warning: ${deadWarning.message}`);
      expect(deadWarning.message).toContain(`(after ${deadLayer}) are zero: the layer is dead`);
      expect(deadStats.layers.find((l) => l.name === deadLayer)!.deadFraction).toBe(1);
      expect(await page.$eval(`#layer-panels section[data-layer="${deadLayer}"] h3 .dead`, (el) => el.classList.contains('bad'))).toBe(true);
      expect(await page.$$eval('#layer-warnings li[data-kind="dead-activation"]', (lis) => lis.map((li) => li.textContent))).toEqual([deadWarning.message]);
      rmSync(downloads, { recursive: true, force: true });
    } catch (err) {
      console.error(`page log:\n${pageLog.join('\n')}`);
      throw err;
    } finally {
      await page.close();
    }
  }, 180_000);

  it('offers the CNN when the convolution layers exist, and trains it in the page', async () => {
    const hasConv = existsSync(join(ROOT, 'src', 'nn', 'conv.ts'));
    const page = await openPage();
    try {
      await waitForStatus(page, ['ready'], 60_000);
      await page.waitForFunction(() => window.__demo.dataset !== null, { timeout: 30_000 });
      const presets = await page.$$eval('#preset option', (opts) => opts.map((o) => (o as HTMLOptionElement).value));
      expect(presets.includes('cnn')).toBe(hasConv);
      if (!hasConv) return;
      // A few steps only: a CNN epoch takes minutes on a software adapter.
      await setValue(page, '#preset', 'cnn');
      await setValue(page, '#batch', '16');
      await setValue(page, '#epochs', '1');
      await page.click('#start');
      await page.waitForFunction(() => window.__demo.step >= 10 || ['error', 'done'].includes(window.__demo.status), { timeout: 120_000, polling: 200 });
      const st = await demo(page);
      expect(st.error).toBeNull();
      expect(st.losses.length).toBeGreaterThanOrEqual(2);
      for (const l of st.losses) expect(Number.isFinite(l)).toBe(true);
      await page.click('#reset');
      await waitForStatus(page, ['ready'], 60_000);
    } catch (err) {
      console.error(`page log:\n${pageLog.join('\n')}`);
      throw err;
    } finally {
      await page.close();
    }
  }, 180_000);

  it('resumes training on a new device when the device is lost, from the state copied to the worker, and says so', async () => {
    const page = await openPage();
    try {
      await waitForStatus(page, ['ready'], 60_000);
      await page.waitForFunction(() => window.__demo.dataset !== null, { timeout: 30_000 });
      await setValue(page, '#hidden', '32');
      await setValue(page, '#epochs', '2');
      await page.click('#start');
      await page.waitForFunction(() => window.__demo.step >= 10, { timeout: 60_000, polling: 100 });
      // Destroy the worker's device at its next command encoder (the engine makes one per submission).
      const worker = await trainingWorker(page);
      await worker.evaluate(() => {
        const make = GPUDevice.prototype.createCommandEncoder;
        GPUDevice.prototype.createCommandEncoder = function (this: GPUDevice, ...args: Parameters<GPUDevice['createCommandEncoder']>) {
          GPUDevice.prototype.createCommandEncoder = make;
          const encoder = make.apply(this, args);
          this.destroy();
          return encoder;
        };
      });
      await page.waitForFunction(() => window.__demo.deviceLosses > 0 || window.__demo.status === 'error', { timeout: 60_000, polling: 100 });
      const lost = await demo(page);
      expect(lost.error).toBeNull();
      expect(lost.notice).toMatch(/device was lost.*restored on a new device from the copy kept in the worker at step \d+ \(epoch \d\); training goes on/i);
      expect(await page.$eval('#notice', (el) => (el as HTMLElement).hidden)).toBe(false);
      const from = Number(/at step (\d+)/.exec(lost.notice!)![1]);
      // Training goes on by itself from there and finishes both epochs: nothing to press.
      const done = await waitForStatus(page, ['done'], 120_000);
      expect(done.error).toBeNull();
      expect(done.epoch).toBe(2);
      expect(done.step).toBeGreaterThan(from);
      expect(done.valAccuracy!).toBeGreaterThan(0.2);
    } catch (err) {
      console.error(`page log:\n${pageLog.join('\n')}`);
      throw err;
    } finally {
      await page.close();
    }
  }, 180_000);

  it("reads picked IDX and CIFAR-10 files with the engine's parsers", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'demo-e2e-files-'));
    const page = await openPage();
    try {
      await waitForStatus(page, ['ready'], 60_000);
      // Two IDX files (14x14 images): the last 20% of samples become the test split.
      const n = 50;
      const pixels = Uint8Array.from({ length: n * 14 * 14 }, (_, i) => (i * 37) % 256);
      const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
      writeFileSync(join(dir, 'tiny-images-idx3-ubyte'), encodeIdx([n, 14, 14], pixels));
      writeFileSync(join(dir, 'tiny-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([n], labels)));
      await setValue(page, '#dataset', 'idx');
      await ((await page.$('#idx-files')) as ElementHandle<HTMLInputElement>).uploadFile(join(dir, 'tiny-images-idx3-ubyte'), join(dir, 'tiny-labels-idx1-ubyte.gz'));
      await page.waitForFunction(() => window.__demo.dataset !== null, { timeout: 30_000 });
      expect((await demo(page)).dataset).toEqual({ name: 'tiny', train: 40, test: 10, inputShape: [1, 14, 14] });

      // CIFAR-10: one training batch and the test batch (label byte + 3072 pixel bytes per record).
      const batch = (records: number) => {
        const out = new Uint8Array(records * 3073);
        for (let r = 0; r < records; r++) out[r * 3073] = r % 10;
        return out;
      };
      writeFileSync(join(dir, 'data_batch_1.bin'), batch(30));
      writeFileSync(join(dir, 'test_batch.bin'), batch(12));
      await setValue(page, '#dataset', 'cifar');
      await ((await page.$('#cifar-files')) as ElementHandle<HTMLInputElement>).uploadFile(join(dir, 'data_batch_1.bin'), join(dir, 'test_batch.bin'));
      await page.waitForFunction(() => window.__demo.dataset !== null, { timeout: 30_000 });
      expect((await demo(page)).dataset).toEqual({ name: 'cifar10', train: 30, test: 12, inputShape: [3, 32, 32] });

      // A malformed file is reported by name, and needs no Reset.
      writeFileSync(join(dir, 'test_batch.bin'), batch(12).subarray(0, 3073 * 12 - 5));
      await page.$eval('#cifar-files', (el) => ((el as HTMLInputElement).value = '')); // the same names again must still fire "change"
      await ((await page.$('#cifar-files')) as ElementHandle<HTMLInputElement>).uploadFile(join(dir, 'data_batch_1.bin'), join(dir, 'test_batch.bin'));
      await page.waitForFunction(() => window.__demo.error !== null, { timeout: 30_000 });
      const st = await demo(page);
      expect(st.error).toMatch(/test_batch\.bin/);
      expect(st.status).toBe('ready');
    } catch (err) {
      console.error(`page log:\n${pageLog.join('\n')}`);
      throw err;
    } finally {
      await page.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('trains a ViT and a ResNet on an image folder picked in the page, off the main thread, and shows where they look', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'demo-e2e-images-'));
    const page = await openPage();
    try {
      // Four colour classes, two of them nearly alike (so the model gets some test images wrong),
      // PNG and JPEG of mixed sizes, one class stored grey, a corrupt and a truncated file, a text file.
      const photos = join(dir, 'photos');
      writeImageFolder(photos, {
        classes: { red: { rgb: [220, 40, 40] }, crimson: { rgb: [210, 50, 45] }, blue: { rgb: [40, 40, 220] }, grey: { rgb: [128, 128, 128], grey: true } },
        perClass: 10,
        badFiles: true,
      });
      const single = join(dir, 'single');
      writeImageFolder(single, { classes: { cats: { rgb: [1, 2, 3] } }, perClass: 2 });
      await waitForStatus(page, ['ready'], 60_000);
      await setValue(page, '#dataset', 'images');
      await setValue(page, '#image-size', '16');
      const input = (await page.$('#image-folder')) as ElementHandle<HTMLInputElement>;

      // A folder with one class is refused, naming it; no Reset needed.
      await input.uploadFile(single);
      await page.waitForFunction(() => window.__demo.error !== null, { timeout: 30_000 });
      const refused = await demo(page);
      expect(refused.error).toMatch(/single: one class folder \("cats"\): a classifier needs two or more classes/);
      expect(refused.status).toBe('ready');

      await input.uploadFile(photos);
      await page.waitForFunction(() => window.__demo.dataset?.name === 'photos' && window.__demo.folder?.root === 'photos', { timeout: 60_000 });
      const read = await demo(page);
      expect(read.error).toBeNull();
      expect(read.dataset).toEqual({ name: 'photos', train: 32, test: 8, inputShape: [3, 16, 16] });
      // Bad files are skipped with a count, each named with its reason, on the page.
      expect(read.folder!.skipped).toBe(2);
      const report: string = await page.$eval('#folder-report', (el) => ((el as HTMLElement).hidden ? '' : (el.textContent ?? '')));
      console.info(`demo e2e: the folder report:\n${report}`);
      expect(report).toMatch(/2 unreadable image files skipped:\n\s+red\/cut\.jpg: a truncated JPEG[^\n]*\n\s+red\/damaged\.png: the PNG decoder failed/);
      expect(report).toMatch(/red\/notes\.txt: not a PNG or JPEG file name/);
      expect(report).toMatch(/README\.md: not in a class folder/);
      expect(report).toMatch(/mixed sizes: 5 different sizes/);
      expect(report).toMatch(/mixed modes: 10 grey images \(first: grey\/grey-00\.png\) and 30 colour images/);

      // Images that do not fit, said before any file is decoded (the settings re-read the folder): one
      // sample over the adapter's buffer limit, then more image data than the page keeps in memory.
      const refusal = async (pattern: RegExp) => {
        await page.waitForFunction((src: string) => new RegExp(src).test(window.__demo.error ?? ''), { timeout: 30_000 }, pattern.source);
        expect((await demo(page)).status).toBe('ready');
      };
      await setValue(page, '#image-size', '20000');
      await refusal(/^photos: one sample of \[3, 20000, 20000\] needs 4\.5 GiB as f32, over the adapter's limit of [\d.]+ [GM]iB per buffer: use a smaller image size/);
      await setValue(page, '#channels', '1');
      await setValue(page, '#image-size', '12000');
      // 42 image files (two of them bad, which only reading tells) of 1 x 12000 x 12000 bytes.
      await refusal(/^photos: 42 images at 1x12000x12000 need 5\.6 GiB decoded, over the limit of 2 GiB: 14 images fit \(the first one past it is crimson\/crimson-04\.png\)/);
      await setValue(page, '#channels', 'auto');
      await setValue(page, '#image-size', '16');
      await page.waitForFunction(() => window.__demo.dataset?.name === 'photos' && window.__demo.error === null, { timeout: 60_000 });

      // A small ViT: 16 patches of 4x4, two blocks.
      await setValue(page, '#preset', 'vit');
      await setValue(page, '#depth', '2');
      await setValue(page, '#width', '32');
      await setValue(page, '#heads', '2');
      await setValue(page, '#patch', '4');
      await setValue(page, '#lr', '0.003');
      await setValue(page, '#batch', '8');
      await setValue(page, '#epochs', '3');
      let from = await pageNow(page);
      await page.click('#start');
      const vit = await waitForStatus(page, ['done'], 150_000);
      let long = await longTasksBetween(page, from, await pageNow(page));
      console.info(`demo e2e: ViT on the image folder, ${vit.step} steps, val accuracy ${vit.valAccuracy}; long tasks: ${long.map((t) => t.duration.toFixed(0)).join(', ') || 'none'}`);
      expect(long).toEqual([]);
      expect(vit.epoch).toBe(3);
      expect(vit.explained).toEqual({ right: expect.any(Number), wrong: expect.any(Number), attention: true });
      expect(vit.explained!.right).toBeGreaterThan(0);
      expect(vit.explained!.wrong).toBeGreaterThan(0);
      await checkExplanations(page, ['image', 'saliency', 'attention'], 16, vit.explained!);
      // Panels for every layer with parameters of the ViT (statistics at steps 0 and 10 of 12).
      const vitStats = await checkLayerPanels(page);
      console.info(`demo e2e: ViT layer panels: ${vitStats.layers.map((l) => l.name).join(', ')}`);
      expect(vitStats.snapshots).toBe(2);
      expect(vitStats.layers.length).toBeGreaterThan(8);
      expect(vitStats.layers.some((l) => /attn/.test(l.name))).toBe(true);
      mkdirSync(join(ROOT, 'test-output'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT_IMAGES, fullPage: true });

      // Export ONNX: a model onnxruntime runs (inputs [batch, 3, 16, 16], 4 classes out).
      const downloads = mkdtempSync(join(tmpdir(), 'demo-e2e-onnx-'));
      const cdp = await page.createCDPSession();
      await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
      await page.click('#save-onnx');
      const onnxFile = await waitForFile(downloads, /\.onnx$/, 30_000);
      const session = await ort.InferenceSession.create(readFileSync(onnxFile));
      const ran = await session.run({ input: new ort.Tensor('float32', new Float32Array(2 * 3 * 16 * 16), [2, 3, 16, 16]) });
      expect(ran.output.dims).toEqual([2, 4]);
      await session.release();
      rmSync(downloads, { recursive: true, force: true });

      // A ResNet-8 on the same folder: saliency for any model.
      await page.click('#reset');
      await waitForStatus(page, ['ready'], 60_000);
      await setValue(page, '#preset', 'resnet');
      await setValue(page, '#depth', '8');
      await setValue(page, '#epochs', '1');
      from = await pageNow(page);
      await page.click('#start');
      const resnet = await waitForStatus(page, ['done'], 150_000);
      long = await longTasksBetween(page, from, await pageNow(page));
      console.info(`demo e2e: ResNet-8 on the image folder, ${resnet.step} steps; long tasks: ${long.map((t) => t.duration.toFixed(0)).join(', ') || 'none'}`);
      expect(long).toEqual([]);
      expect(resnet.explained!.attention).toBe(false);
      expect(resnet.explained!.right + resnet.explained!.wrong).toBeGreaterThan(0);
      await checkExplanations(page, ['image', 'saliency'], 16, resnet.explained!);
      const resnetStats = await checkLayerPanels(page);
      console.info(`demo e2e: ResNet layer panels: ${resnetStats.layers.map((l) => `${l.name}${l.deadFraction === null ? '' : ` (dead ${figure(l.deadFraction)})`}`).join(', ')}`);
      expect(resnetStats.snapshots).toBe(1);
      expect(resnetStats.layers.length).toBeGreaterThan(8);
      expect(resnetStats.layers.some((l) => l.deadFraction !== null)).toBe(true);
    } catch (err) {
      console.error(`page log:\n${pageLog.join('\n')}`);
      throw err;
    } finally {
      await page.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 360_000);

  it('says what the browser needs when there is no WebGPU', async () => {
    const page = await browser!.newPage();
    try {
      await page.evaluateOnNewDocument(() => {
        delete (Navigator.prototype as { gpu?: unknown }).gpu;
      });
      await page.goto(url, { waitUntil: 'load' });
      await waitForStatus(page, ['no-webgpu'], 30_000);
      const text = await page.$eval('#no-webgpu', (el) => ((el as HTMLElement).hidden ? '' : (el.textContent ?? '')));
      expect(text).toMatch(/WebGPU/);
      expect(text).toMatch(/https/);
      expect(await page.$eval('#start', (el) => (el as HTMLButtonElement).disabled)).toBe(true);
    } finally {
      await page.close();
    }
  }, 60_000);
});
