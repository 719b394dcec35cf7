// Where a training step's time goes: every dispatch of one step timed on the device on its own
// (median of a few runs), then summed per kernel. Answers "which kernels dominate".
import type { Engine } from '../src/gpu/engine.ts';
import type { StepPhase } from '../src/train/step.ts';
import type { FixedBatchSteps } from './recorded-steps.ts';
import { median } from './timing.ts';
import type { GpuTimer, TimingMethod } from './gpu-timer.ts';

export interface DispatchTime {
  phase: StepPhase;
  index: number;
  kernel: string;
  workgroups: [number, number, number];
  ms: number;
}

export interface StepProfile {
  method: TimingMethod;
  /** Sum of the dispatch times (dispatches run alone, so this can exceed a real step's GPU time). */
  totalMs: number;
  dispatches: DispatchTime[];
  /** Per kernel name, largest first. */
  byKernel: { kernel: string; ms: number; count: number }[];
  /** Per phase of the step, in step order. */
  byPhase: { phase: StepPhase; ms: number }[];
}

/** Time each dispatch of the recorder's next step alone, `runs` times, and keep the medians. */
export async function profileStep(e: Engine, rec: FixedBatchSteps, timer: GpuTimer, runs = 3): Promise<StepProfile> {
  const times: number[][] = [];
  let list = rec.dispatches();
  for (let r = 0; r < runs; r++) {
    if (r > 0) list = rec.dispatches();
    times.push(await timer.time(list.map((d) => [d.dispatch])));
  }
  await e.sync();
  const dispatches = list.map((d, i) => ({
    phase: d.phase,
    index: d.index,
    kernel: d.dispatch.kernel.name,
    workgroups: d.dispatch.workgroups,
    ms: median(times.map((t) => t[i])),
  }));
  const byName = new Map<string, { kernel: string; ms: number; count: number }>();
  for (const d of dispatches) {
    const k = byName.get(d.kernel) ?? { kernel: d.kernel, ms: 0, count: 0 };
    k.ms += d.ms;
    k.count++;
    byName.set(d.kernel, k);
  }
  const phases: StepPhase[] = ['forward', 'loss', 'backward', 'clip', 'optimizer', 'stats'];
  const byPhase = phases.filter((phase) => dispatches.some((d) => d.phase === phase)).map((phase) => ({ phase, ms: dispatches.filter((d) => d.phase === phase).reduce((t, d) => t + d.ms, 0) }));
  return {
    method: timer.method,
    byPhase,
    totalMs: dispatches.reduce((s, d) => s + d.ms, 0),
    dispatches,
    byKernel: [...byName.values()].sort((a, b) => b.ms - a.ms),
  };
}
