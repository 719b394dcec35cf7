// Timing our training steps: each step recorded through StepRecorder (what fit() records per
// step), submitted and waited for, as the peers wait for their loss every step.
import type { Engine } from '../src/gpu/engine.ts';
import type { StepRecorder } from '../src/train/bench-step.ts';
import type { TimedSteps } from './common.ts';

/** `warmup` untimed steps, then `steps` timed ones; the recorder's window must hold them all. */
export async function timeRecordedSteps(e: Engine, rec: StepRecorder, warmup: number, steps: number): Promise<TimedSteps> {
  let firstLoss = NaN;
  for (let i = 0; i < Math.max(1, warmup); i++) {
    rec.record();
    await e.sync();
    if (i === 0) firstLoss = (await rec.readLosses())[0];
  }
  const samples: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    rec.record();
    await e.sync();
    samples.push(performance.now() - t0);
  }
  const losses = await rec.readLosses();
  const lastLoss = losses[losses.length - 1];
  if (!Number.isFinite(lastLoss)) throw new Error(`training gave a non-finite loss (${lastLoss})`);
  return { samples, firstLoss, lastLoss };
}
