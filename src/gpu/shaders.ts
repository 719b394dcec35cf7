// WGSL sources, one file per kernel family under shaders/: the single source of truth for the
// Node build and the browser build (shader-files.ts says how each gets the files).
//
// WGSL has no include, so this module adds one: a line `#include "_name.wgsl"` is replaced by that
// file of shaders/ (itself expanded; each file at most once per family, so two includes of one
// piece are harmless). Pieces meant only for inclusion start with "_" and hold what families share
// (e.g. the matmul epilogue). Compile errors are mapped back to the file and line they came from
// (`shaderLineOrigin`).
import { loadShaderFiles } from './shader-files.ts';

/** The files of shaders/ as written, by name; loaded once by `initShaderSources`. */
let files: Record<string, string> | null = null;
/** Expanded sources by family. */
const cache = new Map<string, string>();
/** Sources given by `defineShader`, as written (they take the place of shaders/ files). */
const defined = new Map<string, string>();

/** Where each line of an expanded family came from: file name (without .wgsl) and 1-based line. */
const origins = new Map<string, { file: string; line: number }[]>();
const INCLUDE = /^\s*#include\s+"([A-Za-z0-9_-]+)\.wgsl"\s*$/;

/** Must be awaited once before `shaderSource` (the engine does it when it starts). */
export async function initShaderSources(): Promise<void> {
  files ??= await loadShaderFiles();
}

/** The WGSL text of one file of shaders/ as written (no include expansion). */
function rawSource(name: string): string {
  if (!files) throw new Error('initShaderSources() must be awaited before loading shaders (Engine.create does it).');
  if (!Object.hasOwn(files, name)) throw new Error(`No shader family "${name}": there is no shaders/${name}.wgsl (have: ${Object.keys(files).sort().join(', ')}).`);
  return files[name];
}

/** Expand `#include` lines of `text` (from file `name`), recording each output line's origin. */
function expand(name: string, text: string, seen: Set<string>, out: string[], where: { file: string; line: number }[], chain: string[]): void {
  text.split('\n').forEach((line, i) => {
    const m = INCLUDE.exec(line);
    if (!m) {
      out.push(line);
      where.push({ file: name, line: i + 1 });
      return;
    }
    const inc = m[1];
    if (chain.includes(inc)) throw new Error(`shaders/${name}.wgsl line ${i + 1}: #include "${inc}.wgsl" includes itself (${[...chain, inc].join(' -> ')}).`);
    if (seen.has(inc)) return;
    seen.add(inc);
    let body: string;
    try {
      body = defined.get(inc) ?? rawSource(inc);
    } catch (err) {
      throw new Error(`shaders/${name}.wgsl line ${i + 1}: cannot #include "${inc}.wgsl": ${(err as Error).message}`);
    }
    expand(inc, body, seen, out, where, [...chain, inc]);
  });
}

/** The WGSL text of a kernel family, e.g. `shaderSource('matmul')` for shaders/matmul.wgsl, includes expanded. */
export function shaderSource(family: string): string {
  const hit = cache.get(family);
  if (hit !== undefined) return hit;
  const out: string[] = [];
  const where: { file: string; line: number }[] = [];
  expand(family, defined.get(family) ?? rawSource(family), new Set([family]), out, where, [family]);
  const src = out.join('\n');
  cache.set(family, src);
  origins.set(family, where);
  return src;
}

/** The file and line of shaders/ that line `line` (1-based) of a family's expanded source came from. */
export function shaderLineOrigin(family: string, line: number): { file: string; line: number } {
  return origins.get(family)?.[line - 1] ?? { file: family, line };
}

/**
 * Provide the WGSL of a kernel family from code instead of shaders/ (custom kernels; tests).
 * Replaces any earlier source of that family; pipelines already compiled keep the old code. Its
 * #include lines are expanded when the family is first used.
 */
export function defineShader(family: string, code: string): void {
  cache.delete(family);
  origins.delete(family);
  defined.set(family, code);
}
