// The WGSL files of shaders/, by name without ".wgsl", as the sources load them: Node (tests, the
// CLI and benchmarks through tsx) reads the directory, Vite (the demo) bundles the files through
// import.meta.glob. The package build replaces this module with one that holds the text of every
// file (scripts/build.mjs), so the built library loads its shaders the same way in Node and in any
// bundler, with no file access.
import { isNode } from './device.ts';

/** Every file of shaders/: name (without .wgsl) to text. */
export async function loadShaderFiles(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (isNode) {
    const fs = await import(/* @vite-ignore */ 'node:fs');
    const dir = new URL(/* @vite-ignore */ '../../shaders/', import.meta.url);
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith('.wgsl')) out[name.slice(0, -'.wgsl'.length)] = fs.readFileSync(new URL(name, dir), 'utf8');
    }
    return out;
  }
  // Vite replaces this call with the files' contents at build time.
  const mods = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
  for (const [path, src] of Object.entries(mods)) out[path.replace(/^.*\//, '').replace(/\.wgsl$/, '')] = src;
  return out;
}
