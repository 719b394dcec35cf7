// The CLI's train and evaluate commands (predict is in predict.ts). Each loads data, gets an
// engine, runs the library API and reports: loss and accuracy, and the results in the data's own
// terms (errors in the target's units for regression, a classification report for classifiers),
// on stdout, in the metrics JSON and as pictures beside it.
import { resolve } from 'node:path';
import { conformToTraining } from '../data/conform.ts';
import { directoryKind, loadDataset } from '../data/node.ts';
import type { Dataset } from '../data/dataset.ts';
import { loadStateDict } from '../export/state-dict.ts';
import { GraphError } from '../nn/graph.ts';
import type { Model } from '../nn/model.ts';
import { makePreset } from '../nn/presets.ts';
import type { OptimizerConfig } from '../optim/optimizer.ts';
import { refitSchedule, scheduleFor } from '../optim/schedule.ts';
import { Engine } from '../gpu/engine.ts';
import { readFileChecked, removeStaleTemporaryFiles } from '../train/atomic.ts';
import { readCheckpoint, type Checkpoint } from '../train/checkpoint.ts';
import { CheckpointFiles } from '../train/checkpoint-files.ts';
import type { ClassificationReport, RegressionMetrics } from '../train/metrics.ts';
import { describePosition } from '../train/resume.ts';
import { runTraining, type RunResult } from '../train/run.ts';
import { Trainer, type EpochEvent, type FitOptions, type StepEvent } from '../train/trainer.ts';
import { splitOutputs } from '../train/outputs.ts';
import { checkModelFits, checkOutputFiles, checkResumeData, endEarly, StopRequests, trainOutputs, unbuiltFromCheckpoint } from './long-run.ts';
import { Progress } from './progress.ts';
import { augmentKinds, augmentOptions, formatDuration, UsageError, type SaveEvery } from './options.ts';
import { StatsCollector } from './stats.ts';
import { adapterSummary, regressionPoints, writeMetrics, type RegressionReport, type RunMetrics } from './report.ts';
import { checkKind, classificationResult, formatClassificationSummary, formatClassificationTable, formatConfusion, formatRegression, regressionResult, targetLabel } from './results.ts';
import { checkDataMatches, csvOptions, imageOptions, isTableFile, openCheckpoint, openParsedCheckpoint, withEngine, type CsvCliOptions } from './session.ts';
import { inputLimitProblem } from '../data/image-folder.ts';
import { datasetInfo } from '../train/checkpoint.ts';

