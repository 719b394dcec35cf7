// Timing our training steps: each step goes through the library's TrainStep (what fit() records per
// step, the batch upload included), submitted and waited for, as the peers wait for their loss
// every step; and fit()'s pacing (two steps in flight) for throughput.
import type { Engine } from '../src/gpu/engine.ts';
import type { PhasedDispatch, StepOptions, TrainStep } from '../src/train/step.ts';
import { timeSteps, type StepPlan, type TimedSteps } from './timing.ts';

/** A TrainStep on one fixed batch: each step uploads it again, as fit() uploads its batches. */
export class FixedBatchSteps {
  private inflight: Promise<unknown>[] = [];
  /** Options of every step recorded from now on (e.g. a statistics recorder). */
  options: StepOptions = {};

  constructor(
    readonly engine: Engine,
    readonly step: TrainStep,
    private x: Float32Array,
    private targets: Float32Array,
  ) {}

  /** Record and submit one step (does not wait). */
  record(): void {
    this.step.write(this.x, this.targets);
    this.step.record(this.options);
  }

  /** The next step's dispatches by phase (the batch uploaded, the step's values written). */
  dispatches(): PhasedDispatch[] {
    this.step.write(this.x, this.targets);
    return this.step.dispatches(this.options);
  }

  /** Record `n` steps as fit() paces them (at most two in flight, losses read every window), then wait. */
  async run(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      this.record();
      this.inflight.push(this.engine.device.queue.onSubmittedWorkDone());
      if (this.inflight.length > 2) await this.inflight.shift();
      if (this.step.pending >= this.step.window) await this.readLosses();
    }
    await Promise.all(this.inflight.splice(0));
    await this.engine.sync();
  }

  /** Mean loss of each step since the last read, oldest first. */
  async readLosses(): Promise<number[]> {
    return (await this.step.readLosses()).losses;
  }
}

/** Time steps by `plan`; the step's loss window must hold them all. Losses are read outside the timed steps. */
export async function timeRecordedSteps(e: Engine, rec: FixedBatchSteps, plan: StepPlan): Promise<TimedSteps> {
  let n = 0;
  let firstLoss = NaN;
  const t = await timeSteps(async () => {
    rec.record();
    await e.sync();
    // The first step is always an untimed warm-up step: read its loss there.
    if (n++ === 0) firstLoss = (await rec.readLosses())[0];
    return undefined;
  }, plan);
  const losses = [firstLoss, ...(await rec.readLosses())];
  const lastLoss = losses[losses.length - 1];
  if (!Number.isFinite(lastLoss)) throw new Error(`training gave a non-finite loss (${lastLoss})`);
  return { samples: t.samples, firstLoss, lastLoss, losses };
}
