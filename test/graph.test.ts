// Models as graphs: residual networks (identity and projection shortcuts) trained on the GPU and by
// the CPU reference of the same graph, step by step; gradients summed where a value or a parameter
// is used more than once (checked by finite differences on the reference); the primitive ops in a
// model; fusion; memory planned by lifetime; and the errors a malformed graph gets.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/gpu/engine.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import { Conv2d } from '../src/nn/conv.ts';
import { Dense } from '../src/nn/dense.ts';
import { Dropout } from '../src/nn/dropout.ts';
import { Softmax } from '../src/nn/activations.ts';
import { add, attention, concat, matmul, mean, mul, permute, relu, reshape, scale, softmax, split, sum, tanh } from '../src/nn/functional.ts';
import { GraphError, type Value } from '../src/nn/graph.ts';
import { Model } from '../src/nn/model.ts';
import { Module } from '../src/nn/module.ts';
import type { Param } from '../src/nn/op.ts';
import { GlobalAvgPool } from '../src/nn/pool.ts';
import { BasicBlock } from '../src/nn/resnet.ts';
import { Sequential } from '../src/nn/sequential.ts';
import type { RefLoss, RefOptimizer } from '../src/reference/graph.ts';
import { Trainer } from '../src/train/trainer.ts';
import { Rng } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine, refOf } from './helpers.ts';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** A two-layer residual block over vectors: relu(x + fc2(relu(fc1(x)))). */
class DenseBlock extends Module {
  fc1: Dense;
  fc2: Dense;
  constructor(width: number) {
    super();
    this.fc1 = new Dense(width, { kernelInitializer: 'he_uniform' });
    this.fc2 = new Dense(width);
  }
  forward(x: Value): Value {
    return relu(add(this.fc2.forward(relu(this.fc1.forward(x))), x));
  }
}

class ResidualMlp extends Model {
  stem = new Dense(12);
  blocks = [new DenseBlock(12), new DenseBlock(12)];
  head = new Dense(4);
  forward(x: Value): Value {
    let h = relu(this.stem.forward(x));
    for (const b of this.blocks) h = b.forward(h);
    return this.head.forward(h);
  }
}

class SmallResNet extends Model {
  stem = new Conv2d(4, { kernel: 3, padding: 1, bias: false });
  bn = new BatchNorm2d();
  blocks = [new BasicBlock(4, 4, 1), new BasicBlock(4, 6, 2)];
  pool = new GlobalAvgPool();
  head = new Dense(3);
  forward(x: Value): Value {
    let h = relu(this.bn.forward(this.stem.forward(x)));
    for (const b of this.blocks) h = b.forward(h);
    return this.head.forward(this.pool.forward(h));
  }
}

function batches(n: number, inputShape: number[], classes: number, batch: number, seed: number): { x: Float32Array; y: Float32Array }[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => ({
    x: Float32Array.from({ length: batch * size(inputShape) }, () => rng.normal()),
    y: Float32Array.from({ length: batch }, () => rng.int(classes)),
  }));
}

/** Train `steps` steps on the GPU (the explicit loop) and on the reference; compare losses and final weights. */
async function trainBoth(e: Engine, model: Model, inputShape: number[], classes: number, opt: RefOptimizer, steps: number, batch: number, tol: { loss: number; weight: { atol: number; rtol: number } }) {
  await model.build(e, inputShape, { seed: 4 });
  const optimizer = opt.kind === 'sgd' ? { kind: 'sgd', lr: opt.lr, momentum: opt.momentum, weightDecay: opt.weightDecay } : { kind: opt.kind, lr: opt.lr, eps: opt.eps, weightDecay: opt.weightDecay };
  const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer });
  const ref = await refOf(model);
  const data = batches(steps, inputShape, classes, batch, 8);
  for (let s = 0; s < steps; s++) {
    const gpu = (await trainer.step(data[s].x, data[s].y, { readLoss: true }))!;
    const want = ref.trainStep([data[s].x], data[s].y, batch, 'softmax_cross_entropy', opt, s);
    expect(Math.abs(gpu - want), `step ${s}: gpu ${gpu} reference ${want}`).toBeLessThanOrEqual(tol.loss * (1 + Math.abs(want)));
  }
  for (const p of model.params()) expectClose(await p.value.read(), ref.params.get(p.name)!.value, tol.weight, p.name);
  trainer.dispose();
  model.dispose();
}

