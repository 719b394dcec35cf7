// Learning-rate schedules: pure functions of the global step (and steps per epoch), so that a
// resumed run gets exactly the rates an uninterrupted one would.

/** lr at a step (0-based), given the base rate. */
export type Schedule = (step: number, baseLr: number) => number;

export type ScheduleConfig = { kind: 'constant' } | { kind: 'step'; everySteps: number; gamma: number } | { kind: 'cosine'; warmupSteps: number; totalSteps: number; minLr?: number };

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

/** The schedules the CLI makes for a run of `totalSteps`: cosine down to 0 at the end, or a tenth at each third. */
export function scheduleFor(kind: ScheduleConfig['kind'], warmupSteps: number, totalSteps: number): ScheduleConfig {
  if (kind === 'cosine') return { kind, warmupSteps, totalSteps };
  if (kind === 'step') return { kind, everySteps: Math.max(1, Math.ceil(totalSteps / 3)), gamma: 0.1 };
  return { kind: 'constant' };
}

/**
 * A schedule planned for one run length, refitted to a new one (a resumed run told to train for
 * more or fewer epochs than it was planned for): cosine keeps its warm-up and floor and ends at the
 * new last step; step decay keeps its factor with the boundaries at the new thirds. Null when
 * nothing changes (a constant rate, or the same length). Without this, a run resumed for more
 * epochs after its cosine ended would train at its floor (0) for all of them.
 */
export function refitSchedule(c: ScheduleConfig | undefined, totalSteps: number): ScheduleConfig | null {
  if (c?.kind === 'cosine' && c.totalSteps !== totalSteps) return { ...c, totalSteps };
  if (c?.kind === 'step') {
    const everySteps = Math.max(1, Math.ceil(totalSteps / 3));
    return everySteps === c.everySteps ? null : { ...c, everySteps };
  }
  return null;
}
