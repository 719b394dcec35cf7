// Benchmark child for jax-js on WebGPU: matmul GFLOP/s (a jit-compiled product) and the MLP
// training step as a jax-js user writes it: one jit of a function that takes valueAndGrad of the
// loss and returns the loss with the SGD-updated parameters; the loss is read back every step.
// Prints one JSON line ({rows, adapter}) on stdout.
import { attempt, emit, log, parseChildArgs, startChild, type AdapterInfo, type BenchRow } from './common.ts';
import { CNN, cnnBatch, describeShape, matmulFlops, matmulShapes, MLP, mlpBatch, mlpWeights, operandShapes, uniform } from './workloads.ts';
import { netStepPlan, gflops, sig, SlowSizeGuard, stepPlan, timeCalls, timeSteps, timingPlan, trainRows } from './timing.ts';
import { installNavigatorGpu } from './node-gpu.ts';
import { trackDeviceMemory } from './gpu-memory.ts';
import { RESNET, VIT } from './nets.ts';
import { timePeerNet } from './peer-net.ts';

type Jax = typeof import('@jax-js/jax');
type JArray = import('@jax-js/jax').Array;

const who = { library: 'jax-js' as const, backend: 'webgpu' as const };
const rows: BenchRow[] = [];
const info: { adapter?: AdapterInfo } = {};
startChild(rows, info, who);

async function loadJax(): Promise<Jax> {
  info.adapter = await installNavigatorGpu();
  await trackDeviceMemory();
  const jax = await import('@jax-js/jax');
  const devices = await jax.init();
  if (!devices.includes('webgpu')) throw new Error(`jax-js found no WebGPU device (devices: ${devices.join(', ')}).`);
  jax.defaultDevice('webgpu');
  return jax;
}

async function benchMatmuls(jax: Jax, opts: ReturnType<typeof parseChildArgs>): Promise<void> {
  const np = jax.numpy;
  const plan = timingPlan(opts.quick);
  const guard = new SlowSizeGuard(opts);
  for (const s of matmulShapes(opts.sizes, 'jax-js')) {
    const skip = guard.skipReason(s);
    if (skip) {
      log(`${who.library}/${who.backend} ${s.benchmark}: ${skip}`);
      rows.push({ ...who, benchmark: s.benchmark, unit: 'GFLOP/s', error: skip });
      continue;
    }
    await attempt(rows, { ...who, benchmark: s.benchmark, unit: 'GFLOP/s' }, async () => {
      const { a: aShape, b: bShape } = operandShapes(s);
      const a = np.array(uniform(aShape[0] * aShape[1], 1)).reshape(aShape);
      const b = np.array(uniform(bShape[0] * bShape[1], 2)).reshape(bShape);
      const mm = jax.jit((x: JArray, y: JArray) => np.matmul(s.transA ? x.transpose() : x, s.transB ? y.transpose() : y));
      // Back-to-back products, then wait for the last one (jax-js runs them in order).
      const run = async (calls: number) => {
        const outs: JArray[] = [];
        for (let i = 0; i < calls; i++) outs.push(mm(a.ref, b.ref));
        await outs[outs.length - 1].blockUntilReady();
        for (const o of outs) o.dispose();
      };
      const t = await timeCalls(run, plan);
      guard.measured(s, t.ms);
      a.dispose();
      b.dispose();
      mm.dispose();
      log(`jax-js ${s.benchmark}: ${t.ms.toFixed(2)} ms, ${gflops(matmulFlops(s), t.ms).toFixed(2)} GFLOP/s (${t.reps}x${t.calls})`);
      return { ...who, benchmark: s.benchmark, value: sig(gflops(matmulFlops(s), t.ms)), unit: 'GFLOP/s', extra: { shape: describeShape(s), ms: sig(t.ms), calls: t.calls, reps: t.reps } };
    });
  }
}

