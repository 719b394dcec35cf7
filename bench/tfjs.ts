// Benchmark child for TensorFlow.js (WebGPU or wasm backend, `--backend`): matmul GFLOP/s and the
// MLP training step, written the way a TF.js user would (tf.variable weights, tf.train.sgd,
// optimizer.minimize with tf.losses.softmaxCrossEntropy, the loss read back every step).
// Prints one JSON line ({rows, adapter}) on stdout.
import { createRequire, register } from 'node:module';
import { dirname } from 'node:path';
import { attempt, emit, log, parseChildArgs, startChild, type AdapterInfo, type Backend, type BenchRow } from './common.ts';
import { CNN, cnnBatch, describeShape, matmulFlops, matmulShapes, MLP, mlpBatch, mlpWeights, operandShapes, uniform } from './workloads.ts';
import { netStepPlan, gflops, sig, SlowSizeGuard, stepPlan, timeCalls, timeSteps, timingPlan, trainRows } from './timing.ts';
import { installNavigatorGpu } from './node-gpu.ts';
import { trackDeviceMemory } from './gpu-memory.ts';
import { RESNET, VIT } from './nets.ts';
import { timePeerNet } from './peer-net.ts';

type TF = typeof import('@tensorflow/tfjs-core');

const argv = process.argv.slice(2);
const backend = (argv[argv.indexOf('--backend') + 1] ?? 'webgpu') as Backend;
const who = { library: 'tfjs' as const, backend };
const rows: BenchRow[] = [];
const info: { adapter?: AdapterInfo } = {};
startChild(rows, info, who);