const log = (s: string) => process.stderr.write(`${s}\n`);
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${(100 * v).toFixed(2)}%`);

function modelName(o: { model: string; hidden: number[]; activation: string }): string {
  return o.model === 'mlp' ? `mlp(${o.hidden.join('-')}, ${o.activation})` : o.model;
}

export interface TrainOptions extends CsvCliOptions {
  dataset: string;
  target?: string;
  task?: 'classification' | 'regression';
  model: string;
  hidden: number[];
  activation: string;
  dropout: number;
  depth?: number;
  width?: number;
  heads?: number;
  patch?: number;
  mlpRatio?: number;
  pool?: 'cls' | 'mean';
  labelSmoothing: number;
  clipNorm?: number;
  optimizer: OptimizerConfig['kind'];
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  schedule: 'constant' | 'cosine' | 'step';
  warmup: number;
  epochs: number;
  batchSize: number;
  seed: number;
  augment?: ('shift' | 'flip')[] | true;
  save?: string;
  resume?: string;
  /** Start from the weights of a state_dict saved as safetensors (names and shapes must match). */
  initFrom?: string;
  metricsOut?: string;
  logEvery: number;
  /** Per-layer statistics every this many steps (--stats-every). */
  statsEvery?: number;
  quiet?: boolean;
  saveEvery: SaveEvery;
  keep: number;
  maxTime?: number;
  mkdir?: boolean;
  stopOnDivergence?: number | true;
  divergenceWindow: number;
}

/** Results of a split in the data's terms: errors in target units, or a classification report. */
interface SplitResults {
  regression?: RegressionMetrics;
  classification?: ClassificationReport;
}

/** The results of the test split from its outputs (of an evaluation that kept them). */
function splitResults(outputs: Float32Array, data: Dataset): SplitResults {
  return data.task === 'regression' ? { regression: regressionResult(outputs, data.test, data) } : { classification: classificationResult(outputs, data.test, data) };
}

export async function runTrain(o: TrainOptions): Promise<void> {
  if (isTableFile(o.dataset) && !o.target) throw new UsageError(`a table dataset (${o.dataset}) needs --target COLUMN.`);
  if (o.nesterov && o.optimizer !== 'sgd') throw new UsageError('--nesterov applies to --optimizer sgd only.');
  if (o.initFrom && o.resume) throw new UsageError('--init-from starts a new run from weights and --resume continues a run: give one of them.');
  // Everything that can be checked is checked before the first step: outputs first (cheapest),
  // then the data, the checkpoint to resume from, and the model against the adapter and host.
  await checkOutputFiles(trainOutputs(o), o.mkdir ?? false, log);
  const data = loadDataset(o.dataset, { target: o.target, task: o.task, log, ...csvOptions(o), images: imageOptions(o.dataset, o) });
  log(`dataset ${data.name}: ${data.train.n} train / ${data.test.n} test samples of [${data.inputShape.join(', ')}], ${data.task}${data.task === 'classification' ? ` (${data.numClasses} classes)` : ''}`);
  let resumed: { bytes: Uint8Array; ckpt: Checkpoint } | null = null;
  if (o.resume) {
    const bytes = await readFileChecked(o.resume);
    const ckpt = readCheckpoint(bytes, o.resume);
    if (ckpt.meta.dataset) {
      checkKind(ckpt.meta.dataset, o.resume, data);
      checkDataMatches(data, ckpt.meta.dataset, o.resume);
    }
    resumed = { bytes, ckpt };
  }
  // --augment unset: a resumed run keeps its own augmentation; a new ViT shifts its images (a
  // transformer learns little from a few thousand images without); other presets take them as they are.
  if (o.augment === undefined) {
    const kept = resumed?.ckpt.meta.run?.augment;
    const kinds = resumed ? (kept ? augmentKinds(kept) : []) : o.model === 'vit' ? (['shift'] as const) : [];
    if (kinds.length) {
      o = { ...o, augment: [...kinds] };
      log(`augmentation: ${kinds.join(',')} (${resumed ? `the run's own, from ${o.resume}` : "the vit preset's default"}; --augment none turns it off)`);
    }
  }
  if (resumed) checkResumeData(resumed.ckpt, o.resume!, data, o.batchSize, augmentOptions(o.augment));
  // A state_dict to start from is read (and refused if it is not safetensors) before the engine starts.
  const initFrom = o.initFrom ? await readFileChecked(o.initFrom) : null;
  if (o.save) removeStaleTemporaryFiles(o.save);
  const engines: Engine[] = [];
  try {
    await withEngine(async (e) => {
      const tooBig = inputLimitProblem(data.inputShape, Math.min(o.batchSize, data.train.n), e.adapter.limits);
      if (tooBig) throw new UsageError(`dataset ${data.name}: ${tooBig}.`);
      let trainer: Trainer;
      const stepsPerEpoch = Math.max(1, Math.floor(data.train.n / Math.min(o.batchSize, data.train.n)));
      if (resumed) {
        const { ckpt } = resumed;
        const unbuilt = unbuiltFromCheckpoint(ckpt);
        if (unbuilt && ckpt.meta.optimizer) checkModelFits(e, unbuilt, data, o.batchSize, ckpt.meta.optimizer);
        const opened = await openParsedCheckpoint(e, ckpt, o.resume!, { train: true });
        trainer = opened.trainer!;
        checkKind(opened.terms, o.resume!, data);
        checkDataMatches(data, opened.info, o.resume!);
        log(`resumed ${o.resume}: epoch ${trainer.state.epoch}, step ${trainer.state.step}${trainer.state.batch ? ` (within epoch ${trainer.state.epoch + 1}: continues at batch ${trainer.state.batch + 1})` : ''}`);
        // Told to train to another epoch than the run was planned for: the schedule follows.
        const { step, epoch, batch = 0 } = trainer.state;
        const lastStep = step + Math.max(0, o.epochs - epoch) * stepsPerEpoch - batch;
        const refit = refitSchedule(trainer.optimizer.config.schedule, lastStep);
        if (refit) {
          trainer.optimizer.reschedule(refit);
          log(`learning-rate schedule (${refit.kind}) refitted to end at epoch ${o.epochs} (step ${lastStep}): the rate at the next step is ${trainer.optimizer.lrAt(step).toPrecision(3)}`);
        }
      } else {
        const schedule = scheduleFor(o.schedule, o.warmup, o.epochs * stepsPerEpoch);
        const optimizer: OptimizerConfig = { kind: o.optimizer, lr: o.lr, momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay, schedule };
        const outputs = data.numClasses;
        let model: Model;
        try {
          model = makePreset(o.model, outputs, { hidden: o.hidden, activation: o.activation as never, dropout: o.dropout, depth: o.depth, width: o.width, heads: o.heads, patch: o.patch, mlpRatio: o.mlpRatio, pool: o.pool });
          checkModelFits(e, model, data, o.batchSize, optimizer);
          await model.build(e, data.inputShape, { seed: o.seed });
        } catch (err) {
          // A preset's option that does not fit the data is the user's to change: a usage error.
          if (err instanceof GraphError) throw new UsageError(err.message);
          throw err;
        }
        if (initFrom) {
          const { ignored, converted } = loadStateDict(model, initFrom, o.initFrom!);
          const notes = [...(ignored.length ? [`set aside ${ignored.join(', ')}`] : []), ...(converted.length ? [`converted to float32: ${converted.join(', ')}`] : [])];
          log(`weights from ${o.initFrom}${notes.length ? ` (${notes.join('; ')})` : ''}`);
        }
        trainer = await Trainer.create(model, {
          loss: data.task === 'classification' ? 'softmax_cross_entropy' : 'mse',
          optimizer,
          labelSmoothing: data.task === 'classification' ? o.labelSmoothing : undefined,
          clipNorm: o.clipNorm,
        });
      }
      // Any model, once built, against its traced graph (activations per batch) before it is planned.
      checkModelFits(e, trainer.model, data, o.batchSize, trainer.optimizer.config);
      // Plan the training step before the summary, so that it can report dispatches and memory.
      await trainer.trainStep(Math.min(o.batchSize, data.train.n), o.logEvery);
      log(trainer.model.summary());
      const stops = new StopRequests(o.maxTime, log).install();
      try {
        const validation: RegressionReport['validation'] = [];
        const stats = o.statsEvery ? new StatsCollector(o.statsEvery, log) : null;
        const r = await trainWithCheckpoints(trainer, data, o, stops, validation, stats, resumed ? { bytes: resumed.bytes, path: o.resume! } : undefined, async () => {
          const e2 = await Engine.create();
          engines.push(e2);
          return e2;
        });
        stops.trainingDone();
        if (stats) {
          stats.printWarnings();
          log(stats.summary());
        }
        await report(r, stops, validation, stats, data, o, e);
        r.trainer.dispose();
        r.trainer.model.dispose();
      } finally {
        stops.uninstall();
      }
    });
  } finally {
    for (const e2 of engines) e2.destroy();
  }
}

/** Whether this run resumes from the file it saves to (whose step is then known, for --keep). */
const resumesFromSave = (o: TrainOptions) => Boolean(o.resume && o.save && resolve(o.resume) === resolve(o.save));

/**
 * The training itself, made safe for long runs (src/train/run.ts): checkpoints within epochs, at
 * their ends and when stopped (Ctrl-C, SIGTERM, --max-time), the divergence guards, one new
 * device after a lost one.
 */
async function trainWithCheckpoints(
  trainer: Trainer,
  data: Dataset,
  o: TrainOptions,
  stops: StopRequests,
  validation: RegressionReport['validation'],
  stats: StatsCollector | null,
  startFrom: { bytes: Uint8Array; path: string } | undefined,
  newEngine: () => Promise<Engine>,
): Promise<RunResult> {
  const store = o.save ? new CheckpointFiles(o.save, o.keep, resumesFromSave(o) ? trainer.state.step : null) : null;
  const progress = new Progress(o.epochs, o.quiet ?? false);
  const batches = Math.floor(data.train.n / Math.min(o.batchSize, data.train.n));
  const every = 'steps' in o.saveEvery ? `every ${o.saveEvery.steps} steps` : `every ${formatDuration(o.saveEvery.seconds)}`;
  // The last line before the first step.
  log(
    `training: epochs ${Math.min(trainer.state.epoch + 1, o.epochs)} to ${o.epochs}, ${batches} steps each, from step ${trainer.state.step}; ` +
      (o.save ? `checkpoints to ${o.save} ${every} and at epoch ends${o.keep > 1 ? `, keeping ${o.keep}` : ''}` : 'no --save, so nothing to resume from will be written') +
      (o.maxTime !== undefined ? `; stopping after ${formatDuration(o.maxTime)}` : ''),
  );
  const r = await runTraining(trainer, data, {
    epochs: o.epochs,
    fit: (t) => fitOptions(t, data, o, progress, validation, stats),
    dataset: datasetInfo(data),
    // What an export needs to continue this run elsewhere.
    run: {
      dataset: o.dataset,
      batchSize: o.batchSize,
      epochs: o.epochs,
      augment: augmentOptions(o.augment) ?? null,
      ...(isTableFile(o.dataset) ? { csv: csvOptions(o) } : {}),
      ...(directoryKind(o.dataset) === 'images' ? { images: { valSplit: o.valSplit, splitSeed: o.splitSeed } } : {}),
    },
    store,
    saveEvery: o.saveEvery,
    stopRequested: () => stops.requested(),
    newEngine,
    startFrom,
    onSaved: (s, why) => {
      // On a terminal the bar shows progress; elsewhere (logs, --quiet) a line per checkpoint does.
      if (store && why === 'interval' && !progress.shown) log(`checkpoint ${store.path}: ${describePosition(s)} (step ${s.step})`);
    },
    log: (line) => {
      progress.stop();
      log(line);
    },
  });
  progress.stop();
  return r;
}

/**
 * What the run leaves: for a finished run the test results and the metrics; for one that ended
 * early, the metrics so far, where its checkpoint stands and how to resume, and a non-zero status.
 */
async function report(r: RunResult, stops: StopRequests, validation: RegressionReport['validation'], stats: StatsCollector | null, data: Dataset, o: TrainOptions, e: Engine): Promise<void> {
  const { trainer, history } = r;
  const model = trainer.model;
  let test: { loss: number; accuracy: number | null } | null = null;
  let results: SplitResults = {};
  const t0 = performance.now();
  if (r.outcome === 'finished') {
    // One evaluation of the test split gives the loss and the outputs the results are made of.
    const ev = await trainer.evaluate(data.test, data, { outputs: true });
    test = ev;
    results = splitResults(ev.outputs!, data);
    log('');
    if (data.task === 'classification') {
      console.log(`test loss ${ev.loss.toFixed(4)}, test accuracy ${pct(ev.accuracy)}`);
      console.log(`test ${formatClassificationSummary(results.classification!)}`);
    } else {
      console.log(`test loss (MSE, standardised targets) ${ev.loss.toFixed(4)}`);
      console.log(`test ${targetLabel(data)}: ${formatRegression(results.regression!)} (${results.regression!.n} samples)`);
    }
  }
  const stopped = r.outcome === 'finished' ? undefined : { reason: r.outcome === 'stopped' ? r.stopReason! : r.outcome, at: { ...r.last.state }, checkpoint: r.last.path };
  if (o.metricsOut) {
    const trained = history.reduce((s, h) => s + h.seconds, 0) + (performance.now() - t0) / 1000;
    const regression = results.regression ? { target: data.targetName ?? null, test: results.regression, validation } : undefined;
    const metrics: RunMetrics = {
      command: 'train',
      dataset: data.name,
      model: modelName(o),
      adapter: adapterSummary(e.adapter),
      epochs: trainer.state.epoch,
      batchSize: o.batchSize,
      optimizer: trainer.optimizer.config,
      seed: o.seed,
      trainLoss: history.map((h) => h.loss),
      trainAccuracy: history.map((h) => h.accuracy),
      valLoss: history.map((h) => h.valLoss ?? NaN),
      valAccuracy: history.map((h) => h.valAccuracy ?? null),
      testLoss: test?.loss ?? null,
      testAccuracy: test?.accuracy ?? null,
      samplesPerSecond: history.length ? history.reduce((s, h) => s + h.samplesPerSecond, 0) / history.length : null,
      seconds: trained,
      parameters: model.parameterCount,
      peakGpuBytes: e.stats().peakBytesHeld,
      checkpoint: o.save,
      task: data.task,
      regression,
      classification: results.classification,
      stats: stats?.report(),
      ...(stopped ? { stopped } : {}),
    };
    const pictures = await writeMetrics(o.metricsOut, metrics, history, regression ? regressionPoints(regression) : []);
    log(`metrics${stopped ? ' so far' : ''} written to ${o.metricsOut}${pictures.length ? ` (pictures: ${pictures.join(', ')})` : ''}`);
  }
  if (r.outcome !== 'finished') endEarly(r, stops, log);
}

/**
 * fit()'s options for a trainer: the progress bar and a line per epoch; for regression, each
 * epoch's errors on the test split in the target's units are appended to `validation`; with
 * `stats`, the per-layer statistics go there, and their warnings are printed after each epoch's line.
 */
function fitOptions(trainer: Trainer, data: Dataset, o: TrainOptions, progress: Progress, validation: RegressionReport['validation'], stats: StatsCollector | null): Omit<FitOptions, 'epochs'> {
  const factor = o.stopOnDivergence === true ? 3 : o.stopOnDivergence;
  return {
    batchSize: o.batchSize,
    seed: o.seed,
    validation: data.test,
    logEvery: o.logEvery,
    augment: augmentOptions(o.augment),
    ...(factor ? { divergence: { factor, window: o.divergenceWindow } } : {}),
    stats: stats?.options,
    onStep: (ev: StepEvent) => progress.update(ev),
    onEpochEnd: async (ev: EpochEvent) => {
      progress.stop();
      let val = `test loss ${ev.valLoss?.toFixed(4)}`;
      if (data.task === 'classification') val += ` acc ${pct(ev.valAccuracy)}`;
      else {
        const m = regressionResult(await splitOutputs(trainer.model, data.test, data), data.test, data);
        validation.push({ epoch: ev.epoch, ...m });
        val += ` | ${formatRegression(m)}`;
      }
      log(`epoch ${ev.epoch}/${o.epochs}: train loss ${ev.loss.toFixed(4)}${ev.accuracy !== null ? ` acc ${pct(ev.accuracy)}` : ''} | ${val} | ${Math.round(ev.samplesPerSecond)} samples/s, ${ev.seconds.toFixed(1)} s`);
      stats?.printWarnings();
    },
  };
}

export interface EvaluateOptions extends CsvCliOptions {
  checkpoint: string;
  dataset?: string;
  target?: string;
  task?: 'classification' | 'regression';
  metricsOut?: string;
}

export async function runEvaluate(o: EvaluateOptions): Promise<void> {
  await withEngine(async (e) => {
    const { trainer, model, info, terms } = await openCheckpoint(e, o.checkpoint, { train: true });
    const spec = o.dataset ?? info?.name;
    if (!spec) throw new UsageError(`checkpoint ${o.checkpoint} does not say which dataset it was trained on; pass --dataset.`);
    if (!o.dataset && info?.featureNames) throw new UsageError(`checkpoint ${o.checkpoint} was trained on the table "${info.name}"; pass --dataset FILE.csv (and --skip-rows, --delimiter or --no-header as in training).`);
    let data = loadEvaluationData(spec, o, terms, [...model.inputShape]);
    checkKind(terms, o.checkpoint, data);
    if (info) data = conformToTraining(data, info, spec);
    checkDataMatches(data, info, o.checkpoint);
    const t0 = performance.now();
    const r = await trainer!.evaluate(data.test, data, { outputs: true });
    const results = splitResults(r.outputs!, data);
    const seconds = (performance.now() - t0) / 1000;
    console.log(`${data.name} test: loss ${r.loss.toFixed(4)}${r.accuracy !== null ? `, accuracy ${pct(r.accuracy)}` : ''} (${r.n} samples)`);
    if (results.regression) console.log(`${targetLabel(data)}: ${formatRegression(results.regression)}`);
    if (results.classification) {
      console.log('');
      console.log(formatClassificationTable(results.classification));
      console.log('');
      console.log(formatConfusion(results.classification));
    }
    if (o.metricsOut) {
      const metrics: RunMetrics = {
        command: 'evaluate',
        dataset: data.name,
        model: model.nodes.map((n) => n.op.kind).join('-'),
        adapter: adapterSummary(e.adapter),
        epochs: trainer!.state.epoch,
        trainLoss: [],
        trainAccuracy: [],
        testLoss: r.loss,
        testAccuracy: r.accuracy,
        samplesPerSecond: r.n / seconds,
        seconds,
        checkpoint: o.checkpoint,
        task: data.task,
        regression: results.regression ? { target: data.targetName ?? null, test: results.regression, validation: [] } : undefined,
        classification: results.classification,
      };
      const pictures = await writeMetrics(o.metricsOut, metrics, []);
      log(`metrics written to ${o.metricsOut}${pictures.length ? ` (pictures: ${pictures.join(', ')})` : ''}`);
    }
    trainer!.dispose();
    model.dispose();
  });
}

/**
 * The dataset to evaluate on. A table is read with the checkpoint's target by default; numeric
 * targets are read as classes when the checkpoint is a classifier that knows every value as a
 * class name (labels 0, 1, 2), else as regression targets, so a mismatch can be named.
 */
function loadEvaluationData(spec: string, o: EvaluateOptions, terms: { task: Dataset['task']; classNames?: string[]; targetName?: string }, inputShape: number[]): Dataset {
  const target = o.target ?? terms.targetName;
  if (isTableFile(spec) && !target) throw new UsageError(`a table dataset (${spec}) needs --target COLUMN: checkpoint does not name its target.`);
  const opts = { target, task: o.task, log, ...csvOptions(o), images: imageOptions(spec, o, { inputShape }) };
  const data = loadDataset(spec, opts);
  if (o.task || data.task !== 'regression' || terms.task !== 'classification' || !terms.classNames || !data.featureNames) return data;
  const known = new Set(terms.classNames);
  const values = [data.train, data.test].flatMap((s) => Array.from(s.y, String));
  return values.every((v) => known.has(v)) ? loadDataset(spec, { ...opts, task: 'classification' }) : data;
}
