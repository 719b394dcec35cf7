// Models the export tests translate: the presets, a custom graph with skip connections, and
// graphs that between them hold every op kind of src/ops/graph.ts (with every activation, pooling
// variant and a final Softmax), built with seeded weights and batch-norm statistics that are not
// the identity. Also the Python runner the PyTorch tests share.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Engine } from '../src/gpu/engine.ts';
import { Activation, Flatten, Softmax } from '../src/nn/activations.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import { Conv2d } from '../src/nn/conv.ts';
import { Dense } from '../src/nn/dense.ts';
import { Dropout } from '../src/nn/dropout.ts';
import { add, concat, gelu, leakyRelu, matmul, mean, mul, permute, relu, reshape, scale, scaledSoftmax, sigmoid, softmax, split, sum, tanh } from '../src/nn/functional.ts';
import type { Value } from '../src/nn/graph.ts';
import { Model } from '../src/nn/model.ts';
import { Module } from '../src/nn/module.ts';
import type { Param } from '../src/nn/op.ts';
import { AvgPool2d, GlobalAvgPool, MaxPool2d } from '../src/nn/pool.ts';
import { makePreset, presetNames } from '../src/nn/presets.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { Rng } from '../src/util/random.ts';

/** A ResNet basic block: conv-BN-ReLU-conv-BN plus the input, or a strided 1x1 projection of it. */
class BasicBlock extends Module {
  conv1: Conv2d;
  bn1 = new BatchNorm2d();
  conv2: Conv2d;
  bn2 = new BatchNorm2d();
  shortcut: Module[];
  constructor(inC: number, outC: number, stride: number) {
    super();
    this.conv1 = new Conv2d(outC, { kernel: 3, stride, padding: 1, bias: false });
    this.conv2 = new Conv2d(outC, { kernel: 3, padding: 1, bias: false });
    this.shortcut = stride !== 1 || inC !== outC ? [new Conv2d(outC, { kernel: 1, stride, bias: false }), new BatchNorm2d()] : [];
  }
  forward(x: Value): Value {
    const h = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
    const sc = this.shortcut.reduce((v, m) => m.forward(v), x);
    return relu(add(h, sc));
  }
}

/** A custom graph with skip connections (identity and projection shortcuts). */
export class SkipNet extends Model {
  stem: Conv2d;
  bn = new BatchNorm2d();
  blocks = [new BasicBlock(4, 4, 1), new BasicBlock(4, 6, 2)];
  pool = new GlobalAvgPool();
  head = new Dense(10);
  /** stemBias false: no bias before the batch norm (whose gradient would be zero, its values rounding noise). */
  constructor(opts: { stemBias?: boolean } = {}) {
    super();
    this.stem = new Conv2d(4, { kernel: 3, padding: 1, bias: opts.stemBias ?? true });
  }
  forward(x: Value): Value {
    let h = relu(this.bn.forward(this.stem.forward(x)));
    for (const b of this.blocks) h = b.forward(h);
    return this.head.forward(this.pool.forward(h));
  }
}

/**
 * Attention-like primitives on [T = 5, D = 6] tokens: raw parameters added and multiplied, dense
 * layers over tokens, matmul with a transposed operand, softmax inside, permute, split, concat,
 * sums and means (kept and dropped axes), scale, elementwise mul, every activation, dropout.
 */
export class Primitives extends Model {
  q = new Dense(4);
  k = new Dense(4, { useBias: false });
  v = new Dense(4, { activation: 'leaky_relu', alpha: 0.3 });
  out = new Dense(10);
  drop = new Dropout(0.25);
  pos: Param | null = null;
  gain: Param | null = null;
  forward(x: Value): Value {
    this.pos ??= this.parameter('pos', [5, 6], 'glorot_uniform', { decay: false });
    this.gain ??= this.parameter('gain', [4], 'glorot_uniform', { decay: false });
    const t = add(x, this.pos);
    const scores = softmax(scale(matmul(this.q.forward(t), this.k.forward(t), { transB: true }), 0.5)); // [5, 5]
    const mixed = mul(matmul(scores, gelu(this.v.forward(t))), this.gain); // [5, 4]
    const gated = mul(mul(sigmoid(mixed), scaledSoftmax(mixed, 0.8)), tanh(leakyRelu(mixed, 0.2))); // [5, 4]
    const [a, b] = split(permute(gated, [1, 0]), [1, 3], 0); // [1, 5], [3, 5]
    const joined = concat([b, a], 0); // [4, 5]
    const features = concat([mean(joined, 1), sum(joined, 0), reshape(sum(joined, [0, 1], { keepDims: true }), [1])], 0); // [10]
    const twice = matmul(reshape(features, [10, 1]), reshape(features, [10, 1]), { transA: true }); // [1, 1]
    return this.out.forward(this.drop.forward(concat([features, reshape(twice, [1])], 0)));
  }
}