async function benchMlp(jax: Jax, opts: ReturnType<typeof parseChildArgs>): Promise<void> {
  const { numpy: np, nn, tree } = jax;
  await attempt(rows, { ...who, benchmark: 'mlp-train-step', unit: 'ms' }, async () => {
    const L = MLP.layers;
    const B = MLP.batch;
    const { w, b } = mlpWeights();
    type Params = { w: JArray[]; b: JArray[] };
    let params: Params = {
      w: w.map((wi, i) => np.array(wi).reshape([L[i], L[i + 1]])),
      b: b.map((bi) => np.array(bi)),
    };
    const { x: xHost, labels } = mlpBatch();
    const x = np.array(xHost).reshape([B, L[0]]);
    const y = np.array(labels, { dtype: np.int32 });
    const loss = (p: Params, xb: JArray, yb: JArray): JArray => {
      let h = xb;
      for (let i = 0; i < p.w.length; i++) {
        h = np.dot(h, p.w[i]).add(p.b[i]);
        if (i + 1 < p.w.length) h = nn.relu(h);
      }
      return nn
        .logSoftmax(h)
        .mul(nn.oneHot(yb, L[L.length - 1]))
        .sum()
        .mul(-1 / B);
    };
    const trainStep = jax.jit((p: Params, xb: JArray, yb: JArray): [JArray, Params] => {
      const [l, g] = jax.valueAndGrad(loss)(tree.ref(p), xb, yb);
      const next = tree.map((pi: JArray, gi: JArray) => pi.sub(gi.mul(MLP.lr)), p, g) as Params;
      return [l, next];
    });
    const step = async () => {
      const [l, next] = trainStep(params, x.ref, y.ref);
      params = next;
      // data() consumes the array's reference.
      return (await l.data())[0];
    };
    const t = await timeSteps(step, stepPlan(opts));
    tree.dispose(params);
    x.dispose();
    y.dispose();
    log(`jax-js mlp step: ${t.samples.map((v) => v.toFixed(0)).join(' ')} ms; loss ${t.firstLoss.toFixed(4)} -> ${t.lastLoss.toFixed(4)}`);
    return trainRows(who, 'mlp', B, t);
  });
}

