// Benchmark child for jax-js on WebGPU: matmul GFLOP/s (a jit-compiled product) and the MLP
// training step as a jax-js user writes it: one jit of a function that takes valueAndGrad of the
// loss and returns the loss with the SGD-updated parameters; the loss is read back every step.
// Prints one JSON line ({rows, adapter}) on stdout.
import {
  attempt,
  SlowSizeGuard,
  describeShape,
  emit,
  gflops,
  log,
  matmulFlops,
  matmulShapes,
  MLP,
  mlpBatch,
  mlpWeights,
  operandShapes,
  parseChildArgs,
  sig,
  startChild,
  timeCalls,
  timeSteps,
  timingPlan,
  trainRows,
  uniform,
  type AdapterInfo,
  type BenchRow,
} from './common.ts';
import { installNavigatorGpu } from './node-gpu.ts';

type Jax = typeof import('@jax-js/jax');
type JArray = import('@jax-js/jax').Array;

const who = { library: 'jax-js' as const, backend: 'webgpu' as const };
const rows: BenchRow[] = [];
const info: { adapter?: AdapterInfo } = {};
startChild(rows, info, who);

async function loadJax(): Promise<Jax> {
  info.adapter = await installNavigatorGpu();
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
      return nn.logSoftmax(h).mul(nn.oneHot(yb, L[L.length - 1])).sum().mul(-1 / B);
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
    const t = await timeSteps(step, opts.warmup, opts.steps);
    tree.dispose(params);
    x.dispose();
    y.dispose();
    log(`jax-js mlp step: ${t.samples.map((v) => v.toFixed(0)).join(' ')} ms; loss ${t.firstLoss.toFixed(4)} -> ${t.lastLoss.toFixed(4)}`);
    return trainRows(who, 'mlp', B, t);
  });
}

try {
  const opts = parseChildArgs(process.argv.slice(2));
  const jax = await loadJax();
  log(`jax-js on webgpu (${info.adapter!.name}, ${info.adapter!.description})`);
  if (opts.groups.has('matmul')) await benchMatmuls(jax, opts);
  if (opts.groups.has('mlp')) await benchMlp(jax, opts);
} catch (err) {
  rows.push({ ...who, benchmark: 'setup', unit: 'ms', error: err instanceof Error ? err.message : String(err) });
}
emit({ rows, adapter: info.adapter });
