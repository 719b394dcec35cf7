// What makes a long `train` run safe from the command line: the pre-flight checks that turn a run
// doomed to fail into a one-line error before the first step (outputs, the model against the
// adapter and the host, a mid-epoch checkpoint against the data), stop requests (Ctrl-C, SIGTERM,
// --max-time), and the command that resumes a stopped run.
import type { Dataset } from '../data/dataset.ts';
import type { Engine } from '../gpu/engine.ts';
import type { Model } from '../nn/model.ts';
import { layerFromConfig } from '../nn/registry.ts';
import { Sequential } from '../nn/sequential.ts';
import { Optimizer, type OptimizerConfig } from '../optim/optimizer.ts';
import { removeTemporaryFiles } from '../train/atomic.ts';
import type { Checkpoint } from '../train/checkpoint.ts';
import { OUTPUT_CHUNK } from '../train/outputs.ts';
import { checkFootprint, checkOutputs, graphFootprint, hostMemoryBytes, PreflightError, sequentialFootprint, type Footprint, type OutputFile } from '../train/preflight.ts';
import { describePosition, epochData, resumeMismatch } from '../train/resume.ts';
import type { RunResult } from '../train/run.ts';
import { EVAL_BATCH } from '../train/trainer.ts';
import { ExitStatus, formatDuration, UsageError } from './options.ts';
import { picturePaths } from './report.ts';

/** Exit status of a run stopped before its end, resumable: by --max-time. Signals use 128 + their number, as shells do. */
export const EXIT_STOPPED = 3;

/** The files a train command will write, with the options that name them. */
export function trainOutputs(o: { save?: string; metricsOut?: string }): OutputFile[] {
  const out: OutputFile[] = [];
  if (o.save) out.push({ option: '--save', path: o.save });
  if (o.metricsOut) {
    const p = picturePaths(o.metricsOut);
    out.push({ option: '--metrics-out', path: o.metricsOut }, { option: '--metrics-out (curves)', path: p.curves }, { option: '--metrics-out (confusion matrix)', path: p.confusion });
  }
  return out;
}

/** Check every output before anything else (see checkOutputs); a failure is a usage error. */
export async function checkOutputFiles(files: OutputFile[], mkdir: boolean, log: (s: string) => void): Promise<void> {
  try {
    for (const d of await checkOutputs(files, { mkdir })) log(`made directory ${d} (--mkdir)`);
  } catch (err) {
    throw err instanceof PreflightError ? new UsageError(err.message) : err;
  }
}

/** A mid-epoch checkpoint must continue on the batches it was cut from: refused before any work otherwise. */
export function checkResumeData(ckpt: Checkpoint, file: string, data: Dataset, batchSize: number, augment: { pad: number; flip: boolean } | undefined): void {
  const diffs = resumeMismatch(ckpt.meta.state, epochData(data, batchSize, true, augment));
  if (diffs.length) {
    throw new UsageError(
      `--resume ${file} stopped within an epoch (${describePosition(ckpt.meta.state)}) and continues only on the batches it was cut from: ${diffs.join('; ')}. Resume with the same --dataset, --batch-size and --augment, or from a checkpoint saved at an epoch end.`,
    );
  }
}

/** The unbuilt model a checkpoint describes (its layer list), for checks before anything is allocated; null when it has none. */
export function unbuiltFromCheckpoint(ckpt: Checkpoint): Model | null {
  const layers = ckpt.meta.model.layers;
  if (!Array.isArray(layers)) return null;
  try {
    return new Sequential(layers.map(layerFromConfig));
  } catch {
    return null; // building reports what is wrong with the config
  }
}

/** What a model must fit on this engine: the batch sizes the CLI trains and evaluates with, the optimizer's state, the host. */
function target(e: Engine, data: Dataset, batchSize: number, optimizer: OptimizerConfig) {
  const opt = new Optimizer(optimizer);
  // Evaluation runs in batches of EVAL_BATCH; a regression's outputs per epoch in chunks of OUTPUT_CHUNK.
  const evalBatch = Math.min(data.task === 'regression' ? Math.max(EVAL_BATCH, OUTPUT_CHUNK) : EVAL_BATCH, data.test.n);
  return {
    batch: Math.min(batchSize, data.train.n),
    evalBatch,
    optimizerSlots: opt.rule.slots(opt.config).length,
    limits: e.adapter.limits,
    software: e.adapter.isSoftware,
    hostBytes: hostMemoryBytes(),
    checkpoints: true,
  };
}

/**
 * Refuse a model that cannot train here, before it is built (for a layer list) or, for any model
 * once built, before it is planned. A refusal is a usage error naming the layer, bytes and limit.
 */
export function checkModelFits(e: Engine, model: Model, data: Dataset, batchSize: number, optimizer: OptimizerConfig): void {
  const fp: Footprint | null = model.built ? graphFootprint(model) : sequentialFootprint(model, data.inputShape);
  if (!fp) return; // a model of custom layers: checked once built
  try {
    checkFootprint(fp, target(e, data, batchSize, optimizer));
  } catch (err) {
    throw err instanceof PreflightError ? new UsageError(err.message) : err;
  }
}

