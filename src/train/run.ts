// A training run that never loses more than a few minutes of work: `fit` with checkpoints within
// epochs (every N steps or every few minutes) and at every epoch end, a clean stop on request (the
// state written where it stopped, mid-epoch included), the divergence guards, and recovery from a
// lost GPU device: one new device, the run resumed from the last checkpoint (which a mid-epoch
// resume makes exact). The last checkpoint is also held in memory, so recovery works without
// files; files are written through a CheckpointFiles-like store when one is given.
import type { Engine } from '../gpu/engine.ts';
import type { Dataset } from '../data/dataset.ts';
import { checkpointBytes, readCheckpoint, trainerFromCheckpoint, type DatasetInfo, type RunRecord } from './checkpoint.ts';
import { DivergenceError } from './divergence.ts';
import { describePosition } from './resume.ts';
import type { TrainState } from './step.ts';
import type { EpochEvent, FitOptions, Trainer } from './trainer.ts';

/** Where checkpoints are written (CheckpointFiles in Node). */
export interface CheckpointStore {
  readonly path: string;
  write(bytes: Uint8Array, step: number): Promise<void>;
}

export interface RunOptions {
  /** Epochs to reach in total (the trainer's state.epoch counts those done). */
  epochs: number;
  /** fit's options for a trainer: called for the first one, and for its successor after a lost device. */
  fit(trainer: Trainer): Omit<FitOptions, 'epochs' | 'shouldStop' | 'onCheckpoint' | 'checkpointEvery'>;
  /** What checkpoints say about the data. */
  dataset: DatasetInfo;
  /** The run's batch size, epochs, augmentation and data source, for checkpoints (exports read it). */
  run?: RunRecord;
  /** Where checkpoints go; null keeps them in memory only (for recovery from a lost device). */
  store: CheckpointStore | null;
  /** Checkpoints within epochs: every this many steps, and/or after this many seconds. */
  saveEvery?: { steps?: number; seconds?: number };
  /** Why to stop after the current step (a signal, a time budget), or null to go on. */
  stopRequested?(): string | null;
  /** A new engine after the device is lost; asked at most once. Absent: a lost device ends the run. */
  newEngine?(): Promise<Engine>;
  /** The checkpoint the trainer was made from (a resumed file: its bytes and path); else one is taken, in memory, before the first step. */
  startFrom?: { bytes: Uint8Array; path: string | null };
  /** Each checkpoint written (to the store, or to memory when there is none). */
  onSaved?(state: TrainState, why: 'interval' | 'epoch' | 'stop'): void;
  log?(line: string): void;
}

export type RunOutcome = 'finished' | 'stopped' | 'diverged' | 'device-lost' | 'failed';

export interface RunResult {
  /** The trainer training ended with: a new one (on a new engine) after recovering from device loss. */
  trainer: Trainer;
  /** Every epoch completed in this run, in order. */
  history: EpochEvent[];
  outcome: RunOutcome;
  /** What asked to stop (outcome 'stopped'). */
  stopReason?: string;
  /** What ended the run otherwise. */
  error?: Error;
  /** The last checkpoint: where training stood, and its file (null when held in memory only). */
  last: { state: TrainState; path: string | null };
  /** Whether training moved to a new device after the first was lost. */
  recovered: boolean;
}

/** Run `trainer` on `data` up to `opts.epochs` epochs; never throws for the outcomes above. */
export async function runTraining(trainer: Trainer, data: Dataset, opts: RunOptions): Promise<RunResult> {
  const history: EpochEvent[] = [];
  let lastBytes = opts.startFrom?.bytes ?? (await checkpointBytes(trainer, opts.dataset, { run: opts.run }));
  let last = { state: snapshot(trainer.state), path: opts.startFrom?.path ?? null };
  let recovered = false;

  const save = async (t: Trainer, why: 'interval' | 'epoch' | 'stop') => {
    // Read back and checked for NaN/Inf before anything is written: a diverged state never replaces a good one.
    const bytes = await checkpointBytes(t, opts.dataset, { requireFinite: true, run: opts.run });
    await opts.store?.write(bytes, t.state.step);
    lastBytes = bytes;
    last = { state: snapshot(t.state), path: opts.store?.path ?? null };
    opts.onSaved?.(last.state, why);
  };
  const result = (outcome: RunOutcome, extra: Partial<RunResult> = {}): RunResult => ({ trainer, history, outcome, last, recovered, ...extra });

  for (;;) {
    const t = trainer;
    const fit = opts.fit(t);
    try {
      await t.fit(data, {
        ...fit,
        epochs: Math.max(0, opts.epochs - t.state.epoch),
        checkpointEvery: opts.saveEvery,
        onCheckpoint: () => save(t, 'interval'),
        shouldStop: () => opts.stopRequested?.() != null,
        onEpochEnd: async (ev) => {
          history.push(ev);
          await fit.onEpochEnd?.(ev);
          await save(t, 'epoch');
        },
      });
    } catch (err) {
      if (err instanceof DivergenceError) return result('diverged', { error: err });
      const lost = await deviceLost(t);
      if (!lost) return result('failed', { error: err as Error });
      if (recovered || !opts.newEngine) return result('device-lost', { error: err as Error });
      recovered = true;
      const label = last.path ?? 'the checkpoint held in memory';
      opts.log?.(`The GPU device was lost at step ${t.state.step} (${(err as Error).message.split('. ')[0]}). Asking for a new device, to resume from ${label} (${describePosition(last.state)}).`);
      try {
        const e2 = await opts.newEngine();
        trainer = await trainerFromCheckpoint(e2, readCheckpoint(lastBytes, label), label);
      } catch (err2) {
        return result('device-lost', { error: new Error(`${(err as Error).message.split('. ')[0]}; no new device could take over: ${(err2 as Error).message}`) });
      }
      release(t);
      opts.log?.(`New device ready: resumed from ${last.path ?? 'the checkpoint held in memory'} at step ${trainer.state.step} (${describePosition(trainer.state)}).`);
      continue;
    }
    if (t.state.epoch >= opts.epochs) return result('finished');
    const why = opts.stopRequested?.() ?? 'stop requested';
    try {
      if (t.state.step !== last.state.step) await save(t, 'stop');
    } catch (err) {
      return result(err instanceof DivergenceError ? 'diverged' : 'failed', { error: err as Error });
    }
    return result('stopped', { stopReason: why });
  }
}

/**
 * Whether the trainer's device is lost. A failed read can reject a moment before the device's
 * `lost` promise settles, so a failure gets a short grace period to show itself as a loss.
 */
async function deviceLost(t: Trainer): Promise<boolean> {
  const e = t.model.engine;
  if (!e) return false;
  if (!e.isLost) await Promise.race([e.lost, new Promise((r) => setTimeout(r, 200))]);
  return e.isLost;
}

/** A copy of a state (its nested parts too), as it stood when a checkpoint was taken. */
function snapshot(s: TrainState): TrainState {
  return JSON.parse(JSON.stringify(s)) as TrainState;
}

/** Free a trainer whose device is gone; its buffers are lost with the device, so failures are moot. */
function release(t: Trainer): void {
  try {
    t.dispose();
    t.model.dispose();
  } catch {
    /* the device is gone */
  }
}