describe('residual models train like the CPU reference of the same graph, step by step', () => {
  it('a residual MLP (identity shortcuts, fused ReLUs), 20 steps of Adam', async () => {
    const e = await getEngine();
    const model = new ResidualMlp();
    // f32 on both sides with different summation orders; differences compound over 20 steps.
    await trainBoth(e, model, [7], 4, { kind: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, 20, 8, { loss: 1e-3, weight: { atol: 1e-3, rtol: 1e-2 } });
  });

  it('a residual CNN (identity and projection shortcuts, BatchNorm), 20 steps of SGD with momentum', async () => {
    const e = await getEngine();
    const model = new SmallResNet();
    // As above, and BatchNorm divides by small batch variances.
    await trainBoth(e, model, [2, 8, 8], 3, { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-3 }, 20, 4, { loss: 2e-3, weight: { atol: 2e-3, rtol: 2e-2 } });
  });

  it('the graph of a residual block: the shortcut joins, the ReLUs after Dense are fused', async () => {
    const e = await getEngine();
    const model = new ResidualMlp();
    await model.build(e, [7]);
    const kinds = model.nodes.map((n) => `${n.path}:${n.op.kind}${n.fused.map((f) => `+${f.kind}`).join('')}`);
    expect(kinds).toEqual([
      'stem:Dense+relu',
      'blocks.0.fc1:Dense+relu',
      'blocks.0.fc2:Dense',
      'blocks.0.add:add',
      'blocks.0.relu_1:relu',
      'blocks.1.fc1:Dense+relu',
      'blocks.1.fc2:Dense',
      'blocks.1.add:add',
      'blocks.1.relu_1:relu',
      'head:Dense',
    ]);
    expect(model.params().map((p) => p.name)).toEqual([
      'stem.weight',
      'stem.bias',
      'blocks.0.fc1.weight',
      'blocks.0.fc1.bias',
      'blocks.0.fc2.weight',
      'blocks.0.fc2.bias',
      'blocks.1.fc1.weight',
      'blocks.1.fc1.bias',
      'blocks.1.fc2.weight',
      'blocks.1.fc2.bias',
      'head.weight',
      'head.bias',
    ]);
    model.dispose();
  });
});

describe('label smoothing and gradient clipping', () => {
  it('train like the reference for 6 steps; the trainer reports the norm it clipped', async () => {
    const e = await getEngine();
    const model = new ResidualMlp();
    await model.build(e, [7], { seed: 4 });
    const opts = { labelSmoothing: 0.1, clipNorm: 0.3 };
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 }, ...opts });
    const ref = await refOf(model);
    const data = batches(6, [7], 4, 8, 5);
    const sgd: RefOptimizer = { kind: 'sgd', lr: 0.1, momentum: 0.9 };
    let clipped = 0;
    for (let s = 0; s < 6; s++) {
      const gpu = (await trainer.step(data[s].x, data[s].y, { readLoss: true }))!;
      const want = ref.trainStep([data[s].x], data[s].y, 8, 'softmax_cross_entropy', sgd, s, opts);
      expect(Math.abs(gpu - want), `step ${s}`).toBeLessThanOrEqual(1e-4 * (1 + want));
      const norm = await trainer.gradientNorm();
      if (norm > opts.clipNorm) clipped++;
      // The clipped gradients' norm is the limit (or less).
      const sq = (await Promise.all(model.params().map((p) => p.grad.read()))).reduce((t, g) => t + g.reduce((u, v) => u + v * v, 0), 0);
      expect(Math.sqrt(sq)).toBeLessThanOrEqual(opts.clipNorm * 1.0001);
    }
    expect(clipped).toBeGreaterThan(0); // the limit was low enough to act
    for (const p of model.params()) expectClose(await p.value.read(), ref.params.get(p.name)!.value, { atol: 1e-4, rtol: 1e-3 }, p.name);
    trainer.dispose();
    model.dispose();
  });
});