async function loadTf(): Promise<TF> {
  if (backend === 'webgpu') {
    info.adapter = await installNavigatorGpu();
    await trackDeviceMemory();
  }
  const tf = await import('@tensorflow/tfjs-core');
  // In Node, the core package's entry point registers no gradients (the `@tensorflow/tfjs` bundle
  // would). Register them from its ES modules: they share the global engine and gradient registry.
  register('./tfjs-resolve.mjs', import.meta.url);
  await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  if (backend === 'webgpu') {
    await import('@tensorflow/tfjs-backend-webgpu');
  } else {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dist = `${dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'))}/dist/`;
    wasm.setWasmPaths(dist);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js could not start its ${backend} backend.`);
  await tf.ready();
  return tf;
}

async function benchMatmuls(tf: TF, opts: ReturnType<typeof parseChildArgs>): Promise<void> {
  const plan = timingPlan(opts.quick);
  const guard = new SlowSizeGuard(opts);
  for (const s of matmulShapes(opts.sizes, 'tfjs')) {
    const skip = guard.skipReason(s);
    if (skip) {
      log(`${who.library}/${who.backend} ${s.benchmark}: ${skip}`);
      rows.push({ ...who, benchmark: s.benchmark, unit: 'GFLOP/s', error: skip });
      continue;
    }
    await attempt(rows, { ...who, benchmark: s.benchmark, unit: 'GFLOP/s' }, async () => {
      const { a: aShape, b: bShape } = operandShapes(s);
      const a = tf.tensor2d(uniform(aShape[0] * aShape[1], 1), aShape);
      const b = tf.tensor2d(uniform(bShape[0] * bShape[1], 2), bShape);
      // Back-to-back products, then a 1-element read of the last one: the read waits for all of
      // them without timing a large readback.
      const run = async (calls: number) => {
        let last: import('@tensorflow/tfjs-core').Tensor | null = null;
        for (let i = 0; i < calls; i++) {
          const c = tf.matMul(a, b, s.transA, s.transB);
          last?.dispose();
          last = c;
        }
        const probe = tf.slice(last!, [0, 0], [1, 1]);
        await probe.data();
        probe.dispose();
        last!.dispose();
      };
      const t = await timeCalls(run, plan);
      guard.measured(s, t.ms);
      a.dispose();
      b.dispose();
      log(`tfjs/${backend} ${s.benchmark}: ${t.ms.toFixed(2)} ms, ${gflops(matmulFlops(s), t.ms).toFixed(2)} GFLOP/s (${t.reps}x${t.calls})`);
      return { ...who, benchmark: s.benchmark, value: sig(gflops(matmulFlops(s), t.ms)), unit: 'GFLOP/s', extra: { shape: describeShape(s), ms: sig(t.ms), calls: t.calls, reps: t.reps } };
    });
  }
}

async function benchMlp(tf: TF, opts: ReturnType<typeof parseChildArgs>): Promise<void> {
  await attempt(rows, { ...who, benchmark: 'mlp-train-step', unit: 'ms' }, async () => {
    const { w, b } = mlpWeights();
    const L = MLP.layers;
    const W = w.map((wi, i) => tf.variable(tf.tensor2d(wi, [L[i], L[i + 1]]), true, `w${i}`));
    const Bs = b.map((bi, i) => tf.variable(tf.tensor1d(bi), true, `b${i}`));
    const { x, labels } = mlpBatch();
    const xs = tf.tensor2d(x, [MLP.batch, L[0]]);
    const ys = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), L[L.length - 1]), 'float32'));
    const optimizer = tf.train.sgd(MLP.lr);
    const lossFn = () => {
      let h: import('@tensorflow/tfjs-core').Tensor = xs;
      for (let i = 0; i < W.length; i++) {
        h = tf.add(tf.matMul(h, W[i]), Bs[i]);
        if (i + 1 < W.length) h = tf.relu(h);
      }
      return tf.losses.softmaxCrossEntropy(ys, h) as import('@tensorflow/tfjs-core').Scalar;
    };
    const step = async () => {
      const loss = optimizer.minimize(lossFn, true)!;
      const v = (await loss.data())[0];
      loss.dispose();
      return v;
    };
    const t = await timeSteps(step, stepPlan(opts));
    const mem = tf.memory() as { numBytes: number; numBytesInGPU?: number; numBytesInGPUAllocated?: number };
    const flags = backend === 'wasm' ? { simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), threads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') } : {};
    log(`tfjs/${backend} mlp step: ${t.samples.map((v) => v.toFixed(0)).join(' ')} ms; loss ${t.firstLoss.toFixed(4)} -> ${t.lastLoss.toFixed(4)}`);
    return trainRows(who, 'mlp', MLP.batch, t, { tensorBytes: mem.numBytes, ...flags });
  });
}

/** The CNN step (NHWC, TF.js's layout), with BatchNorm on batch statistics as ours trains it. */
async function benchCnn(tf: TF, opts: ReturnType<typeof parseChildArgs>): Promise<void> {
  type T = import('@tensorflow/tfjs-core').Tensor;
  type T4 = import('@tensorflow/tfjs-core').Tensor4D;
  await attempt(rows, { ...who, benchmark: 'cnn-train-step', unit: 'ms' }, async () => {
    const [c1, c2] = CNN.channels;
    const glorot = (shape: number[], fanIn: number, fanOut: number, seed: number) => {
      const lim = Math.sqrt(6 / (fanIn + fanOut));
      return tf.variable(
        tf.tensor(
          uniform(
            shape.reduce((a, b) => a * b, 1),
            seed,
            -lim,
            lim,
          ),
          shape,
        ),
      );
    };
    const v = (shape: number[], value: number) => tf.variable(tf.fill(shape, value));
    const flat = 7 * 7 * c2;
    const p = {
      w1: glorot([3, 3, 1, c1], 9, 9 * c1, CNN.seed + 10),
      b1: v([c1], 0),
      g1: v([c1], 1),
      be1: v([c1], 0),
      w2: glorot([3, 3, c1, c2], 9 * c1, 9 * c2, CNN.seed + 11),
      b2: v([c2], 0),
      g2: v([c2], 1),
      be2: v([c2], 0),
      w3: glorot([flat, CNN.hidden], flat, CNN.hidden, CNN.seed + 12),
      b3: v([CNN.hidden], 0),
      w4: glorot([CNN.hidden, CNN.classes], CNN.hidden, CNN.classes, CNN.seed + 13),
      b4: v([CNN.classes], 0),
    };
    const { x: xHost, labels } = cnnBatch();
    const x = tf.tensor4d(xHost, [CNN.batch, 28, 28, 1]);
    const ys = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), CNN.classes), 'float32'));
    const block = (h: T, w: T, b: T, g: T, be: T) => {
      const a = tf.maxPool(tf.relu(tf.add(tf.conv2d(h as T4, w as T4, 1, 'same'), b)) as T4, 2, 2, 'valid');
      const { mean, variance } = tf.moments(a, [0, 1, 2]);
      return tf.batchNorm(a, mean, variance, be, g, 1e-5);
    };
    const optimizer = tf.train.sgd(CNN.lr);
    const lossFn = () => {
      let h = block(x, p.w1, p.b1, p.g1, p.be1);
      h = block(h, p.w2, p.b2, p.g2, p.be2);
      h = tf.relu(tf.add(tf.matMul(tf.reshape(h, [CNN.batch, flat]), p.w3), p.b3));
      return tf.losses.softmaxCrossEntropy(ys, tf.add(tf.matMul(h, p.w4), p.b4)) as import('@tensorflow/tfjs-core').Scalar;
    };
    const step = async () => {
      const loss = optimizer.minimize(lossFn, true)!;
      const l = (await loss.data())[0];
      loss.dispose();
      return l;
    };
    const t = await timeSteps(step, netStepPlan(opts));
    log(`tfjs/${backend} cnn step: ${t.samples.map((s) => s.toFixed(0)).join(' ')} ms; loss ${t.firstLoss.toFixed(4)} -> ${t.lastLoss.toFixed(4)}`);
    return trainRows(who, 'cnn', CNN.batch, t, { layout: 'NHWC' });
  });
}

/** ResNet-20 or the ViT (bench/resnet.ts, bench/vit.ts), NHWC. */
async function benchNet(tf: TF, net: 'resnet' | 'vit', opts: ReturnType<typeof parseChildArgs>): Promise<void> {
  const spec = net === 'resnet' ? RESNET : VIT;
  await attempt(rows, { ...who, benchmark: `${spec.benchmark}-train-step`, unit: 'ms' }, async () => {
    const make = net === 'resnet' ? (await import('./resnet.ts')).tfjsResnet : (await import('./vit.ts')).tfjsVit;
    const selfReport = () => {
      const m = tf.memory() as { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
      return { tfjsNumBytesAllocatedInGPU: m.numBytesAllocatedInGPU, tfjsNumBytesInGPU: m.numBytesInGPU };
    };
    return timePeerNet(who, spec, () => make(tf), opts, { extra: { layout: 'NHWC' }, gpu: backend === 'webgpu', selfReport });
  });
}

try {
  const opts = parseChildArgs(argv);
  const tf = await loadTf();
  log(`tfjs ${tf.version_core} on ${tf.getBackend()}${info.adapter ? ` (${info.adapter.name}, ${info.adapter.description})` : ''}`);
  if (opts.groups.has('matmul')) await benchMatmuls(tf, opts);
  if (opts.groups.has('mlp')) await benchMlp(tf, opts);
  if (opts.cnn) await benchCnn(tf, opts);
  if (opts.groups.has('resnet')) await benchNet(tf, 'resnet', opts);
  if (opts.groups.has('vit')) await benchNet(tf, 'vit', opts);
} catch (err) {
  rows.push({ ...who, benchmark: 'setup', unit: 'ms', error: err instanceof Error ? err.message : String(err) });
}
emit({ rows, adapter: info.adapter });
