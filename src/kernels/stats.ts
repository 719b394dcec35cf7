// Statistics of a tensor on the GPU (shaders/stats.wgsl): a record of figures (count, mean, std,
// min, max, L2 norm, values <= 0, non-finite values, and the change since a saved copy) and a
// fixed-bin histogram, written into small results buffers for a later readback. Built once as
// replayable dispatches, like every other kernel: a training step records them on the steps that
// take statistics.
import type { BufferArg, Dispatch, Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { describe } from '../ops/shape.ts';
import { checkBins, STAT_RECORD } from '../ops/stats.ts';

/** Invocations per workgroup of the reductions (a constant of the shader). */
const WG = 64;
/** Most workgroups a tensor's first pass uses: stats_finish combines one per invocation. */
export const MAX_STAT_GROUPS = WG;
/** f32 words of one Partial struct in the shader. */
const PARTIAL_WORDS = 9;

/** Floats of the partials scratch that every tensor's statistics share (one after the other). */
export const STAT_PARTIALS_SIZE = MAX_STAT_GROUPS * PARTIAL_WORDS;

/**
 * Workgroups of the passes over a tensor of n values. A GPU wants many: up to 64, each invocation
 * then reading about 16 values. A CPU adapter runs a workgroup on one thread and pays for each
 * one's barriers and start: on SwiftShader 64 workgroups took several times as long as 2 over the
 * same 400K values, and one workgroup per 256K values, at most 4, was the fastest choice measured.
 */
export function statGroups(e: Engine, n: number): number {
  const per = e.adapter.isSoftware ? 262_144 : WG * 16;
  return Math.min(e.adapter.isSoftware ? 4 : MAX_STAT_GROUPS, Math.max(1, Math.ceil(n / per)));
}

/** Where a tensor's statistics go. */
export interface StatsOut {
  /** Scratch of at least STAT_PARTIALS_SIZE floats, shared by every tensor. */
  partials: Tensor;
  /** Records of STAT_RECORD floats (src/ops/stats.ts). */
  values: Tensor;
  /** Histogram counts, u32 (a Tensor is only its bytes here). */
  counts: Tensor;
}

export interface TensorStatsOptions {
  /** Index of the record in `values` (it starts at record * STAT_RECORD). */
  record: number;
  /** Histogram bins (1..256), or 0 for none. */
  bins: number;
  /** First count of the histogram in `counts` (with bins > 0). */
  hist?: number;
  /**
   * A copy of x taken earlier (x before its optimizer update): the record then also holds
   * ||x - prev|| and ||prev||. The first n values of the buffer are read.
   */
  prev?: BufferArg;
  /** Workgroups of the passes over x (default statGroups; at most 64). */
  groups?: number;
}

/**
 * The dispatches that write x's record (and histogram) into `out`, in order: partial sums per
 * workgroup, their combination (which also zeroes the histogram), the histogram. x: any shape.
 */
export async function tensorStats(e: Engine, x: Tensor, out: StatsOut, opts: TensorStatsOptions): Promise<Dispatch[]> {
  const name = 'Kernel stats';
  const { record, bins } = opts;
  const hist = opts.hist ?? 0;
  if (bins !== 0) checkBins(name, bins);
  if (!Number.isInteger(record) || record < 0 || (record + 1) * STAT_RECORD > out.values.size) {
    throw new Error(`${name}: record ${record} does not fit ${describe(out.values)} (${STAT_RECORD} values per record).`);
  }
  if (bins && (!Number.isInteger(hist) || hist < 0 || hist + bins > out.counts.size)) {
    throw new Error(`${name}: histogram counts [${hist}, ${hist + bins}) do not fit ${describe(out.counts)}.`);
  }
  if (out.partials.size < STAT_PARTIALS_SIZE) throw new Error(`${name}: the partials scratch ${describe(out.partials)} needs ${STAT_PARTIALS_SIZE} values.`);
  if (opts.prev && opts.prev.byteLength < x.byteLength) {
    throw new Error(`${name}: the saved copy "${opts.prev.label ?? 'prev'}" has ${opts.prev.byteLength} bytes; ${describe(x)} needs ${x.byteLength}.`);
  }
  const groups = opts.groups ?? statGroups(e, x.size);
  // The bulk is read four values at a time, the last n % 4 one by one: the same buffer twice.
  const quads = (b: BufferArg, label: string): BufferArg => ({ buffer: b.buffer, byteLength: Math.max(1, Math.floor(x.size / 4)) * 16, label });
  const x4 = quads(x, `${x.label} as vec4`);
  if (!Number.isInteger(groups) || groups < 1 || groups > MAX_STAT_GROUPS) throw new Error(`${name}: groups must be a whole number from 1 to ${MAX_STAT_GROUPS}, got ${groups}.`);
  const params = { n: x.size, groups, base: record * STAT_RECORD, hist, bins };
  const ds: Dispatch[] = [];
  if (opts.prev) {
    const k = await e.kernel('stats', 'stats_partials_delta');
    const prev = { buffer: opts.prev.buffer, byteLength: x.byteLength, label: opts.prev.label };
    ds.push(e.dispatch(k, { x4, x, prev4: quads(prev, `${prev.label} as vec4`), prev, partials: out.partials }, [groups, 1, 1], params));
  } else {
    const k = await e.kernel('stats', 'stats_partials');
    ds.push(e.dispatch(k, { x4, x, partials: out.partials }, [groups, 1, 1], params));
  }
  ds.push(e.dispatch(await e.kernel('stats', 'stats_finish'), { partials_in: out.partials, values: out.values, counts: out.counts }, [1, 1, 1], params));
  if (bins) ds.push(e.dispatch(await e.kernel('stats', 'stats_histogram'), { x4, x, values_in: out.values, counts: out.counts }, [groups, 1, 1], params));
  return ds;
}
