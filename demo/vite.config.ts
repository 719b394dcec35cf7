// The demo is a plain Vite app rooted here; it imports the engine from ../src, and the engine's
// WGSL files from ../shaders are bundled by the import.meta.glob in src/gpu/shader-files.ts.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { mnistDigitsAssets } from './mnist-assets.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative asset URLs: the built page works from any directory of any static server.
  base: './',
  plugins: [mnistDigitsAssets()],
  // The training worker is an ES module (it imports the engine, which loads layers by glob).
  worker: { format: 'es' },
  server: { host: '127.0.0.1', fs: { allow: [repoRoot] } },
  preview: { host: '127.0.0.1' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1024,
  },
});
