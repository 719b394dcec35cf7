// The CLI's train and evaluate commands (predict is in predict.ts). Each loads data, gets an
// engine, runs the library API and reports: loss and accuracy, and the results in the data's own
// terms (errors in the target's units for regression, a classification report for classifiers),
// on stdout, in the metrics JSON and as pictures beside it.
import cliProgress from 'cli-progress';
import { conformToTraining } from '../data/conform.ts';
import { loadDataset } from '../data/node.ts';
import type { Dataset } from '../data/dataset.ts';
import { GraphError } from '../nn/graph.ts';
import type { Model } from '../nn/model.ts';
import { makePreset } from '../nn/presets.ts';
import type { OptimizerConfig } from '../optim/optimizer.ts';
import type { ScheduleConfig } from '../optim/schedule.ts';
import { writeFileAtomic } from '../train/atomic.ts';
import { checkpointBytes } from '../train/checkpoint.ts';
import type { ClassificationReport, RegressionMetrics } from '../train/metrics.ts';
import { Trainer, type EpochEvent, type StepEvent } from '../train/trainer.ts';
import { splitOutputs } from '../train/outputs.ts';
import { UsageError } from './options.ts';
import { adapterSummary, regressionPoints, writeMetrics, type RegressionReport, type RunMetrics } from './report.ts';
import {
  checkKind,
  classificationResult,
  formatClassificationSummary,
  formatClassificationTable,
  formatConfusion,
  formatRegression,
  regressionResult,
  targetLabel,
} from './results.ts';
import { checkDataMatches, csvOptions, imageOptions, isTableFile, openCheckpoint, withEngine, type CsvCliOptions } from './session.ts';
import { inputLimitProblem } from '../data/image-folder.ts';
import { datasetInfo } from '../train/checkpoint.ts';

const log = (s: string) => process.stderr.write(s + '\n');
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
  metricsOut?: string;
  logEvery: number;
  quiet?: boolean;
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
  const data = loadDataset(o.dataset, { target: o.target, task: o.task, log, ...csvOptions(o), images: imageOptions(o.dataset, o) });
  log(`dataset ${data.name}: ${data.train.n} train / ${data.test.n} test samples of [${data.inputShape.join(', ')}], ${data.task}${data.task === 'classification' ? ` (${data.numClasses} classes)` : ''}`);
  await withEngine(async (e) => {
    const tooBig = inputLimitProblem(data.inputShape, Math.min(o.batchSize, data.train.n), e.adapter.limits);
    if (tooBig) throw new UsageError(`dataset ${data.name}: ${tooBig}.`);
    let trainer: Trainer;
    if (o.resume) {
      const opened = await openCheckpoint(e, o.resume, { train: true });
      trainer = opened.trainer!;
      checkKind(opened.terms, o.resume, data);
      checkDataMatches(data, opened.info, o.resume);
      log(`resumed ${o.resume}: epoch ${trainer.state.epoch}, step ${trainer.state.step}`);
    } else {
      const stepsPerEpoch = Math.max(1, Math.floor(data.train.n / Math.min(o.batchSize, data.train.n)));
      const schedule: ScheduleConfig =
        o.schedule === 'cosine'
          ? { kind: 'cosine', warmupSteps: o.warmup, totalSteps: o.epochs * stepsPerEpoch }
          : o.schedule === 'step'
            ? { kind: 'step', everySteps: Math.max(1, Math.ceil((o.epochs * stepsPerEpoch) / 3)), gamma: 0.1 }
            : { kind: 'constant' };
      const outputs = data.numClasses;
      let model: Model;
      try {
        model = makePreset(o.model, outputs, { hidden: o.hidden, activation: o.activation as never, dropout: o.dropout, depth: o.depth, width: o.width, heads: o.heads, patch: o.patch, mlpRatio: o.mlpRatio, pool: o.pool });
        await model.build(e, data.inputShape, { seed: o.seed });
      } catch (err) {
        // A preset's option that does not fit the data is the user's to change: a usage error.
        if (err instanceof GraphError) throw new UsageError(err.message);
        throw err;
      }
      trainer = await Trainer.create(model, {
        loss: data.task === 'classification' ? 'softmax_cross_entropy' : 'mse',
        optimizer: { kind: o.optimizer, lr: o.lr, momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay, schedule },
        labelSmoothing: data.task === 'classification' ? o.labelSmoothing : undefined,
        clipNorm: o.clipNorm,
      });
    }
    const model = trainer.model;
    // Plan the training step before the summary, so that it can report dispatches and memory.
    await trainer.trainStep(Math.min(o.batchSize, data.train.n), o.logEvery);
    log(model.summary());
    const remaining = Math.max(0, o.epochs - trainer.state.epoch);
    const validation: RegressionReport['validation'] = [];
    const history = await fitWithProgress(trainer, data, o, remaining, validation);
    const t0 = performance.now();
    // One evaluation of the test split gives the loss and the outputs the results are made of.
    const test = await trainer.evaluate(data.test, data, { outputs: true });
    const results = splitResults(test.outputs!, data);
    log('');
    if (data.task === 'classification') {
      console.log(`test loss ${test.loss.toFixed(4)}, test accuracy ${pct(test.accuracy)}`);
      console.log(`test ${formatClassificationSummary(results.classification!)}`);
    } else {
      console.log(`test loss (MSE, standardised targets) ${test.loss.toFixed(4)}`);
      console.log(`test ${targetLabel(data)}: ${formatRegression(results.regression!)} (${results.regression!.n} samples)`);
    }
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
        testLoss: test.loss,
        testAccuracy: test.accuracy,
        samplesPerSecond: history.length ? history.reduce((s, h) => s + h.samplesPerSecond, 0) / history.length : null,
        seconds: trained,
        parameters: model.parameterCount,
        peakGpuBytes: e.stats().peakBytesHeld,
        checkpoint: o.save,
        task: data.task,
        regression,
        classification: results.classification,
      };
      const pictures = await writeMetrics(o.metricsOut, metrics, history, regression ? regressionPoints(regression) : []);
      log(`metrics written to ${o.metricsOut}${pictures.length ? ` (pictures: ${pictures.join(', ')})` : ''}`);
    }
    trainer.dispose();
    model.dispose();
  });
}

