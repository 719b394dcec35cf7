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
import { launchChromium, serve } from './browser.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'demo', 'dist');
const SCREENSHOT = join(ROOT, 'test-output', 'demo.png');

const demo = (page: Page) => page.evaluate(() => window.__demo) as Promise<DemoStatus>;

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
      await page.click('#start');
      const done = await waitForStatus(page, ['done'], 120_000);
      console.info(`demo e2e: 1 epoch, ${done.step} steps in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${Math.round(done.samplesPerSecond ?? 0)} samples/s; loss ${done.losses[0].toFixed(3)} -> ${done.lastLoss!.toFixed(3)}, val accuracy ${done.valAccuracy}`);

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
      const blue = await page.$eval('#loss-chart', (el) => {
        const c = el as HTMLCanvasElement;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i + 2] > d[i] + 80) n++;
        return n;
      });
      expect(blue).toBeGreaterThan(100);

      // Pictures: weight images, a test grid and a confusion matrix whose counts cover the test split.
      expect(done.picturesUpdated).toBeGreaterThan(0);
      expect(await page.$$eval('#weights canvas', (els) => els.length)).toBe(32);
      expect(await page.$$eval('#test-grid figure', (els) => els.length)).toBe(40);
      const confusionTotal = await page.$$eval('#confusion tbody td', (cells) => cells.reduce((s, c) => s + Number(c.textContent || 0), 0));
      expect(confusionTotal).toBe(done.dataset!.test);

      // Draw a "7" with mouse events; the prediction's probabilities sum to 1.
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
      expect(JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')).__metadata__.format).toBe('webgpu-train/1');
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

  it('shows a lost device, and Reset trains again on a new one', async () => {
    const page = await browser!.newPage();
    page.on('console', (m) => pageLog.push(`[${m.type()}] ${m.text()}`));
    try {
      // Keep a handle on the devices the page creates, so that the test can destroy one mid-training.
      await page.evaluateOnNewDocument(() => {
        const request = GPUAdapter.prototype.requestDevice;
        GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, ...args: Parameters<GPUAdapter['requestDevice']>) {
          const device = await request.apply(this, args);
          const w = window as unknown as { __testDevices?: GPUDevice[] };
          (w.__testDevices ??= []).push(device);
          return device;
        };
      });
      await page.goto(url, { waitUntil: 'load' });
      await waitForStatus(page, ['ready'], 60_000);
      await page.waitForFunction(() => window.__demo.dataset !== null, { timeout: 30_000 });
      await setValue(page, '#hidden', '32');
      await setValue(page, '#epochs', '3');
      await page.click('#start');
      await page.waitForFunction(() => window.__demo.step >= 10, { timeout: 60_000, polling: 100 });
      await page.evaluate(() => (window as unknown as { __testDevices: GPUDevice[] }).__testDevices.at(-1)!.destroy());
      await waitForStatus(page, ['error'], 30_000).catch(() => undefined);
      const lost = await demo(page);
      expect(lost.status).toBe('error');
      expect(lost.error).toMatch(/device was lost/i);
      expect(await page.$eval('#error', (el) => (el as HTMLElement).hidden)).toBe(false);

      await page.click('#reset');
      await waitForStatus(page, ['ready'], 60_000);
      await page.click('#start');
      await page.waitForFunction(() => window.__demo.step >= 10 || window.__demo.status === 'error', { timeout: 60_000, polling: 100 });
      const again = await demo(page);
      expect(again.error).toBeNull();
      expect(again.status).toBe('training');
      expect(await page.evaluate(() => (window as unknown as { __testDevices: GPUDevice[] }).__testDevices.length)).toBe(2);
    } catch (err) {
      console.error(`page log:\n${pageLog.join('\n')}`);
      throw err;
    } finally {
      await page.close();
    }
  }, 180_000);

  it('reads picked IDX and CIFAR-10 files with the engine\'s parsers', async () => {
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

  it('says what the browser needs when there is no WebGPU', async () => {
    const page = await browser!.newPage();
    try {
      await page.evaluateOnNewDocument(() => {
        delete (Navigator.prototype as { gpu?: unknown }).gpu;
      });
      await page.goto(url, { waitUntil: 'load' });
      await waitForStatus(page, ['no-webgpu'], 30_000);
      const text = await page.$eval('#no-webgpu', (el) => ((el as HTMLElement).hidden ? '' : el.textContent ?? ''));
      expect(text).toMatch(/WebGPU/);
      expect(text).toMatch(/https/);
      expect(await page.$eval('#start', (el) => (el as HTMLButtonElement).disabled)).toBe(true);
    } finally {
      await page.close();
    }
  }, 60_000);
});