/**
 * Stop requests for a run: the first Ctrl-C (SIGINT) or SIGTERM asks training to stop after the
 * current step and write a checkpoint and the metrics so far; a second quits at once, removing
 * the temporary files of writes in progress (their targets keep their previous contents, so
 * nothing is torn). --max-time asks the same as a signal once the time since the command started
 * has run out.
 */
export class StopRequests {
  private reason: string | null = null;
  private signal: NodeJS.Signals | null = null;
  private byTime = false;
  private trainingOver = false;
  private readonly handler = (sig: NodeJS.Signals) => this.onSignal(sig);

  constructor(
    private readonly maxTimeSeconds: number | undefined,
    private readonly log: (s: string) => void,
  ) {}

  install(): this {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
    return this;
  }

  uninstall(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }

  /** Training has ended: a first signal from now on only warns that results are being written. */
  trainingDone(): void {
    this.trainingOver = true;
  }

  /** Why to stop, or null; checked after every step. */
  requested(): string | null {
    if (!this.reason && this.maxTimeSeconds !== undefined && performance.now() >= this.maxTimeSeconds * 1000) {
      this.byTime = true;
      this.reason = `the --max-time of ${formatDuration(this.maxTimeSeconds)} ran out`;
    }
    return this.reason;
  }

  /** The exit status of a stopped run: 130 for Ctrl-C, 143 for SIGTERM (128 + the signal, as shells report), EXIT_STOPPED for --max-time. */
  get exitCode(): number {
    if (this.signal) return 128 + signalNumber(this.signal);
    return EXIT_STOPPED;
  }

  get stoppedByTime(): boolean {
    return this.byTime && !this.signal;
  }

  private onSignal(sig: NodeJS.Signals): void {
    if (this.signal) {
      this.log(`${sig} again: quitting at once. Files being written keep their previous contents.`);
      removeTemporaryFiles();
      // Ended by the signal itself (shells report 128 + its number): the kernel ends the process on
      // the spot, where exit() would first run the GPU library's teardown while its threads still work.
      process.removeAllListeners(sig);
      process.kill(process.pid, sig);
      return;
    }
    this.signal = sig;
    const what = sig === 'SIGINT' ? 'Ctrl-C' : sig;
    if (this.trainingOver) {
      this.log(`${what}: training is over; writing the results (${what} again quits at once, without them).`);
      return;
    }
    this.reason = sig === 'SIGINT' ? 'Ctrl-C (SIGINT)' : sig;
    this.log(`${what}: stopping after the current step, then writing a checkpoint and the metrics so far (${what === 'Ctrl-C' ? 'Ctrl-C' : 'another signal'} again quits at once, without them).`);
  }
}

function signalNumber(sig: NodeJS.Signals): number {
  return sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1;
}

/**
 * The command that continues a run from `checkpoint`: this command line with --resume set to it
 * (the model and optimizer come from the checkpoint; the data, batching and outputs must be the
 * same for an exact continuation, so every other option is kept as given).
 */
export function resumeCommand(argv: string[], checkpoint: string): string {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--resume') {
      i++;
      continue;
    }
    if (argv[i].startsWith('--resume=')) continue;
    args.push(argv[i]);
  }
  const at = args.indexOf('train');
  args.splice(at < 0 ? 0 : at + 1, 0, '--resume', checkpoint);
  if (at < 0) args.unshift('train');
  return ['wgtrain', ...args].map(shellQuote).join(' ');
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The end of a run that stopped before its last epoch: where its checkpoint stands and the command
 * that resumes it (or why there is none), then the exit status: the stop's for a requested stop,
 * 1 for divergence and a lost device; any other error is rethrown.
 */
export function endEarly(r: RunResult, stops: StopRequests, log: (s: string) => void): never {
  const where = r.last.path ? `the checkpoint ${r.last.path} (${describePosition(r.last.state)}, step ${r.last.state.step})` : null;
  const resume = r.last.path ? `Resume with: ${resumeCommand(process.argv.slice(2), r.last.path)}` : 'No checkpoint was written (no --save): this run cannot be resumed; pass --save FILE to make runs resumable.';
  if (r.outcome === 'stopped') {
    log(`Stopped: ${r.stopReason}${where ? `; ${where} holds the run so far` : ''}.`);
    log(resume);
    throw new ExitStatus(stops.exitCode);
  }
  if (r.outcome === 'diverged') {
    log(`error: ${r.error!.message}`);
    if (where) log(`The last good checkpoint is ${where}; it was not overwritten.`);
    throw new ExitStatus(1);
  }
  if (r.outcome === 'device-lost') {
    log(`error: ${r.error!.message}`);
    log(where ? `${resume} (from ${where})` : resume);
    throw new ExitStatus(1);
  }
  throw r.error!;
}
