// Our side of the ResNet-20 and ViT benchmarks: the preset built as a user builds it, the seeded
// weights of bench/nets.ts written by parameter name, and the training step through the library's
// TrainStep (what fit() records per step), timed as the CNN's is. Also the memory row: ResNet-20
// at a larger batch on a device with WebGPU's default limits, its peak GPU bytes beside the
// activation bytes that lifetime reuse saved.
import type { Engine } from '../src/gpu/engine.ts';
import type { Model } from '../src/nn/model.ts';
import { log, type Backend, type BenchRow, type ChildOptions, type Library } from './common.ts';
import { deviceMemory, resetDevicePeak } from './gpu-memory.ts';
import { initialWeights, netBatch, type NetSpec, type ParamSpec } from './nets.ts';
import { FixedBatchSteps, timeRecordedSteps } from './recorded-steps.ts';
import { netStepPlan, sig, trainRows } from './timing.ts';

type Who = { library: Library; backend: Backend };

/**
 * How our model's parameters differ from the shared list (names, shapes, count); null when they
 * match. A difference means the preset changed and bench/nets.ts must follow it.
 */
export function paramMismatch(ours: { name: string; value: { shape: readonly number[] } }[], specs: ParamSpec[]): string | null {
  const want = new Map(specs.map((p) => [p.name, p]));
  const have = new Set(ours.map((p) => p.name));
  const problems = [
    ...ours.filter((p) => want.get(p.name)?.shape.join('x') !== p.value.shape.join('x')).map((p) => `${p.name} [${p.value.shape.join(', ')}] vs ${want.has(p.name) ? `[${want.get(p.name)!.shape.join(', ')}]` : 'none'}`),
    ...specs.filter((p) => !have.has(p.name)).map((p) => `${p.name} missing from ours`),
  ];
  return problems.length ? problems.join('; ') : null;
}

/** Build our preset for `spec` and write the shared initial weights into it by name. */
async function buildNet(e: Engine, spec: NetSpec, params: ParamSpec[]): Promise<Model> {
  const { makePreset } = await import('../src/nn/presets.ts');
  const model = makePreset(spec.preset, spec.classes, spec.options);
  await model.build(e, [...spec.inputShape], { seed: spec.seed });
  const mismatch = paramMismatch(model.params(), params);
  if (mismatch) {
    model.dispose();
    throw new Error(`our ${spec.preset} preset no longer matches bench/nets.ts: ${mismatch}`);
  }
  const weights = initialWeights(params, spec.seed);
  for (const p of model.params()) e.write(p.value, weights.get(p.name)!);
  return model;
}

/** Time our training step of `spec` (in a fresh engine, so that its peak bytes count this network alone). */
export async function runOursNet(e: Engine, spec: NetSpec, params: ParamSpec[], opts: ChildOptions, who: Who): Promise<BenchRow[]> {
  const base = resetDevicePeak();
  const { Trainer } = await import('../src/train/trainer.ts');
  const model = await buildNet(e, spec, params);
  const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: spec.lr, momentum: 0 } });
  const plan = netStepPlan(opts);
  const step = await trainer.trainStep(spec.batch, plan.warmup + plan.steps + 1);
  const { x, labels } = netBatch(spec);
  const rec = new FixedBatchSteps(e, step, x, Float32Array.from(labels));
  try {
    const t = await timeRecordedSteps(e, rec, plan);
    log(`ours ${spec.benchmark} step: ${t.samples.map((v) => v.toFixed(0)).join(' ')} ms; loss ${t.firstLoss.toFixed(4)} -> ${t.lastLoss.toFixed(4)}`);
    const s = step.net.stats;
    const rows = trainRows(who, spec.benchmark, spec.batch, t, {
      parameters: model.parameterCount,
      dispatchesPerStep: s.dispatches.forward + step.loss.dispatches.length + s.dispatches.backward + trainer.optimizer.dispatches().length,
      submissionsPerStep: 1,
      activationBytes: s.reusedBytes,
      activationBytesWithoutReuse: s.plannedBytes,
      algorithms: convAlgorithms(model),
    });
    const dev = deviceMemory();
    rows.push({
      ...who,
      benchmark: `${spec.benchmark}-peak-gpu-bytes`,
      value: dev.peak - base,
      unit: 'bytes',
      extra: { what: 'peak bytes of live GPU buffers on the device over build, planning and training', enginePeakBytesHeld: e.stats().peakBytesHeld },
    });
    return rows;
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

/** Each convolution's chosen algorithm, by module path (what the tuner picked on this adapter). */
function convAlgorithms(model: Model): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of model.nodes) if ('algorithm' in n.op && n.op.algorithm) out[n.path] = String(n.op.algorithm);
  return out;
}

/**
 * ResNet-20 at `batch` on an engine whose device has WebGPU's default limits (`e` must be one):
 * build, plan and one training step (the plan is fixed: later steps hold no more); the rows are
 * the peak GPU bytes, and the activation bytes with lifetime reuse beside those without it.
 */
export async function runOursNetMemory(e: Engine, spec: NetSpec, params: ParamSpec[], batch: number, who: Who): Promise<BenchRow[]> {
  const base = resetDevicePeak();
  const { Trainer } = await import('../src/train/trainer.ts');
  const model = await buildNet(e, spec, params);
  const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: spec.lr, momentum: 0 } });
  const step = await trainer.trainStep(batch, 4);
  const { x, labels } = netBatch(spec, batch);
  const rec = new FixedBatchSteps(e, step, x, Float32Array.from(labels));
  try {
    const t0 = performance.now();
    await rec.run(1);
    const ms = performance.now() - t0;
    const losses = await rec.readLosses();
    if (!losses.every(Number.isFinite)) throw new Error(`training at batch ${batch} gave non-finite losses (${losses.join(', ')})`);
    const s = step.net.stats;
    const dev = deviceMemory();
    const limits = e.device.limits;
    const name = `${spec.benchmark}-b${batch}`;
    const extra = {
      batch,
      deviceLimits: { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize, maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize },
      largestBufferBytes: dev.largest,
      losses: losses.map((l) => sig(l, 6)),
      firstStepMs: sig(ms),
    };
    log(
      `ours ${name}: peak ${(e.stats().peakBytesHeld / 2 ** 20).toFixed(1)} MiB held; activations ${(s.reusedBytes / 2 ** 20).toFixed(1)} MiB with reuse, ${(s.plannedBytes / 2 ** 20).toFixed(1)} MiB without; largest buffer ${(dev.largest / 2 ** 20).toFixed(1)} MiB`,
    );
    return [
      {
        ...who,
        benchmark: `${name}-peak-gpu-bytes`,
        value: e.stats().peakBytesHeld,
        unit: 'bytes',
        extra: { ...extra, what: "engine.stats().peakBytesHeld over build, planning and a training step, on a device with WebGPU's default limits", devicePeakBytes: dev.peak - base },
      },
      { ...who, benchmark: `${name}-activation-bytes`, value: s.reusedBytes, unit: 'bytes', extra: { what: 'activations, gradients and scratch of one step, in buffers shared by lifetime', buffers: s.buffers } },
      {
        ...who,
        benchmark: `${name}-activation-bytes-without-reuse`,
        value: s.plannedBytes,
        unit: 'bytes',
        extra: { what: 'the same tensors, each in its own buffer', tensors: s.tensors, savedBytes: s.plannedBytes - s.reusedBytes },
      },
    ];
  } finally {
    trainer.dispose();
    model.dispose();
  }
}
