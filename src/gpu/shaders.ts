// WGSL sources, one file per kernel family under shaders/: the single source of truth for the
// Node build (read from disk next to this package) and the browser build (bundled by Vite).
import { isNode } from './device.ts';

let bundled: Record<string, string> | null = null;
const cache = new Map<string, string>();

function browserSources(): Record<string, string> {
  // Vite replaces this call with the file contents at build time.
  const mods = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
  const out: Record<string, string> = {};
  for (const [path, src] of Object.entries(mods)) out[path.replace(/^.*\//, '').replace(/\.wgsl$/, '')] = src;
  return out;
}

let nodeRead: ((family: string) => string) | null = null;

/** Must be awaited once before `shaderSource` in Node (the engine does it when it starts). */
export async function initShaderSources(): Promise<void> {
  if (!isNode || nodeRead) return;
  const fs = await import(/* @vite-ignore */ 'node:fs');
  const dir = new URL(/* @vite-ignore */ '../../shaders/', import.meta.url);
  nodeRead = (family) => {
    const file = new URL(`${family}.wgsl`, dir);
    if (!fs.existsSync(file)) throw new Error(`No shader family "${family}": ${file.pathname} does not exist.`);
    return fs.readFileSync(file, 'utf8');
  };
}

/** The WGSL text of a kernel family, e.g. `shaderSource('matmul')` for shaders/matmul.wgsl. */
export function shaderSource(family: string): string {
  const hit = cache.get(family);
  if (hit !== undefined) return hit;
  let src: string;
  if (isNode) {
    if (!nodeRead) throw new Error('initShaderSources() must be awaited before loading shaders in Node.');
    src = nodeRead(family);
  } else {
    bundled ??= browserSources();
    if (!(family in bundled)) throw new Error(`No shader family "${family}" in the bundle (have: ${Object.keys(bundled).join(', ')}).`);
    src = bundled[family];
  }
  cache.set(family, src);
  return src;
}

/**
 * Provide the WGSL of a kernel family from code instead of shaders/ (custom kernels; tests).
 * Replaces any earlier source of that family; pipelines already compiled keep the old code.
 */
export function defineShader(family: string, code: string): void {
  cache.set(family, code);
}