/** h = tanh(fc(x)) read three times: y = head(h*h + h + 0.5 h) (h*h counts twice). */
class ThreeUses extends Model {
  fc = new Dense(5);
  head = new Dense(3);
  forward(x: Value): Value {
    const h = tanh(this.fc.forward(x));
    return this.head.forward(add(add(mul(h, h), h), scale(h, 0.5)));
  }
}

/** The same Dense applied twice: its weights receive the sum of both uses' gradients. */
class Shared extends Model {
  fc = new Dense(6);
  head = new Dense(3);
  forward(x: Value): Value {
    return this.head.forward(this.fc.forward(tanh(this.fc.forward(x))));
  }
}

/** GPU gradients of one step vs the float64 reference, and the reference's vs finite differences. */
async function checkGradients(e: Engine, model: Model, inputShape: number[], batch: number, loss: RefLoss = 'softmax_cross_entropy') {
  await model.build(e, inputShape, { seed: 6 });
  // Plain SGD with a tiny rate: the step's gradients stay readable and the weights barely move.
  const trainer = await Trainer.create(model, { loss, optimizer: { kind: 'sgd', lr: 1e-12, momentum: 0 } });
  const ref = await refOf(model, { float64: true });
  const [{ x, y }] = batches(1, inputShape, 3, batch, 12);
  await trainer.step(x, y, { readLoss: true });
  ref.gradients([x], y, batch, loss);
  // Every evaluation below recomputes the reference's gradients: keep the ones at the weights.
  const analytic = new Map([...ref.params].map(([name, p]) => [name, Float64Array.from(p.grad)]));
  for (const p of model.params()) {
    // f32 GPU sums vs a float64 reference.
    expectClose(await trainer.gradient(p.name), analytic.get(p.name)!, { atol: 1e-5, rtol: 1e-3 }, `${p.name} (GPU vs reference)`);
    const rp = ref.params.get(p.name)!;
    const f = (v: Float64Array) => {
      (rp.value as Float64Array).set(v);
      return ref.gradients([x], y, batch, loss).loss;
    };
    const w = Float64Array.from(rp.value);
    checkGradient(f, w, analytic.get(p.name)!, { eps: 1e-5, atol: 1e-8, rtol: 1e-6 }, `${p.name} (reference vs finite differences)`);
    (rp.value as Float64Array).set(w);
  }
  trainer.dispose();
  model.dispose();
}

describe('gradients add up', () => {
  it('a value read three times (four edges) gets the sum of their gradients', async () => {
    await checkGradients(await getEngine(), new ThreeUses(), [4], 3);
  });

  it('a layer applied twice gets the sum of both uses in its parameters', async () => {
    const e = await getEngine();
    const m = new Shared();
    await checkGradients(e, m, [6], 3);
  });
});

/** Every primitive in one model: attention-like products, softmax, permute, split, concat, sums, means, reshape, parameter add and mul, dropout. */
class Primitives extends Model {
  q = new Dense(4);
  // No bias on k: softmax over each row of q·kᵀ cancels it (its gradient is rounding noise, which
  // Adam would blow up into steps of random sign).
  k = new Dense(4, { useBias: false });
  v = new Dense(4);
  out = new Dense(3);
  drop = new Dropout(0.25);
  pos: Param | null = null;
  gain: Param | null = null;
  forward(x: Value): Value {
    // x: [T = 5, D = 6] tokens.
    this.pos ??= this.parameter('pos', [5, 6], 'glorot_uniform', { decay: false });
    this.gain ??= this.parameter('gain', [4], 'ones', { decay: false });
    const t = add(x, this.pos);
    const scores = softmax(scale(matmul(this.q.forward(t), this.k.forward(t), { transB: true }), 0.5)); // [5, 5]
    const mixed = mul(matmul(scores, this.v.forward(t)), this.gain); // [5, 4]
    const [a, b] = split(permute(mixed, [1, 0]), [1, 3], 0); // [1, 5], [3, 5]
    const joined = concat([b, a], 0); // [4, 5]
    const features = concat([mean(joined, 1), sum(joined, 0), reshape(sum(joined, [0, 1], { keepDims: true }), [1])], 0); // [4 + 5 + 1]
    return this.out.forward(this.drop.forward(features));
  }
}