/** The CNN step (NCHW, as ours), one jit like the MLP's, BatchNorm on batch statistics. */
async function benchCnn(jax: Jax, opts: ReturnType<typeof parseChildArgs>): Promise<void> {
  const { numpy: np, nn, lax, tree } = jax;
  await attempt(rows, { ...who, benchmark: 'cnn-train-step', unit: 'ms' }, async () => {
    const [c1, c2] = CNN.channels;
    const B = CNN.batch;
    const flat = c2 * 7 * 7;
    const glorot = (shape: number[], fanIn: number, fanOut: number, seed: number) => {
      const lim = Math.sqrt(6 / (fanIn + fanOut));
      return np
        .array(
          uniform(
            shape.reduce((a, b) => a * b, 1),
            seed,
            -lim,
            lim,
          ),
        )
        .reshape(shape);
    };
    const full = (n: number, value: number) => np.array(new Float32Array(n).fill(value));
    type Params = Record<'w1' | 'b1' | 'g1' | 'be1' | 'w2' | 'b2' | 'g2' | 'be2' | 'w3' | 'b3' | 'w4' | 'b4', JArray>;
    let params: Params = {
      w1: glorot([c1, 1, 3, 3], 9, 9 * c1, CNN.seed + 10),
      b1: full(c1, 0),
      g1: full(c1, 1),
      be1: full(c1, 0),
      w2: glorot([c2, c1, 3, 3], 9 * c1, 9 * c2, CNN.seed + 11),
      b2: full(c2, 0),
      g2: full(c2, 1),
      be2: full(c2, 0),
      w3: glorot([flat, CNN.hidden], flat, CNN.hidden, CNN.seed + 12),
      b3: full(CNN.hidden, 0),
      w4: glorot([CNN.hidden, CNN.classes], CNN.hidden, CNN.classes, CNN.seed + 13),
      b4: full(CNN.classes, 0),
    };
    const { x: xHost, labels } = cnnBatch();
    const x = np.array(xHost).reshape([B, 1, 28, 28]);
    const y = np.array(labels, { dtype: np.int32 });
    const block = (h: JArray, w: JArray, b: JArray, g: JArray, be: JArray, C: number): JArray => {
      const perChannel = (t: JArray) => t.reshape([1, C, 1, 1]);
      const z = nn.relu(lax.convGeneralDilated(h, w, [1, 1], 'SAME').add(perChannel(b)));
      const a = lax.reduceWindow(z, (t: JArray) => np.max(t), [2, 2], [2, 2]);
      const centered = a.ref.sub(np.mean(a, [0, 2, 3], { keepdims: true }));
      const variance = np.mean(np.square(centered.ref), [0, 2, 3], { keepdims: true });
      return centered
        .mul(np.reciprocal(np.sqrt(variance.add(1e-5))))
        .mul(perChannel(g))
        .add(perChannel(be));
    };
    const loss = (p: Params, xb: JArray, yb: JArray): JArray => {
      let h = block(xb, p.w1, p.b1, p.g1, p.be1, c1);
      h = block(h, p.w2, p.b2, p.g2, p.be2, c2);
      h = nn.relu(np.dot(h.reshape([B, flat]), p.w3).add(p.b3));
      const logits = np.dot(h, p.w4).add(p.b4);
      return nn
        .logSoftmax(logits)
        .mul(nn.oneHot(yb, CNN.classes))
        .sum()
        .mul(-1 / B);
    };
    const trainStep = jax.jit((p: Params, xb: JArray, yb: JArray): [JArray, Params] => {
      const [l, g] = jax.valueAndGrad(loss)(tree.ref(p), xb, yb);
      return [l, tree.map((pi: JArray, gi: JArray) => pi.sub(gi.mul(CNN.lr)), p, g) as Params];
    });
    const step = async () => {
      const [l, next] = trainStep(params, x.ref, y.ref);
      params = next;
      return (await l.data())[0];
    };
    const t = await timeSteps(step, netStepPlan(opts));
    tree.dispose(params);
    x.dispose();
    y.dispose();
    log(`jax-js cnn step: ${t.samples.map((v) => v.toFixed(0)).join(' ')} ms; loss ${t.firstLoss.toFixed(4)} -> ${t.lastLoss.toFixed(4)}`);
    return trainRows(who, 'cnn', B, t, { layout: 'NCHW' });
  });
}

/** ResNet-20 or the ViT (bench/resnet.ts, bench/vit.ts), NCHW, one jit per step. */
async function benchNet(jax: Jax, net: 'resnet' | 'vit', opts: ReturnType<typeof parseChildArgs>): Promise<void> {
  const spec = net === 'resnet' ? RESNET : VIT;
  await attempt(rows, { ...who, benchmark: `${spec.benchmark}-train-step`, unit: 'ms' }, async () => {
    const make = net === 'resnet' ? (await import('./resnet.ts')).jaxResnet : (await import('./vit.ts')).jaxVit;
    return timePeerNet(who, spec, () => make(jax), opts, { extra: { layout: 'NCHW' }, gpu: true });
  });
}

try {
  const opts = parseChildArgs(process.argv.slice(2));
  const jax = await loadJax();
  log(`jax-js on webgpu (${info.adapter!.name}, ${info.adapter!.description})`);
  if (opts.groups.has('matmul')) await benchMatmuls(jax, opts);
  if (opts.groups.has('mlp')) await benchMlp(jax, opts);
  if (opts.cnn) await benchCnn(jax, opts);
  if (opts.groups.has('resnet')) await benchNet(jax, 'resnet', opts);
  if (opts.groups.has('vit')) await benchNet(jax, 'vit', opts);
} catch (err) {
  rows.push({ ...who, benchmark: 'setup', unit: 'ms', error: err instanceof Error ? err.message : String(err) });
}
emit({ rows, adapter: info.adapter });
