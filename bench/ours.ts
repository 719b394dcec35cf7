// Benchmark child for our engine: matmul GFLOP/s (submit + onSubmittedWorkDone over back-to-back
// dispatches, plus kernel time from timestamp queries when the adapter has them), the MLP
// training step through Sequential's real training path (StepRecorder: what fit() records per
// step), our peak GPU bytes, a per-dispatch profile of one step, and the CNN step. Each group
// gets a fresh engine so that peak bytes count that group alone.
// Prints one JSON line ({rows, adapter}) on stdout.
import '../src/gpu/node-host.ts'; // Dawn as the GPU in Node
import { Engine } from '../src/gpu/engine.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { attempt, emit, log, parseChildArgs, startChild, type AdapterInfo, type BenchRow, type ChildOptions } from './common.ts';
import { describeShape, matmulFlops, matmulShapes, MLP, mlpBatch, mlpWeights, operandShapes, transpose, uniform, type MatmulShape } from './workloads.ts';
import { gflops, median, sig, SlowSizeGuard, stepPlan, timeCalls, timingPlan, trainRows } from './timing.ts';
import { GpuTimer } from './gpu-timer.ts';
import { profileStep, type StepProfile } from './profile.ts';
import { FixedBatchSteps, timeRecordedSteps } from './recorded-steps.ts';
import { trackDeviceMemory } from './gpu-memory.ts';
import { RESNET, resnetParams, VIT, vitParams } from './nets.ts';

const who = { library: 'ours' as const, backend: 'webgpu' as const };
const rows: BenchRow[] = [];
const info: { adapter?: AdapterInfo } = {};
startChild(rows, info, who);

async function withEngine<T>(f: (e: Engine) => Promise<T>, create = (o: { log: (s: string) => void }) => Engine.create(o)): Promise<T> {
  const e = await create({ log: info.adapter ? () => {} : log });
  info.adapter ??= { ...e.adapter };
  try {
    return await f(e);
  } finally {
    e.destroy();
  }
}

type MatmulModule = typeof import('../src/kernels/matmul.ts');

async function timeMatmul(e: Engine, mm: MatmulModule, s: MatmulShape, opts: ChildOptions, variant?: string) {
  const { a: aShape, b: bShape } = operandShapes(s);
  const a = e.tensor(aShape, uniform(aShape[0] * aShape[1], 1), 'a');
  const b = e.tensor(bShape, uniform(bShape[0] * bShape[1], 2), 'b');
  const c = e.tensor([s.M, s.N], undefined, 'c');
  const d = await mm.matmul(e, a, b, c, { transA: s.transA, transB: s.transB, variant });
  try {
    const t = await timeCalls(async (calls) => {
      for (let i = 0; i < calls; i++) e.run(d);
      await e.sync();
    }, timingPlan(opts.quick));
    let kernelMs: number | undefined;
    const timer = new GpuTimer(e);
    // Kernel time from timestamps, in separate runs (skipped when one sample already took seconds).
    if (timer.method === 'timestamp-query' && t.ms * t.calls < 2000) {
      const reps = Math.min(t.reps, 3);
      const ks: number[] = [];
      for (let r = 0; r < reps; r++) ks.push((await timer.time([new Array(t.calls).fill(d)]))[0] / t.calls);
      kernelMs = median(ks);
    }
    return { t, kernelMs };
  } finally {
    d.dispose();
    for (const x of [a, b, c] as Tensor[]) x.dispose();
  }
}

