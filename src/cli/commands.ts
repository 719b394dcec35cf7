// The CLI's three jobs. Each loads data, gets an engine, runs the library API and reports; the
// engine is destroyed at the end (also on failure) so the process exits by itself.
import cliProgress from 'cli-progress';
import { loadDataset } from '../data/node.ts';
import { parseIdx } from '../data/idx.ts';
import { sampleSize, type Dataset } from '../data/dataset.ts';
import { Engine } from '../gpu/engine.ts';
import { makePreset } from '../nn/presets.ts';
import type { OptimizerConfig } from '../optim/optimizer.ts';
import type { ScheduleConfig } from '../optim/schedule.ts';
import { readFileChecked, writeFileAtomic } from '../train/atomic.ts';
import type { Model } from '../nn/model.ts';
import { checkpointBytes, datasetInfo, modelFromCheckpoint, readCheckpoint, trainerFromCheckpoint, type DatasetInfo } from '../train/checkpoint.ts';
import { predict, Trainer, type EpochEvent, type StepEvent } from '../train/trainer.ts';
import { UsageError } from './options.ts';
import { adapterSummary, writeMetrics, type RunMetrics } from './report.ts';

const log = (s: string) => process.stderr.write(s + '\n');
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${(100 * v).toFixed(2)}%`);

async function withEngine<T>(fn: (e: Engine) => Promise<T>): Promise<T> {
  const e = await Engine.create();
  try {
    return await fn(e);
  } finally {
    e.destroy();
  }
}

async function openCheckpoint(e: Engine, file: string): Promise<{ trainer: Trainer; dataset: DatasetInfo | null }> {
  const ckpt = readCheckpoint(await readFileChecked(file), file);
  return { trainer: await trainerFromCheckpoint(e, ckpt, file), dataset: ckpt.meta.dataset };
}

async function openModel(e: Engine, file: string): Promise<{ model: Model; dataset: DatasetInfo | null }> {
  const ckpt = readCheckpoint(await readFileChecked(file), file);
  return { model: await modelFromCheckpoint(e, ckpt, file), dataset: ckpt.meta.dataset };
}

function modelName(o: { model: string; hidden: number[]; activation: string }): string {
  return o.model === 'mlp' ? `mlp(${o.hidden.join('-')}, ${o.activation})` : o.model;
}

export interface TrainOptions {
  dataset: string;
  target?: string;
  task?: 'classification' | 'regression';
  model: string;
  hidden: number[];
  activation: string;
  dropout: number;
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

function checkDataMatches(data: Dataset, info: DatasetInfo | null, file: string): void {
  if (!info) return;
  if (info.inputShape.join('x') !== data.inputShape.join('x') || info.numClasses !== data.numClasses) {
    throw new UsageError(`checkpoint ${file} was trained on "${info.name}" (samples [${info.inputShape.join(', ')}], ${info.numClasses} outputs); dataset "${data.name}" has samples [${data.inputShape.join(', ')}] and ${data.numClasses} outputs.`);
  }
}

export async function runTrain(o: TrainOptions): Promise<void> {
  if (o.dataset.toLowerCase().endsWith('.csv') && !o.target) throw new UsageError('a .csv dataset needs --target COLUMN.');
  if (o.nesterov && o.optimizer !== 'sgd') throw new UsageError('--nesterov applies to --optimizer sgd only.');
  const data = loadDataset(o.dataset, { target: o.target, task: o.task, log });
  log(`dataset ${data.name}: ${data.train.n} train / ${data.test.n} test samples of [${data.inputShape.join(', ')}], ${data.task}${data.task === 'classification' ? ` (${data.numClasses} classes)` : ''}`);
  await withEngine(async (e) => {
    let trainer: Trainer;
    if (o.resume) {
      const opened = await openCheckpoint(e, o.resume);
      trainer = opened.trainer;
      checkDataMatches(data, opened.dataset, o.resume);
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
      const model = makePreset(o.model, outputs, { hidden: o.hidden, activation: o.activation as never, dropout: o.dropout });
      await model.build(e, data.inputShape, { seed: o.seed });
      trainer = await Trainer.create(model, {
        loss: data.task === 'classification' ? 'softmax_cross_entropy' : 'mse',
        optimizer: { kind: o.optimizer, lr: o.lr, momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay, schedule },
      });
    }
    const model = trainer.model;
    await trainer.trainStep(Math.min(o.batchSize, data.train.n), o.logEvery);
    log(model.summary());
    const remaining = Math.max(0, o.epochs - trainer.state.epoch);
    const history = await fitWithProgress(trainer, data, o, remaining);
    const t0 = performance.now();
    const last = history.at(-1);
    const test = last && last.valLoss !== undefined ? { loss: last.valLoss, accuracy: last.valAccuracy ?? null } : await trainer.evaluate(data.test, data);
    const testLine = data.task === 'classification' ? `test loss ${test.loss.toFixed(4)}, test accuracy ${pct(test.accuracy)}` : `test loss (MSE, standardised targets) ${test.loss.toFixed(4)}`;
    log('');
    console.log(testLine);
    if (o.metricsOut) {
      const trained = history.reduce((s, h) => s + h.seconds, 0) + (performance.now() - t0) / 1000;
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
      };
      const svg = await writeMetrics(o.metricsOut, metrics, history);
      log(`metrics written to ${o.metricsOut}${svg ? ` (curves: ${svg})` : ''}`);
    }
    trainer.dispose();
    model.dispose();
  });
}

async function fitWithProgress(trainer: Trainer, data: Dataset, o: TrainOptions, epochs: number): Promise<EpochEvent[]> {
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
      const val = data.task === 'classification' ? `test loss ${ev.valLoss?.toFixed(4)} acc ${pct(ev.valAccuracy)}` : `test loss ${ev.valLoss?.toFixed(4)}`;
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

export interface EvaluateOptions {
  checkpoint: string;
  dataset?: string;
  target?: string;
  metricsOut?: string;
}

export async function runEvaluate(o: EvaluateOptions): Promise<void> {
  await withEngine(async (e) => {
    const { trainer, dataset: info } = await openCheckpoint(e, o.checkpoint);
    const model = trainer.model;
    const spec = o.dataset ?? info?.name;
    if (!spec) throw new UsageError(`checkpoint ${o.checkpoint} does not say which dataset it was trained on; pass --dataset.`);
    const data = await loadDataset(spec, { target: o.target });
    checkDataMatches(data, info, o.checkpoint);
    const t0 = performance.now();
    const r = await trainer.evaluate(data.test, data);
    const seconds = (performance.now() - t0) / 1000;
    console.log(`${data.name} test: loss ${r.loss.toFixed(4)}${r.accuracy !== null ? `, accuracy ${pct(r.accuracy)}` : ''} (${r.n} samples)`);
    if (o.metricsOut) {
      const metrics: RunMetrics = {
        command: 'evaluate',
        dataset: data.name,
        model: model.nodes.map((n) => n.op.kind).join('-'),
        adapter: adapterSummary(e.adapter),
        epochs: trainer.state.epoch,
        trainLoss: [],
        trainAccuracy: [],
        testLoss: r.loss,
        testAccuracy: r.accuracy,
        samplesPerSecond: r.n / seconds,
        seconds,
        checkpoint: o.checkpoint,
      };
      await writeMetrics(o.metricsOut, metrics, []);
    }
    trainer.dispose();
    model.dispose();
  });
}

export interface PredictOptions {
  checkpoint: string;
  input?: string;
  dataset?: string;
  count: number;
  json?: boolean;
}

export async function runPredict(o: PredictOptions): Promise<void> {
  await withEngine(async (e) => {
    const { model, dataset: info } = await openModel(e, o.checkpoint);
    let x: Float32Array;
    let n: number;
    let truth: (number | null)[] = [];
    const size = sampleSize({ inputShape: [...model.inputShape] });
    if (o.input) {
      const idx = parseIdx(await readFileChecked(o.input), o.input, 'images');
      const per = idx.dims.slice(1).reduce((a, b) => a * b, 1);
      if (per !== size) throw new UsageError(`${o.input} holds images of ${idx.dims.slice(1).join('x')} = ${per} pixels; the model takes [${model.inputShape.join(', ')}] = ${size}.`);
      n = Math.min(o.count, idx.dims[0]);
      x = Float32Array.from(idx.data.subarray(0, n * size), (v) => v / 255);
      truth = new Array(n).fill(null);
    } else {
      const spec = o.dataset ?? info?.name;
      if (!spec) throw new UsageError('pass --input FILE or --dataset NAME.');
      const data = await loadDataset(spec, {});
      checkDataMatches(data, info, o.checkpoint);
      n = Math.min(o.count, data.test.n);
      x = new Float32Array(n * size);
      const { Batcher } = await import('../data/batcher.ts');
      const b = new Batcher(data.test, data, { batchSize: n, shuffle: false, seed: 0 });
      const y = new Float32Array(n);
      b.fill(0, 0, x, y);
      truth = Array.from(y);
    }
    const logits = await predict(model, x, n);
    const C = logits.length / n;
    const names = info?.classNames;
    for (let i = 0; i < n; i++) {
      const row = logits.subarray(i * C, (i + 1) * C);
      const max = Math.max(...row);
      const exps = Array.from(row, (v) => Math.exp(v - max));
      const sum = exps.reduce((a, b) => a + b, 0);
      const probs = exps.map((v) => v / sum);
      const cls = probs.indexOf(Math.max(...probs));
      const label = names?.[cls] ?? String(cls);
      if (o.json) console.log(JSON.stringify({ index: i, predicted: cls, label, probability: probs[cls], truth: truth[i] }));
      else console.log(`#${i}: ${label} (${(100 * probs[cls]).toFixed(1)}%)${truth[i] !== null ? `  true: ${names?.[truth[i]!] ?? truth[i]}${truth[i] === cls ? '' : '  MISTAKE'}` : ''}`);
    }
    model.dispose();
  });
}
