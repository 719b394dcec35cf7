// Per-adapter kernel selection: the first time a kernel family meets a shape class on an adapter,
// time each candidate variant a few times and keep the fastest. Choices live in memory per engine
// and, in Node, in a JSON file under node_modules/.cache/webgpu-train/ (in a browser, in
// localStorage) keyed by the adapter's name and description, so later runs skip the measuring. WGTRAIN_TUNE=0 turns measuring off and
// uses the family's heuristic instead. Families supply the candidates and how to time one.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import { isNode, type AdapterReport } from '../gpu/device.ts';
import { nodeHost } from '../gpu/host.ts';

/** What a kernel family asks the tuner to decide. */
export interface TuneRequest {
  /** Kernel family, e.g. "matmul". */
  family: string;
  /**
   * Bumped when the family's variants or their timing change, so that choices cached on disk by
   * an older version are measured again. Default 1.
   */
  version?: number;
  /** Shape class, e.g. "m7.n9.k10.NT": choices are shared by every shape in the class. */
  shapeClass: string;
  /** Variants this adapter can run, in order of preference (the first is measured first). */
  candidates: readonly string[];
  /** The choice when measuring is off or every measurement failed. */
  heuristic: string;
  /**
   * Time one variant: seconds per run, lower is better, given the best time so far (to stop early
   * on a clearly slower variant). May throw: the variant is then skipped, with a warning.
   */
  measure(variant: string, bestSoFar: number): Promise<number>;
}

/** One decision, as kept in memory and on disk. */
export interface TuneRecord {
  variant: string;
  /** Seconds per run of every candidate measured (Infinity for a failure); empty for a heuristic choice. */
  seconds: Record<string, number>;
  how: 'measured' | 'heuristic' | 'disk';
}

/** Whether measuring is on (WGTRAIN_TUNE=0 turns it off). */
export function tuningEnabled(): boolean {
  return !(isNode && process.env.WGTRAIN_TUNE === '0');
}

/** Identity of an adapter for the disk cache: its name and its description. */
export function adapterKey(adapter: AdapterReport): string {
  return `${adapter.name} | ${adapter.description || 'no description'}`;
}

const memory = new WeakMap<Engine, Map<string, Promise<TuneRecord>>>();

/** The variant to use for this request: remembered, read from disk, measured, or the heuristic. */
export async function tunedChoice(e: Engine, req: TuneRequest): Promise<string> {
  return (await tuneRecord(e, req)).variant;
}

/** Like `tunedChoice`, with the timings behind the choice (for benchmarks and tests). */
export function tuneRecord(e: Engine, req: TuneRequest): Promise<TuneRecord> {
  let perEngine = memory.get(e);
  if (!perEngine) {
    perEngine = new Map();
    memory.set(e, perEngine);
  }
  const key = `${req.family}${req.version && req.version > 1 ? `@${req.version}` : ''}:${req.shapeClass}`;
  let rec = perEngine.get(key);
  if (!rec) {
    rec = decide(e, req, key);
    perEngine.set(key, rec);
  }
  return rec;
}

/** Forget an engine's in-memory choices; the disk cache is untouched. */
export function forgetTuning(e: Engine): void {
  memory.delete(e);
}

async function decide(e: Engine, req: TuneRequest, key: string): Promise<TuneRecord> {
  if (!req.candidates.includes(req.heuristic)) {
    throw new Error(`Tuner for ${req.family}: heuristic "${req.heuristic}" is not among the candidates (${req.candidates.join(', ')}).`);
  }
  if (!tuningEnabled() || req.candidates.length === 1) return { variant: req.heuristic, seconds: {}, how: 'heuristic' };
  const adapter = adapterKey(e.adapter);
  const fromDisk = (await readDisk())[adapter]?.[key];
  if (fromDisk && req.candidates.includes(fromDisk)) return { variant: fromDisk, seconds: {}, how: 'disk' };

  // Two passes over the candidates, each variant's figure the best of its runs: a passing burst of
  // load (a software adapter shares the CPU) then hurts every candidate, not just the one measured
  // at that moment. The second pass re-measures only those within 1.5x of the best.
  const seconds: Record<string, number> = {};
  let best = Infinity;
  let bestVariant = req.heuristic;
  for (let pass = 0; pass < 2; pass++) {
    for (const v of req.candidates) {
      if (pass > 0 && !(seconds[v] < 1.5 * best)) continue;
      try {
        const s = Math.min(await req.measure(v, best), seconds[v] ?? Infinity);
        seconds[v] = s;
        if (s < best) {
          best = s;
          bestVariant = v;
        }
      } catch (err) {
        seconds[v] = Infinity;
        console.warn(`webgpu-train: tuning ${req.family} [${req.shapeClass}]: variant ${v} skipped: ${(err as Error).message}`);
      }
    }
  }
  if (best < Infinity) await writeDisk(adapter, key, bestVariant);
  return { variant: bestVariant, seconds, how: 'measured' };
}

// ---- timing ------------------------------------------------------------------------------------

