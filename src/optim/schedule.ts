// Learning-rate schedules: pure functions of the global step (and steps per epoch), so that a
// resumed run gets exactly the rates an uninterrupted one would.

/** lr at a step (0-based), given the base rate. */
export type Schedule = (step: number, baseLr: number) => number;

export type ScheduleConfig =
  | { kind: 'constant' }
  | { kind: 'step'; everySteps: number; gamma: number }
  | { kind: 'cosine'; warmupSteps: number; totalSteps: number; minLr?: number };

/** Multiply the rate by `gamma` every `everySteps` steps. */
export function stepDecay(everySteps: number, gamma: number): Schedule {
  if (!(everySteps >= 1)) throw new Error(`step decay: everySteps must be >= 1, got ${everySteps}.`);
  return (step, lr) => lr * gamma ** Math.floor(step / everySteps);
}

/** Linear warm-up from 0 over `warmupSteps`, then cosine decay to `minLr` at `totalSteps`. */
export function cosineWithWarmup(warmupSteps: number, totalSteps: number, minLr = 0): Schedule {
  return (step, lr) => {
    if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
    const span = Math.max(1, totalSteps - warmupSteps);
    const t = Math.min(1, (step - warmupSteps) / span);
    return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * t));
  };
}

export function makeSchedule(c: ScheduleConfig | undefined): Schedule {
  if (!c || c.kind === 'constant') return (_s, lr) => lr;
  if (c.kind === 'step') return stepDecay(c.everySteps, c.gamma);
  if (c.kind === 'cosine') return cosineWithWarmup(c.warmupSteps, c.totalSteps, c.minLr);
  throw new Error(`Unknown schedule ${JSON.stringify(c)}.`);
}