async function benchMatmuls(opts: ChildOptions): Promise<void> {
  const mm: MatmulModule = await import('../src/kernels/matmul.ts');
  await withEngine(async (e) => {
    const guard = new SlowSizeGuard(opts);
    for (const s of matmulShapes(opts.sizes, 'ours')) {
      const skip = guard.skipReason(s);
      if (skip) {
        log(`${who.library}/${who.backend} ${s.benchmark}: ${skip}`);
        rows.push({ ...who, benchmark: s.benchmark, unit: 'GFLOP/s', error: skip });
        continue;
      }
      await attempt(rows, { ...who, benchmark: s.benchmark, unit: 'GFLOP/s' }, async () => {
        const flops = matmulFlops(s);
        const { t, kernelMs } = await timeMatmul(e, mm, s, opts);
        guard.measured(s, t.ms);
        const extra: Record<string, unknown> = { shape: describeShape(s), ms: sig(t.ms), calls: t.calls, reps: t.reps };
        if (kernelMs !== undefined) Object.assign(extra, { kernelMs: sig(kernelMs), kernelGflops: sig(gflops(flops, kernelMs)) });
        extra.variant = await mm.chooseMatmulVariant(e, s.M, s.N, s.K, s);
        if (opts.variants) {
          const variants: Record<string, number | string> = {};
          for (const v of mm.matmulVariantsFor(e)) {
            try {
              variants[v] = sig(gflops(flops, (await timeMatmul(e, mm, s, opts, v)).t.ms));
            } catch (err) {
              variants[v] = `error: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
            }
          }
          extra.variants = variants;
        }
        log(`ours ${s.benchmark}: ${t.ms.toFixed(2)} ms, ${gflops(flops, t.ms).toFixed(2)} GFLOP/s (${t.reps}x${t.calls})${kernelMs !== undefined ? `; kernel ${kernelMs.toFixed(2)} ms` : ''}`);
        return { ...who, benchmark: s.benchmark, value: sig(gflops(flops, t.ms)), unit: 'GFLOP/s', extra };
      });
    }
  });
}

async function benchMlp(opts: ChildOptions): Promise<void> {
  await attempt(rows, { ...who, benchmark: 'mlp-train-step', unit: 'ms' }, async () => {
    const { Sequential } = await import('../src/nn/sequential.ts');
    const { Dense } = await import('../src/nn/dense.ts');
    const { ReLU } = await import('../src/nn/activations.ts');
    const { Trainer } = await import('../src/train/trainer.ts');
    return withEngine(async (e) => {
      const L = MLP.layers;
      const model = new Sequential([new Dense(L[1]), ReLU(), new Dense(L[2]), ReLU(), new Dense(L[3])]);
      await model.build(e, [L[0]], { seed: MLP.seed });
      const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: MLP.lr, momentum: 0 } });
      // Start from the same weights as the peers (they store [in, out]; Dense stores [out, in]).
      const { w } = mlpWeights();
      const dense = model.layers.filter((l): l is InstanceType<typeof Dense> => l instanceof Dense);
      dense.forEach((l, i) => {
        e.write(l.weight!.value, transpose(w[i], L[i], L[i + 1]));
        if (l.bias) e.fill(l.bias.value, 0);
      });
      const { x, labels } = mlpBatch();
      const total = opts.warmup + opts.steps;
      const step = await trainer.trainStep(MLP.batch, Math.max(25, total + 1));
      const rec = new FixedBatchSteps(e, step, x, Float32Array.from(labels));
      try {
        // Per-step latency: each step recorded, submitted and waited for (the peers read their loss every step).
        const t = await timeRecordedSteps(e, rec, stepPlan(opts));
        // Throughput as fit() paces steps: two in flight, losses read every window.
        const pipeSteps = Math.max(3, opts.stepsGiven ? opts.steps : Math.min(opts.steps, 10));
        const t0 = performance.now();
        await rec.run(pipeSteps);
        const pipelinedSps = (pipeSteps * MLP.batch * 1000) / (performance.now() - t0);
        await rec.readLosses();
        const profile = await profileStep(e, rec, new GpuTimer(e));
        const stats = e.stats();
        log(`ours mlp step: ${t.samples.map((v) => v.toFixed(0)).join(' ')} ms; loss ${t.firstLoss.toFixed(4)} -> ${t.lastLoss.toFixed(4)}; pipelined ${pipelinedSps.toFixed(0)} samples/s`);
        const out = trainRows(who, 'mlp', MLP.batch, t, {
          dispatchesPerStep: profile.dispatches.length,
          submissionsPerStep: 1,
          activationBytes: step.net.stats.reusedBytes,
          activationBytesWithoutReuse: step.net.stats.plannedBytes,
          profile: compactProfile(profile),
        });
        out[1].extra = { ...out[1].extra, pipelined: sig(pipelinedSps), pipelinedBasis: 'fit() pacing: two steps in flight' };
        out.push({
          ...who,
          benchmark: 'peak-gpu-bytes',
          value: stats.peakBytesHeld,
          unit: 'bytes',
          extra: { what: 'engine.stats().peakBytesHeld over build, compile and training of the MLP', bytesHeldAfter: stats.bytesHeld, parameters: model.parameterCount },
        });
        return out;
      } finally {
        trainer.dispose();
        model.dispose();
      }
    });
  });
}

function compactProfile(p: StepProfile): Record<string, unknown> {
  return {
    method: p.method,
    totalMs: sig(p.totalMs),
    byPhase: p.byPhase.map((x) => ({ phase: x.phase, ms: sig(x.ms) })),
    byKernel: p.byKernel.map((k) => ({ kernel: k.kernel, ms: sig(k.ms), count: k.count, share: sig(k.ms / p.totalMs, 3) })),
    byDispatch: p.dispatches.map((d) => ({ at: `${d.phase}#${d.index}`, kernel: d.kernel, ms: sig(d.ms) })),
  };
}

async function benchCnn(opts: ChildOptions): Promise<void> {
  await attempt(rows, { ...who, benchmark: 'cnn-train-step', unit: 'ms' }, async () => {
    const { runOursCnn } = await import('./cnn.ts');
    return withEngine((e) => runOursCnn(e, opts, who));
  });
}

/** ResNet-20 (batch 32) and its memory row (batch 128, WebGPU's default limits), or the ViT. */
async function benchNet(net: 'resnet' | 'vit', opts: ChildOptions): Promise<void> {
  const { runOursNet, runOursNetMemory } = await import('./nets-ours.ts');
  const [spec, params] = net === 'resnet' ? [RESNET, resnetParams()] : [VIT, vitParams()];
  await attempt(rows, { ...who, benchmark: `${spec.benchmark}-train-step`, unit: 'ms' }, () => withEngine((e) => runOursNet(e, spec, params, opts, who)));
  if (net !== 'resnet') return;
  const batch = RESNET.memoryBatch;
  await attempt(rows, { ...who, benchmark: `${spec.benchmark}-b${batch}-peak-gpu-bytes`, unit: 'bytes' }, () =>
    withEngine(
      (e) => runOursNetMemory(e, spec, params, batch, who),
      (o) => Engine.create({ ...o, limits: 'default' }),
    ),
  );
}

try {
  const opts = parseChildArgs(process.argv.slice(2));
  await trackDeviceMemory();
  if (opts.groups.has('matmul')) await benchMatmuls(opts);
  if (opts.groups.has('mlp')) await benchMlp(opts);
  if (opts.cnn) await benchCnn(opts);
  if (opts.groups.has('resnet')) await benchNet('resnet', opts);
  if (opts.groups.has('vit')) await benchNet('vit', opts);
  if (!info.adapter) await withEngine(async () => {});
} catch (err) {
  rows.push({ ...who, benchmark: 'setup', unit: 'ms', error: err instanceof Error ? err.message : String(err) });
}
emit({ rows, adapter: info.adapter });
