// Statistics of a tensor on the GPU (shaders/stats.wgsl): a record of figures (count, mean, std,
// min, max, L2 norm, values <= 0, non-finite values, and the change since a saved copy) and a
// fixed-bin histogram, written into small results buffers for a later readback. Built once as
// replayable dispatches, like every other kernel: a training step records them on the steps that
// take statistics.
import { grid1d, type BufferArg, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { describe } from '../ops/shape.ts';
import { checkBins, STAT_RECORD } from '../ops/stats.ts';

/** Invocations per workgroup of the reductions (a constant of the shader). */
const WG = 64;
/** Most workgroups a tensor's first pass uses: stats_finish combines one per invocation. */
export const MAX_STAT_GROUPS = WG;
/** f32 words of one Partial struct in the shader. */
const PARTIAL_WORDS = 9;
/** Values per invocation below which a tensor uses fewer workgroups (fewer partials to combine). */
const PER_INVOCATION = 16;
const COPY_WG = 256;

/** Floats of the partials scratch that every tensor's statistics share (one after the other). */
export const STAT_PARTIALS_SIZE = MAX_STAT_GROUPS * PARTIAL_WORDS;

/** Workgroups of the first pass for a tensor of n values. */
export function statGroups(n: number): number {
  return Math.min(MAX_STAT_GROUPS, Math.max(1, Math.ceil(n / (WG * PER_INVOCATION))));
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
  const groups = statGroups(x.size);
  const params = { n: x.size, groups, base: record * STAT_RECORD, hist, bins };
  const ds: Dispatch[] = [];
  if (opts.prev) {
    const k = await e.kernel('stats', 'stats_partials_delta');
    ds.push(e.dispatch(k, { x, prev: { buffer: opts.prev.buffer, byteLength: x.byteLength, label: opts.prev.label }, partials: out.partials }, [groups, 1, 1], params));
  } else {
    const k = await e.kernel('stats', 'stats_partials');
    ds.push(e.dispatch(k, { x, partials: out.partials }, [groups, 1, 1], params));
  }
  ds.push(e.dispatch(await e.kernel('stats', 'stats_finish'), { partials_in: out.partials, values: out.values, counts: out.counts }, [1, 1, 1], params));
  if (bins) ds.push(e.dispatch(await e.kernel('stats', 'stats_histogram'), { x, values_in: out.values, counts: out.counts }, [groups, 1, 1], params));
  return ds;
}

/** prev[0, n) = x (n = x.size): the copy that `tensorStats` with `prev` compares against. */
export async function statsCopy(e: Engine, x: Tensor, prev: BufferArg): Promise<Dispatch> {
  if (prev.byteLength < x.byteLength) throw new Error(`Kernel stats.stats_copy: "${prev.label ?? 'prev'}" has ${prev.byteLength} bytes; ${describe(x)} needs ${x.byteLength}.`);
  const k = await e.kernel('stats', 'stats_copy', { COPY_WG });
  return e.dispatch(k, { x, prev_out: { buffer: prev.buffer, byteLength: x.byteLength, label: prev.label } }, grid1d(x.size, COPY_WG), { n: x.size, groups: 0, base: 0, hist: 0, bins: 0 });
}