describe('primitive ops in a model', () => {
  it('train like the reference for 5 steps (dropout masks included)', async () => {
    const e = await getEngine();
    // f32 sums in other orders through softmax and products.
    await trainBoth(e, new Primitives(), [5, 6], 3, { kind: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, 5, 4, { loss: 1e-4, weight: { atol: 1e-4, rtol: 1e-3 } });
  });

  it('gradients: GPU vs reference vs finite differences', async () => {
    await checkGradients(await getEngine(), new Primitives(), [5, 6], 3);
  });
});

/** Fused attention whose qkv also feeds another op, so its gradient is added to (not written). */
class SharedQkv extends Model {
  qkv = new Dense(18);
  out = new Dense(3);
  forward(x: Value): Value {
    const qkv = this.qkv.forward(x); // [5, 18]: 3 heads of width 2
    const a = attention(qkv, 3); // [5, 6]
    return this.out.forward(concat([mean(a, 0), mean(qkv, 0)], 0));
  }
}

/** Fused attention as the only reader of its qkv, with an explicit scale. */
class OwnQkv extends Model {
  qkv = new Dense(12);
  out = new Dense(3);
  forward(x: Value): Value {
    return this.out.forward(mean(attention(this.qkv.forward(x), 2, 0.7), 0));
  }
}

describe('fused multi-head attention', () => {
  it('gradients: GPU vs reference vs finite differences, its qkv gradient written and added to', async () => {
    const e = await getEngine();
    await checkGradients(e, new SharedQkv(), [5, 4], 3);
    await checkGradients(e, new OwnQkv(), [7, 3], 2);
  });

  it('trains like the reference for 5 steps', async () => {
    const e = await getEngine();
    await trainBoth(e, new SharedQkv(), [5, 4], 3, { kind: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, 5, 4, { loss: 1e-4, weight: { atol: 1e-4, rtol: 1e-3 } });
  });

  it('refuses a qkv of the wrong shape or a width the heads do not divide, naming the op', async () => {
    const e = await getEngine();
    class Bad extends Model {
      p = new Dense(10);
      constructor(readonly heads: number) {
        super();
      }
      forward(x: Value): Value {
        return attention(this.p.forward(x), this.heads);
      }
    }
    await expect(new Bad(1).build(e, [5, 4])).rejects.toThrow(/attention: .*\[5, 10\] must be \[tokens, 3 \* width\]/);
    class Bad2 extends Model {
      p = new Dense(12);
      forward(x: Value): Value {
        return attention(this.p.forward(x), 3);
      }
    }
    await expect(new Bad2().build(e, [5, 4])).rejects.toThrow(/attention: width 4 .* is not a multiple of 3 heads/);
  });
});

class TwoInputs extends Model {
  a = new Dense(3);
  b = new Dense(3);
  forward(x: Value, y: Value): Value {
    return add(this.a.forward(x), this.b.forward(y));
  }
}

describe('models with several inputs, and a final Softmax', () => {
  it('two inputs feed their own layers; TrainStep writes both', async () => {
    const e = await getEngine();
    const model = new TwoInputs();
    await model.build(e, [[4], [2]], { seed: 1 });
    const trainer = await Trainer.create(model, { loss: 'mse', optimizer: { kind: 'sgd', lr: 0.1, momentum: 0 } });
    const ref = await refOf(model);
    const rng = new Rng(3);
    const x = Float32Array.from({ length: 8 }, () => rng.normal());
    const y = Float32Array.from({ length: 4 }, () => rng.normal());
    const t = Float32Array.from({ length: 6 }, () => rng.normal());
    for (let s = 0; s < 3; s++) {
      const gpu = (await trainer.step([x, y], t, { readLoss: true }))!;
      const want = ref.trainStep([x, y], t, 2, 'mse', { kind: 'sgd', lr: 0.1, momentum: 0 }, s);
      expect(gpu).toBeCloseTo(want, 5);
    }
    await expect(trainer.step(x, t)).rejects.toThrow(/2 inputs; 1 were given/);
    trainer.dispose();
    model.dispose();
  });

  it('a model ending with Softmax trains on the logits (the loss absorbs it) and predicts probabilities', async () => {
    const e = await getEngine();
    const withSoftmax = new Sequential([new Dense(5), new Softmax()]);
    const logits = new Sequential([new Dense(5)]);
    await withSoftmax.build(e, [3], { seed: 2 });
    await logits.build(e, [3], { seed: 2 });
    const [{ x, y }] = batches(1, [3], 5, 6, 4);
    const losses: number[][] = [];
    for (const m of [withSoftmax, logits]) {
      const t = await Trainer.create(m, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 0.01 } });
      const l: number[] = [];
      for (let s = 0; s < 3; s++) l.push((await t.step(x, y, { readLoss: true }))!);
      losses.push(l);
      t.dispose();
    }
    expect(losses[0]).toEqual(losses[1]);
    const { predict } = await import('../src/train/trainer.ts');
    const p = await predict(withSoftmax, x, 6);
    for (let r = 0; r < 6; r++) expect(p.subarray(r * 5, r * 5 + 5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    withSoftmax.dispose();
    logits.dispose();
  });
});

describe('memory planned by lifetime', () => {
  it('the CNN preset needs fewer activation bytes with reuse than without; the summary says how many', async () => {
    const e = await getEngine();
    const { makePreset } = await import('../src/nn/presets.ts');
    const model = makePreset('cnn', 10);
    await model.build(e, [1, 28, 28], { seed: 1 });
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 1e-3 } });
    const step = await trainer.trainStep(32);
    const s = step.net.stats;
    expect(s.reusedBytes).toBeLessThan(s.plannedBytes);
    expect(s.buffers).toBeLessThan(s.tensors);
    const summary = model.summary();
    expect(summary).toMatch(new RegExp(`Batch 32: ${s.dispatches.forward} forward \\+ ${s.dispatches.backward} backward dispatches per step`));
    expect(summary).toMatch(/activations and gradients [\d.]+ MiB in \d+ buffers \([\d.]+ MiB in \d+ without lifetime reuse\)/);
    trainer.dispose();
    model.dispose();
  });
});

