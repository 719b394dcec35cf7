// Timing our training steps: each step recorded through StepRecorder (what fit() records per
// step), submitted and waited for, as the peers wait for their loss every step.
import type { Engine } from '../src/gpu/engine.ts';
import type { StepRecorder } from '../src/train/bench-step.ts';
import { timeSteps, type StepPlan, type TimedSteps } from './timing.ts';

/** Time steps by `plan`; the recorder's loss window must hold them all. Losses are read outside the timed steps. */
export async function timeRecordedSteps(e: Engine, rec: StepRecorder, plan: StepPlan): Promise<TimedSteps> {
  let n = 0;
  let firstLoss = NaN;
  const t = await timeSteps(async () => {
    rec.record();
    await e.sync();
    // The first step is always an untimed warm-up step: read its loss there.
    if (n++ === 0) firstLoss = (await rec.readLosses())[0];
    return undefined;
  }, plan);
  const losses = await rec.readLosses();
  const lastLoss = losses[losses.length - 1];
  if (!Number.isFinite(lastLoss)) throw new Error(`training gave a non-finite loss (${lastLoss})`);
  return { samples: t.samples, firstLoss, lastLoss };
}
