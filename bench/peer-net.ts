// A peer library's ResNet-20 or ViT step (bench/resnet.ts, bench/vit.ts), timed as the CNN's is,
// with the peak GPU bytes of live buffers on the device (bench/gpu-memory.ts) where it runs on one.
import { log, type Backend, type BenchRow, type ChildOptions, type Library } from './common.ts';
import { deviceMemory, resetDevicePeak } from './gpu-memory.ts';
import type { NetSpec } from './nets.ts';
import { netStepPlan, timeSteps, trainRows } from './timing.ts';

/** A peer's training step on the shared batch: resolves to that step's loss once it can be read. */
export interface PeerStep {
  step: () => Promise<number>;
  dispose: () => void;
}

type TF = typeof import('@tensorflow/tfjs-core');
type Jax = typeof import('@jax-js/jax');
type JArray = import('@jax-js/jax').Array;

/**
 * A TF.js step as its users write one: plain SGD's `optimizer.minimize` of `lossFn`, then the loss
 * read back; `owned` (variables, the batch) is disposed with it.
 */
export function tfjsSgdStep(tf: TF, lossFn: () => import('@tensorflow/tfjs-core').Scalar, lr: number, owned: { dispose(): void }[]): PeerStep {
  const optimizer = tf.train.sgd(lr);
  return {
    step: async () => {
      const loss = optimizer.minimize(lossFn, true)!;
      const v = (await loss.data())[0];
      loss.dispose();
      return v;
    },
    dispose: () => {
      for (const t of owned) t.dispose();
      optimizer.dispose();
    },
  };
}

/**
 * A jax-js step as its users write one: one jit of the loss's valueAndGrad and the plain SGD
 * update, the parameters carried from step to step, then the loss read back.
 */
type Params = Record<string, JArray>;

export function jaxSgdStep(jax: Jax, loss: (p: Params, xb: JArray, yb: JArray) => JArray, params: Params, x: JArray, y: JArray, lr: number): PeerStep {
  const { tree } = jax;
  const trainStep = jax.jit((p: Params, xb: JArray, yb: JArray): [JArray, Params] => {
    const [l, g] = jax.valueAndGrad(loss)(tree.ref(p), xb, yb);
    return [l, tree.map((pi: JArray, gi: JArray) => pi.sub(gi.mul(lr)), p, g) as Params];
  });
  return {
    step: async () => {
      const [l, next] = trainStep(params, x.ref, y.ref);
      params = next;
      // data() consumes the array's reference.
      return (await l.data())[0];
    },
    dispose: () => {
      tree.dispose(params);
      x.dispose();
      y.dispose();
      trainStep.dispose();
    },
  };
}

/**
 * Time `make()`'s step (making it counts toward the peak bytes, not the time); `gpu`: also the
 * peak-bytes row, with whatever the library says of its own memory (`selfReport`) beside it.
 */
export async function timePeerNet(
  who: { library: Library; backend: Backend },
  spec: NetSpec,
  make: () => PeerStep,
  opts: ChildOptions,
  info: { extra?: Record<string, unknown>; gpu: boolean; selfReport?: () => Record<string, unknown> },
): Promise<BenchRow[]> {
  const base = resetDevicePeak();
  const net = make();
  let n = 0;
  // Slow steps say so as they end: a peer's step can take minutes on a software adapter.
  const step = async () => {
    const t0 = performance.now();
    const loss = await net.step();
    const ms = performance.now() - t0;
    if (ms > 10_000) log(`${who.library}/${who.backend} ${spec.benchmark}: step ${++n} took ${(ms / 1000).toFixed(0)} s (loss ${loss.toFixed(4)})`);
    return loss;
  };
  try {
    const t = await timeSteps(step, netStepPlan(opts));
    log(`${who.library}/${who.backend} ${spec.benchmark} step: ${t.samples.map((v) => v.toFixed(0)).join(' ')} ms; loss ${t.firstLoss.toFixed(4)} -> ${t.lastLoss.toFixed(4)}`);
    const rows = trainRows(who, spec.benchmark, spec.batch, t, info.extra);
    if (info.gpu) {
      rows.push({
        ...who,
        benchmark: `${spec.benchmark}-peak-gpu-bytes`,
        value: deviceMemory().peak - base,
        unit: 'bytes',
        extra: { what: 'peak bytes of live GPU buffers on the device over building and training', ...info.selfReport?.() },
      });
    }
    return rows;
  } finally {
    net.dispose();
  }
}
