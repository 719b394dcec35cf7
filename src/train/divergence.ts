// The divergence guards of the fit loop. A non-finite loss always stops training; optionally, so
// does a loss that keeps finite but grows: the mean loss of a read window (the steps between two
// loss reads) more than `factor` times the lowest window mean of the last `window` steps. Both
// throw DivergenceError before the caller can save the diverged state, so the last checkpoint
// written stays the last good one.

/** Training stopped because the loss diverged, at `step`. */
export class DivergenceError extends Error {
  constructor(
    readonly step: number,
    readonly loss: number,
    /** What was seen, when it was more than a non-finite loss (a growth, a non-finite weight). */
    readonly detail?: string,
  ) {
    super(`Training diverged: ${detail ?? `the loss became ${loss} at step ${step}`}. Try a lower learning rate; the last checkpoint (if any) is untouched.`);
    this.name = 'DivergenceError';
  }
}

export interface DivergenceOptions {
  /** Stop when a window's mean loss exceeds this many times the lowest recent one (> 1). */
  factor: number;
  /** How many steps back the lowest mean is looked for. */
  window: number;
}

/** Watches window mean losses for growth; throws DivergenceError when the loss has grown too much. */
export class DivergenceGuard {
  private recent: { step: number; loss: number }[] = [];

  constructor(readonly opts: DivergenceOptions) {
    if (!(opts.factor > 1)) throw new Error(`divergence guard: factor must be > 1, got ${opts.factor}.`);
    if (!(Number.isInteger(opts.window) && opts.window >= 1)) throw new Error(`divergence guard: window must be a positive integer of steps, got ${opts.window}.`);
  }

  /** The mean loss of the steps read up to `step` (the step count after them). */
  check(step: number, meanLoss: number): void {
    this.recent = this.recent.filter((r) => r.step >= step - this.opts.window);
    let low: { step: number; loss: number } | null = null;
    for (const r of this.recent) if (!low || r.loss < low.loss) low = r;
    this.recent.push({ step, loss: meanLoss });
    // A loss at or below 0 (an exact fit) has no meaningful ratio; growth from it is not divergence.
    if (low && low.loss > 0 && meanLoss > this.opts.factor * low.loss) {
      const ratio = meanLoss / low.loss;
      throw new DivergenceError(
        step,
        meanLoss,
        `the mean loss grew ${ratio.toPrecision(3)}-fold, from ${low.loss.toPrecision(4)} (steps to ${low.step}) to ${meanLoss.toPrecision(4)} (steps to ${step}), over the limit of ${this.opts.factor}-fold within ${this.opts.window} steps`,
      );
    }
  }
}