class Mismatch extends Model {
  a = new Dense(4);
  forward(x: Value): Value {
    return add(this.a.forward(x), x);
  }
}

class Unused extends Model {
  a = new Dense(4);
  b = new Dense(4);
  forward(x: Value): Value {
    this.b.forward(x);
    return this.a.forward(x);
  }
}

class IdleParam extends Model {
  a = new Dense(4);
  forward(x: Value): Value {
    this.parameter('orphan', [3], 'zeros');
    return this.a.forward(x);
  }
}

class IgnoresInput extends Model {
  a = new Dense(4);
  forward(x: Value, _unfed: Value): Value {
    return this.a.forward(x);
  }
}

class MadeInForward extends Model {
  forward(x: Value): Value {
    return new Dense(3).forward(x);
  }
}

class Reshaped extends Model {
  a = new Dense(2);
  forward(x: Value): Value {
    return this.a.forward(x);
  }
}

describe('a malformed graph is refused, naming what is at fault', () => {
  const cases: [string, () => Model, number[] | number[][], RegExp][] = [
    ['a join of mismatched shapes', () => new Mismatch(), [6], /^add: cannot add a \[4\] and input \[6\]: the shapes differ/],
    ['a value computed but never used', () => new Unused(), [6], /b \(Dense\) computes b \[4\] but nothing uses it/],
    ['a parameter that receives no gradient', () => new IdleParam(), [6], /Parameter orphan \[3\] receives no gradient/],
    ['an input that is never fed to any op', () => new IgnoresInput(), [[6], [2]], /Model input "input1" \[2\] is never used/],
    ['a module with parameters made inside forward', () => new MadeInForward(), [6], /Dense \(Dense\) has parameters but is not held by the model/],
  ];
  for (const [what, make, shape, want] of cases) {
    it(what, async () => {
      const e = await getEngine();
      const before = e.stats().bytesInUse;
      const err = await make()
        .build(e, shape as number[])
        .catch((x: unknown) => x);
      expect(err).toBeInstanceOf(GraphError);
      expect((err as Error).message).toMatch(want);
      expect(e.stats().bytesInUse).toBe(before); // nothing allocated by the failed build is kept
    });
  }

  it("the README's residual block on a stem of the wrong width", async () => {
    class Block extends Module {
      conv1 = new Conv2d(16, { kernel: 3, padding: 1, bias: false });
      bn1 = new BatchNorm2d();
      conv2 = new Conv2d(16, { kernel: 3, padding: 1, bias: false });
      bn2 = new BatchNorm2d();
      forward(x: Value): Value {
        const h = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
        return relu(add(h, x));
      }
    }
    class Net extends Model {
      stem = new Conv2d(32, { kernel: 3, padding: 1 });
      blocks = [new Block(), new Block()];
      pool = new GlobalAvgPool();
      head = new Dense(10);
      forward(x: Value): Value {
        let h = relu(this.stem.forward(x));
        for (const b of this.blocks) h = b.forward(h);
        return this.head.forward(this.pool.forward(h));
      }
    }
    const err = await new Net().build(await getEngine(), [1, 28, 28]).catch((x: unknown) => x);
    expect((err as Error).message).toBe('blocks.0.add: cannot add blocks.0.bn2 [16, 28, 28] and relu [32, 28, 28]: the shapes differ (per sample).');
  });

  it('a join inside a module names it by its path', async () => {
    class Inner extends Module {
      fc = new Dense(4);
      forward(x: Value): Value {
        return add(this.fc.forward(x), x);
      }
    }
    class Outer extends Model {
      blocks = [new Inner()];
      forward(x: Value): Value {
        return this.blocks[0].forward(x);
      }
    }
    const err = await new Outer().build(await getEngine(), [16, 14, 14]).catch((x: unknown) => x);
    expect((err as Error).message).toMatch(/Layer blocks\.0\.fc \(Dense\): cannot take input of shape \[16, 14, 14\]/);
    const err2 = await new Outer().build(await getEngine(), [5]).catch((x: unknown) => x);
    expect((err2 as Error).message).toMatch(/^blocks\.0\.add: cannot add blocks\.0\.fc \[4\] and input \[5\]/);
  });

  it('a cycle', async () => {
    const e = await getEngine();
    const m = new ResidualMlp();
    await m.build(e, [7]);
    const g = m.graph!;
    const last = g.nodes.at(-1)!;
    g.nodes[0].inputs[0] = last.outputs[0]; // stem now reads the head's output
    expect(() => g.topologicalOrder()).toThrow(/has a cycle: stem \(Dense\) -> head \(Dense\) -> .* -> stem \(Dense\)\./);
    m.dispose();
  });

  it('a value from another model, and a tensor from another engine', async () => {
    const e = await getEngine();
    let stolen: Value | null = null;
    class Thief extends Model {
      a = new Dense(2);
      forward(x: Value): Value {
        stolen = x;
        return this.a.forward(x);
      }
    }
    class Receiver extends Model {
      a = new Dense(2);
      forward(): Value {
        return this.a.forward(stolen!);
      }
    }
    const t = new Thief();
    await t.build(e, [3]);
    const err = await new Receiver().build(e, [3]).catch((x: unknown) => x);
    expect((err as Error).message).toMatch(/belongs to another model's graph/);
    const other = await (await import('../src/gpu/engine.ts')).Engine.create({ log: () => {} });
    const foreign = other.tensor([3], [1, 2, 3], 'foreign');
    const { scaleForward } = await import('../src/kernels/elementwise.ts');
    const mine = e.tensor([3], undefined, 'mine');
    await expect(scaleForward(e, foreign, mine, 2)).rejects.toThrow(/"foreign" \[3\], a tensor of another engine/);
    mine.dispose();
    other.destroy();
    t.dispose();
  });

  it('a layer called again on another shape', async () => {
    class Twice extends Model {
      a = new Dense(3);
      forward(x: Value): Value {
        return this.a.forward(this.a.forward(x));
      }
    }
    const err = await new Twice().build(await getEngine(), [5]).catch((x: unknown) => x);
    expect((err as Error).message).toMatch(/Layer a \(Dense\): cannot take input of shape \[3\].*built for \[5\] by its first call/);
  });

  it('reshape and concat of impossible shapes', async () => {
    class BadReshape extends Reshaped {
      forward(x: Value): Value {
        return this.a.forward(reshape(x, [4, -1]));
      }
    }
    const err = await new BadReshape().build(await getEngine(), [6]).catch((x: unknown) => x);
    expect((err as Error).message).toMatch(/^reshape: input \[6\] \(6 values per sample\) cannot be viewed as \[4, -1\]/);
  });
});
