// The CNN training-step benchmark for our engine. The orchestrator runs it only when
// src/nn/conv.ts exists; the conv module registers its layers and the 'cnn' model preset, and this
// times that preset on MNIST-shaped synthetic data with the same step loop as the MLP. The peers
// train the same architecture (CNN in common.ts) in bench/tfjs.ts and bench/jax.ts.
import type { Engine } from '../src/gpu/engine.ts';
import { timeRecordedSteps } from './recorded-steps.ts';
import { log, type Backend, type BenchRow, type ChildOptions, type Library } from './common.ts';
import { CNN, cnnBatch } from './workloads.ts';
import { cnnStepPlan, trainRows } from './timing.ts';

/** Time our CNN training step (the 'cnn' preset) as the MLP's is timed; returns its rows. */
export async function runOursCnn(e: Engine, opts: ChildOptions, who: { library: Library; backend: Backend }): Promise<BenchRow[]> {
  await import('../src/nn/conv.ts' as string);
  const { makePreset, presetNames } = await import('../src/nn/presets.ts');
  if (!presetNames().includes(CNN.preset)) {
    throw new Error(`src/nn/conv.ts registered no '${CNN.preset}' preset (presets: ${presetNames().join(', ')}); bench/cnn.ts builds its model from it.`);
  }
  const { Sequential } = await import('../src/train/model.ts');
  const { StepRecorder } = await import('../src/train/bench-step.ts');
  const model = new Sequential(makePreset(CNN.preset, CNN.classes));
  await model.build(e, CNN.inputShape, { seed: CNN.seed });
  await model.compile({ loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: CNN.lr, momentum: 0 } });
  const { x, labels } = cnnBatch();
  const rec = await StepRecorder.create(model, CNN.batch, x, Float32Array.from(labels), { window: opts.warmup + opts.steps + 1 });
  try {
    const t = await timeRecordedSteps(e, rec, cnnStepPlan(opts));
    log(`ours cnn step: ${t.samples.map((v) => v.toFixed(0)).join(' ')} ms; loss ${t.firstLoss.toFixed(4)} -> ${t.lastLoss.toFixed(4)}`);
    const rows = trainRows(who, 'cnn', CNN.batch, t, { layers: model.layers.map((l) => l.kind), parameters: model.parameterCount });
    rows.push({ ...who, benchmark: 'cnn-peak-gpu-bytes', value: e.stats().peakBytesHeld, unit: 'bytes', extra: { what: 'engine.stats().peakBytesHeld over the CNN benchmark' } });
    return rows;
  } finally {
    rec.dispose();
    model.dispose();
  }
}
