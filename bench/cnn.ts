// The CNN training-step benchmark for our engine: times the 'cnn' model preset on MNIST-shaped
// synthetic data with the same step loop as the MLP. The peers train the same architecture (CNN in
// workloads.ts) in bench/tfjs.ts and bench/jax.ts.
import type { Engine } from '../src/gpu/engine.ts';
import { FixedBatchSteps, timeRecordedSteps } from './recorded-steps.ts';
import { log, type Backend, type BenchRow, type ChildOptions, type Library } from './common.ts';
import { CNN, cnnBatch } from './workloads.ts';
import { netStepPlan, trainRows } from './timing.ts';

/** Time our CNN training step (the 'cnn' preset) as the MLP's is timed; returns its rows. */
export async function runOursCnn(e: Engine, opts: ChildOptions, who: { library: Library; backend: Backend }): Promise<BenchRow[]> {
  const { makePreset } = await import('../src/nn/presets.ts');
  const { Trainer } = await import('../src/train/trainer.ts');
  const model = makePreset(CNN.preset, CNN.classes);
  await model.build(e, CNN.inputShape, { seed: CNN.seed });
  const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: CNN.lr, momentum: 0 } });
  const { x, labels } = cnnBatch();
  const step = await trainer.trainStep(CNN.batch, opts.warmup + opts.steps + 1);
  const rec = new FixedBatchSteps(e, step, x, Float32Array.from(labels));
  try {
    const t = await timeRecordedSteps(e, rec, netStepPlan(opts));
    log(`ours cnn step: ${t.samples.map((v) => v.toFixed(0)).join(' ')} ms; loss ${t.firstLoss.toFixed(4)} -> ${t.lastLoss.toFixed(4)}`);
    const s = step.net.stats;
    const rows = trainRows(who, 'cnn', CNN.batch, t, {
      ops: model.nodes.map((n) => n.op.kind),
      parameters: model.parameterCount,
      dispatchesPerStep: s.dispatches.forward + step.loss.dispatches.length + s.dispatches.backward + trainer.optimizer.dispatches().length,
      submissionsPerStep: 1,
      activationBytes: s.reusedBytes,
      activationBytesWithoutReuse: s.plannedBytes,
    });
    rows.push({ ...who, benchmark: 'cnn-peak-gpu-bytes', value: e.stats().peakBytesHeld, unit: 'bytes', extra: { what: 'engine.stats().peakBytesHeld over the CNN benchmark' } });
    return rows;
  } finally {
    trainer.dispose();
    model.dispose();
  }
}