/**
 * fit() with a progress bar on a terminal and a line per epoch; for regression, each epoch's
 * errors on the test split in the target's units are appended to `validation`.
 */
async function fitWithProgress(trainer: Trainer, data: Dataset, o: TrainOptions, epochs: number, validation: RegressionReport['validation']): Promise<EpochEvent[]> {
  const tty = process.stderr.isTTY && !o.quiet;
  let bar: cliProgress.SingleBar | null = null;
  const total = o.epochs;
  const startBar = (epoch: number, batches: number) => {
    bar = new cliProgress.SingleBar(
      {
        format: `epoch ${epoch}/${total} {bar} {value}/{total} | loss {loss} | acc {acc} | {sps} samples/s`,
        hideCursor: true,
        clearOnComplete: true,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(batches, 0, { loss: '-', acc: '-', sps: '-' });
  };
  const info = datasetInfo(data);
  return trainer.fit(data, {
    epochs,
    batchSize: o.batchSize,
    seed: o.seed,
    validation: data.test,
    logEvery: o.logEvery,
    augment: augmentOptions(o.augment),
    onStep: (ev: StepEvent) => {
      if (!tty) return;
      if (!bar) startBar(ev.epoch + 1, ev.batches);
      bar!.update(ev.batch, { loss: ev.loss.toFixed(4), acc: pct(ev.accuracy), sps: Math.round(ev.samplesPerSecond) });
    },
    onEpochEnd: async (ev: EpochEvent) => {
      if (bar) {
        (bar as cliProgress.SingleBar).stop();
        bar = null;
      }
      let val = `test loss ${ev.valLoss?.toFixed(4)}`;
      if (data.task === 'classification') val += ` acc ${pct(ev.valAccuracy)}`;
      else {
        const m = regressionResult(await splitOutputs(trainer.model, data.test, data), data.test, data);
        validation.push({ epoch: ev.epoch, ...m });
        val += ` | ${formatRegression(m)}`;
      }
      log(`epoch ${ev.epoch}/${total}: train loss ${ev.loss.toFixed(4)}${ev.accuracy !== null ? ` acc ${pct(ev.accuracy)}` : ''} | ${val} | ${Math.round(ev.samplesPerSecond)} samples/s, ${ev.seconds.toFixed(1)} s`);
      if (o.save) {
        await writeFileAtomic(o.save, await checkpointBytes(trainer, info));
      }
    },
  });
}

function augmentOptions(a: TrainOptions['augment']): { pad: number; flip: boolean } | undefined {
  if (!a) return undefined;
  const kinds = a === true ? ['shift', 'flip'] : a;
  return { pad: kinds.includes('shift') ? 2 : 0, flip: kinds.includes('flip') };
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