export interface TimingOptions {
  /** Timed repetitions after the warm-up run (the minimum is kept). Default 3. */
  repeats?: number;
  /** Stop after the warm-up when it took more than this many seconds. Default Infinity. */
  giveUpAfter?: number;
  /** Batch enough dispatches per submission that one batch lasts about this long. Default 2 ms. */
  minBatchSeconds?: number;
}

/**
 * Seconds per run of a dispatch (or of a sequence of dispatches run in order), from wall-clock time
 * around queue.onSubmittedWorkDone: one warm-up run, then the minimum over a few timed batches
 * (short kernels are batched so that submission overhead does not dominate). Work already recorded
 * on the engine is finished first.
 */
export async function timeDispatch(e: Engine, d: Dispatch | readonly Dispatch[], opts: TimingOptions = {}): Promise<number> {
  const { repeats = 3, giveUpAfter = Infinity, minBatchSeconds = 0.002 } = opts;
  const run = Array.isArray(d) ? () => e.run(...(d as readonly Dispatch[])) : () => e.run(d as Dispatch);
  await e.sync();
  let t0 = performance.now();
  run();
  await e.sync();
  const warm = (performance.now() - t0) / 1000;
  if (warm > giveUpAfter) return warm;
  const batch = Math.max(1, Math.min(64, Math.ceil(minBatchSeconds / Math.max(warm, 1e-6))));
  let best = warm;
  for (let r = 0; r < repeats; r++) {
    t0 = performance.now();
    for (let i = 0; i < batch; i++) run();
    await e.sync();
    best = Math.min(best, (performance.now() - t0) / 1000 / batch);
  }
  return best;
}

// ---- disk cache (Node only) --------------------------------------------------------------------

type DiskCache = Record<string, Record<string, string>>;
let diskPromise: Promise<DiskCache> | null = null;

/** The cache file: $WGTRAIN_CACHE_DIR/tune.json, or node_modules/.cache/webgpu-train/tune.json of this package. */
export function tuneCachePath(): string | null {
  if (!isNode) return null;
  const dir = process.env.WGTRAIN_CACHE_DIR || nodeHost().cacheDir;
  return `${dir.replace(/\/?$/, '/')}tune.json`;
}

/** In a browser, choices persist in localStorage under this key (when storage is available). */
export const BROWSER_CACHE_KEY = 'webgpu-train:tune';

/** Where a browser build keeps its choices: localStorage's two methods, or a stand-in. */
export type TuneStorage = Pick<Storage, 'getItem' | 'setItem'>;
let storageOverride: TuneStorage | null = null;

/**
 * Keep the choices in `storage` instead of localStorage: a Web Worker has no localStorage, so the
 * demo's training worker passes one backed by the page's. Set before the first kernel is tuned.
 */
export function setTuneStorage(storage: TuneStorage | null): void {
  storageOverride = storage;
  diskPromise = null;
}

function browserStorage(): TuneStorage | null {
  if (storageOverride) return storageOverride;
  try {
    return isNode ? null : (globalThis.localStorage ?? null);
  } catch {
    return null; // storage disabled (privacy settings, sandboxed frames)
  }
}

async function readDisk(): Promise<DiskCache> {
  const storage = browserStorage();
  if (storage) {
    diskPromise ??= Promise.resolve(parseCache(storage.getItem(BROWSER_CACHE_KEY)));
    return diskPromise;
  }
  const path = tuneCachePath();
  if (!path) return {};
  // Missing or unreadable: measure again.
  diskPromise ??= Promise.resolve(parseCache(nodeHost().readText(path)));
  return diskPromise;
}

function parseCache(text: string | null): DiskCache {
  try {
    const parsed = text ? JSON.parse(text) : null;
    return parsed && typeof parsed === 'object' ? (parsed as DiskCache) : {};
  } catch {
    return {};
  }
}

async function writeDisk(adapter: string, key: string, variant: string): Promise<void> {
  const cache = await readDisk();
  cache[adapter] = { ...cache[adapter], [key]: variant };
  const storage = browserStorage();
  if (storage) {
    try {
      storage.setItem(BROWSER_CACHE_KEY, JSON.stringify({ ...parseCache(storage.getItem(BROWSER_CACHE_KEY)), ...cache }));
    } catch (err) {
      console.warn(`webgpu-train: could not keep the tuning choices in localStorage: ${(err as Error).message}`);
    }
    return;
  }
  const path = tuneCachePath();
  if (!path) return;
  const host = nodeHost();
  try {
    // Another process may have written choices since we read: merge, then replace atomically.
    const current = parseCache(host.readText(path));
    for (const [a, entries] of Object.entries(cache)) current[a] = { ...current[a], ...entries };
    host.writeText(path, JSON.stringify(current, null, 1));
  } catch (err) {
    console.warn(`webgpu-train: could not write the tuning cache ${path}: ${(err as Error).message}`);
  }
}

/** Drop the in-process copy of the disk cache, so that the next decision reads the file again. */
export function reloadTuneCache(): void {
  diskPromise = null;
}