/** Pooling of every kind, activations as layers, strided convolutions without bias, a final Softmax layer. */
export function poolsAndActivations(): Sequential {
  return new Sequential([
    new Conv2d(3, { kernel: 3, stride: 2, padding: 1, bias: false }),
    new Activation('leaky_relu', 0.1),
    new AvgPool2d({ kernel: 3, stride: 2, padding: 1, countIncludePad: false }),
    new Conv2d(4, { kernel: 2, padding: 1 }),
    new Activation('sigmoid'),
    new MaxPool2d({ kernel: 3, stride: 2, padding: 1 }),
    new AvgPool2d({ kernel: 2, stride: 1, padding: 1 }),
    new BatchNorm2d({ eps: 1e-3, momentum: 0.2 }),
    new Flatten(),
    new Dense(7),
    new Activation('tanh'),
    new Dropout(0.3),
    new Dense(10),
    new Softmax(),
  ]);
}

export interface ExportCase {
  name: string;
  make(): Model;
  inputShape: number[];
}

/** Presets to export; ResNet and ViT join by name once src/nn/presets.ts offers them. */
const PRESETS: [string, number[]][] = [
  ['mlp', [1, 28, 28]],
  ['cnn', [1, 28, 28]],
  ['cnn-cifar', [3, 32, 32]],
  ['resnet', [3, 32, 32]],
  ['vit', [3, 32, 32]],
];

export const EXPORT_CASES: ExportCase[] = [
  ...PRESETS.filter(([name]) => presetNames().includes(name)).map(([name, inputShape]) => ({ name, inputShape, make: () => makePreset(name, 10, { hidden: [32, 16] }) })),
  // A class token: a parameter as a value of every sample, sliced back out before the head.
  ...(presetNames().includes('vit') ? [{ name: 'vit-cls-token', inputShape: [1, 28, 28], make: () => makePreset('vit', 10, { pool: 'cls', depth: 1, width: 32, heads: 2, patch: 7 } as never) }] : []),
  { name: 'mlp-gelu', inputShape: [1, 28, 28], make: () => makePreset('mlp', 10, { hidden: [24], activation: 'gelu', dropout: 0.2 }) },
  { name: 'skip-connections', inputShape: [3, 12, 12], make: () => new SkipNet() },
  { name: 'primitives', inputShape: [5, 6], make: () => new Primitives() },
  { name: 'pools-activations', inputShape: [2, 13, 11], make: () => poolsAndActivations() },
];

/** Batch-norm scales, shifts and running statistics drawn at random, so that evaluation mode matters. */
export function perturbBatchNorm(e: Engine, model: Model, seed: number): void {
  const rng = new Rng(seed);
  for (const t of [...model.params(), ...model.buffers()]) {
    const last = t.name.split('.').at(-1)!;
    const n = t.value.size;
    if (!['running_mean', 'running_var'].includes(last) && !(t.name.includes('bn') || t.value.shape.length === 1)) continue;
    if (last === 'running_var')
      e.write(
        t.value,
        Float32Array.from({ length: n }, () => rng.uniform(0.5, 2)),
      );
    else if (last === 'running_mean' || last === 'bias')
      e.write(
        t.value,
        Float32Array.from({ length: n }, () => rng.uniform(-0.5, 0.5)),
      );
    else if (last === 'weight')
      e.write(
        t.value,
        Float32Array.from({ length: n }, () => rng.uniform(0.5, 1.5)),
      );
  }
}

/** Seeded inputs for `batch` samples. */
export function seededInputs(inputShape: number[], batch: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: batch * inputShape.reduce((a, b) => a * b, 1) }, () => rng.uniform(0, 1));
}

/** max |a - b| / max |b|: the error relative to the largest output (the tolerance measure). */
export function relativeToLargest(a: ArrayLike<number>, b: ArrayLike<number>): { rel: number; at: number } {
  let diff = 0;
  let at = -1;
  let big = 0;
  for (let i = 0; i < b.length; i++) {
    big = Math.max(big, Math.abs(b[i]));
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) {
      diff = d;
      at = i;
    }
  }
  if (a.length !== b.length) return { rel: Infinity, at: -1 };
  return { rel: diff / big, at };
}

/** The Python with Debian's torch (`/usr/bin/python3`: another python3 earlier on PATH may lack it). */
export const PYTHON = process.env.WGTRAIN_PYTHON ?? '/usr/bin/python3';

const exec = promisify(execFile);

/** Run Python; throws with its stderr on failure. */
export async function runPython(args: string[], opts: { cwd?: string; timeout?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  try {
    return await exec(PYTHON, args, { cwd: opts.cwd, timeout: opts.timeout ?? 300_000, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${PYTHON} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}
