// Convolutional layers on the GPU against the CPU reference: each layer's planned forward and
// backward on odd shapes; a small CNN trained for 10 steps on both sides from the same weights;
// BatchNorm2d's running statistics and evaluation mode; build-time shape errors naming the layer
// and the shapes; and a CNN checkpoint (BatchNorm buffers included) that evaluates the same after
// a round trip.
import { describe, expect, it } from 'vitest';
import { Batcher } from '../src/data/batcher.ts';
import type { Dataset } from '../src/data/dataset.ts';
import type { Engine } from '../src/gpu/engine.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { Activation, Flatten } from '../src/nn/activations.ts';
import { BatchNorm2d } from '../src/nn/batchnorm.ts';
import { Conv2d } from '../src/nn/conv.ts';
import { Dense } from '../src/nn/dense.ts';
import type { Epilogue } from '../src/nn/graph.ts';
import { type Layer, LayerShapeError } from '../src/nn/layer.ts';
import { AvgPool2d, GlobalAvgPool, MaxPool2d } from '../src/nn/pool.ts';
import { makePreset } from '../src/nn/presets.ts';
import { layerFromConfig, layerToConfig } from '../src/nn/registry.ts';
import * as refBn from '../src/reference/batchnorm.ts';
import * as refConv from '../src/reference/conv2d.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import type { RefOptimizer } from '../src/reference/graph.ts';
import * as refPool from '../src/reference/pool.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { checkpointBytes, datasetInfo, readCheckpoint, trainerFromCheckpoint } from '../src/train/checkpoint.ts';
import { predict, Trainer } from '../src/train/trainer.ts';
import { Rng, randomUniform } from '../src/util/random.ts';
import { expectClose, getEngine, planAlone, refOf } from './helpers.ts';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** planAlone (test/helpers.ts) with host copies of x and dy and empty host y and dx for the reference. */
async function planAloneHost(e: Engine, layer: Layer, batch: number, inputShape: number[], seed: number, epilogue?: Epilogue) {
  const t = await planAlone(e, layer, batch, inputShape, seed, { epilogue });
  const outShape = layer.outputShape;
  const host = {
    x: hostTensor([batch, ...inputShape], t.xData, 'x'),
    dy: hostTensor([batch, ...outShape], t.dyData, 'dy'),
    y: hostTensor([batch, ...outShape]),
    dx: hostTensor([batch, ...inputShape]),
  };
  return { ...t, host };
}

async function readHost(t: Tensor): Promise<HostTensor> {
  return hostTensor(t.shape, await t.read(), t.label);
}

describe('layer plans vs reference kernels (NCHW, odd shapes)', () => {
  const convCases: { name: string; batch: number; input: number[]; oc: number; opts: ConstructorParameters<typeof Conv2d>[1]; relu: boolean }[] = [
    { name: 'Conv2d 3->5, 3x2 kernel, stride [2,1], padding [1,0], bias', batch: 3, input: [3, 7, 9], oc: 5, opts: { kernel: [3, 2], stride: [2, 1], padding: [1, 0] }, relu: false },
    { name: 'Conv2d 1->3, 5x5 kernel, padding 2, no bias, fused ReLU', batch: 2, input: [1, 6, 5], oc: 3, opts: { kernel: 5, padding: 2, bias: false }, relu: true },
  ];
  for (const c of convCases) {
    it(c.name, async () => {
      const e = await getEngine();
      const conv = new Conv2d(c.oc, c.opts);
      const t = await planAloneHost(e, conv, c.batch, c.input, 5, c.relu ? { activation: 'relu', alpha: 0 } : undefined);
      e.run(...t.plan.forward);
      e.run(...t.plan.backward);
      const w = await readHost(conv.weight!.value);
      const b = conv.bias ? await readHost(conv.bias.value) : null;
      const opts = { stride: conv.stride, padding: conv.padding };
      refConv.conv2dForward(t.host.x, w, b, t.host.y, { ...opts, relu: c.relu });
      // With the ReLU fused, the gradient reaching the convolution is dy where y > 0.
      const dz = hostTensor(
        t.host.dy.shape,
        t.host.dy.data.map((v, i) => (!c.relu || t.host.y.data[i] > 0 ? v : 0)),
      );
      const dw = hostTensor(w.shape);
      const db = b ? hostTensor(b.shape) : null;
      refConv.conv2dBackwardInput(dz, w, t.host.dx, opts);
      refConv.conv2dBackwardWeight(t.host.x, dz, dw, db, opts);
      expect(conv.weight!.value.shape).toEqual([c.oc, c.input[0], ...conv.kernel]);
      expectClose(await t.y.read(), t.host.y.data, {}, 'y');
      expectClose(await t.dx.read(), t.host.dx.data, {}, 'dx');
      // Sums of B*OH*OW products in f32, in another order than the reference.
      expectClose(await conv.weight!.grad.read(), dw.data, { atol: 5e-5, rtol: 1e-4 }, 'dweight');
      if (db) expectClose(await conv.bias!.grad.read(), db.data, { atol: 5e-5, rtol: 1e-4 }, 'dbias');
      t.dispose();
    });
  }

  it('MaxPool2d 3x3 window, stride 2, padding 1', async () => {
    const e = await getEngine();
    const pool = new MaxPool2d({ kernel: 3, stride: 2, padding: 1 });
    const t = await planAloneHost(e, pool, 2, [3, 7, 9], 11);
    expect(pool.outputShape).toEqual([3, 4, 5]);
    e.run(...t.plan.forward, ...t.plan.backward);
    const opts = { kernel: 3, stride: 2, padding: 1 };
    const argmax = hostTensor(t.host.y.shape);
    refPool.maxPool2dForward(t.host.x, t.host.y, argmax, opts);
    refPool.maxPool2dBackward(t.host.dy, argmax, t.host.dx, opts);
    expectClose(await t.y.read(), t.host.y.data, {}, 'y');
    expectClose(await t.dx.read(), t.host.dx.data, {}, 'dx');
    t.dispose();
  });

  it('AvgPool2d 2x3 window, stride [1,2], padding 1, padding not counted', async () => {
    const e = await getEngine();
    const opts = { kernel: [2, 3] as [number, number], stride: [1, 2] as [number, number], padding: 1, countIncludePad: false };
    const pool = new AvgPool2d(opts);
    const t = await planAloneHost(e, pool, 3, [2, 5, 7], 13);
    e.run(...t.plan.forward, ...t.plan.backward);
    refPool.avgPool2dForward(t.host.x, t.host.y, opts);
    refPool.avgPool2dBackward(t.host.dy, t.host.dx, opts);
    expectClose(await t.y.read(), t.host.y.data, {}, 'y');
    expectClose(await t.dx.read(), t.host.dx.data, {}, 'dx');
    t.dispose();
  });

  it('GlobalAvgPool [5, 3, 7] -> [5]', async () => {
    const e = await getEngine();
    const pool = new GlobalAvgPool();
    const t = await planAloneHost(e, pool, 2, [5, 3, 7], 17);
    expect(pool.outputShape).toEqual([5]);
    e.run(...t.plan.forward, ...t.plan.backward);
    refPool.globalAvgPoolForward(t.host.x, t.host.y);
    refPool.globalAvgPoolBackward(t.host.dy, t.host.dx);
    expectClose(await t.y.read(), t.host.y.data, {}, 'y');
    expectClose(await t.dx.read(), t.host.dx.data, {}, 'dx');
    t.dispose();
  });

  it('BatchNorm2d: training forward updates the running statistics; evaluation uses them', async () => {
    const e = await getEngine();
    const bn = new BatchNorm2d({ momentum: 0.3, eps: 1e-3 });
    const t = await planAloneHost(e, bn, 3, [5, 4, 7], 19);
    expect(bn.params().map((p) => [p.name, p.decay])).toEqual([
      ['weight', false],
      ['bias', false],
    ]);
    expect(bn.buffers().map((b) => b.name)).toEqual(['running_mean', 'running_var']);
    // Give gamma and beta values other than 1 and 0 so that both matter.
    const gamma = hostTensor([5], randomUniform(5, 23, 0.5, 1.5));
    const beta = hostTensor([5], randomUniform(5, 24));
    e.write(bn.gamma!.value, gamma.data);
    e.write(bn.beta!.value, beta.data);
    const runMean = hostTensor([5]);
    const runVar = hostTensor([5], new Float32Array(5).fill(1));
    const mean = hostTensor([5]);
    const invstd = hostTensor([5]);
    const dgamma = hostTensor([5]);
    const dbeta = hostTensor([5]);
    const opts = { eps: 1e-3, momentum: 0.3 };
    // Two training steps: the running averages move twice.
    for (let s = 0; s < 2; s++) {
      t.plan.beforeStep?.(s);
      e.run(...t.plan.forward, ...t.plan.backward);
      refBn.batchNormForwardTrain(t.host.x, gamma, beta, t.host.y, mean, invstd, runMean, runVar, opts);
    }
    refBn.batchNormBackward(t.host.x, t.host.dy, gamma, mean, invstd, t.host.dx, dgamma, dbeta);
    expectClose(await t.y.read(), t.host.y.data, {}, 'y (train)');
    expectClose(await bn.runningMean!.value.read(), runMean.data, {}, 'running_mean');
    expectClose(await bn.runningVar!.value.read(), runVar.data, {}, 'running_var');
    expectClose(await t.dx.read(), t.host.dx.data, { atol: 1e-5, rtol: 1e-3 }, 'dx'); // a difference of sums over 84 values per channel
    expectClose(await bn.gamma!.grad.read(), dgamma.data, { atol: 1e-5, rtol: 1e-3 }, 'dgamma');
    expectClose(await bn.beta!.grad.read(), dbeta.data, {}, 'dbeta');

    const yTrain = Float32Array.from(t.host.y.data);
    e.run(...t.plan.forwardEval!);
    refBn.batchNormForwardEval(t.host.x, gamma, beta, runMean, runVar, t.host.y, { eps: 1e-3 });
    const yEval = await t.y.read();
    expectClose(yEval, t.host.y.data, {}, 'y (eval)');
    // Running statistics after two steps are not the batch's: evaluation really differs.
    expect(Math.max(...yEval.map((v, i) => Math.abs(v - yTrain[i])))).toBeGreaterThan(0.1);
    // The running statistics do not move in evaluation.
    expectClose(await bn.runningMean!.value.read(), runMean.data, {}, 'running_mean after eval');
    t.dispose();
  });

  it('BatchNorm2d with one value per channel evaluates but refuses to train', async () => {
    const e = await getEngine();
    const bn = new BatchNorm2d();
    const t = await planAloneHost(e, bn, 1, [3, 1, 1], 29);
    expect(t.plan.forwardEval!.length).toBe(1);
    expect(() => t.plan.beforeStep!(0)).toThrow(/Layer BatchNorm2d: cannot train on a batch of 1 samples of \[3, 1, 1\].*at least 2 values per channel/);
    t.dispose();
  });
});

/** A random image dataset stored as uint8 pixels (scaled to [0, 1] by the batcher). */
function imageDataset(n: number, shape: number[], classes: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = new Uint8Array(n * size(shape)).map(() => rng.int(256));
  const y = new Uint8Array(n).map(() => rng.int(classes));
  return { name: 'random-images', task: 'classification', inputShape: shape, numClasses: classes, train: { n, x, y }, test: { n, x, y }, normalization: { kind: 'scale255' } };
}

/** Conv (+ReLU fused) - MaxPool - BatchNorm - Conv (stride 2) - BatchNorm - ReLU - AvgPool - Flatten - Dense, on [2, 9, 11]. */
function smallCnn(classes: number): Layer[] {
  return [
    new Conv2d(4, { kernel: 3, padding: 1 }),
    new Activation('relu'),
    new MaxPool2d({ kernel: 2 }),
    new BatchNorm2d(),
    new Conv2d(6, { kernel: [3, 2], stride: 2, padding: 1, bias: false }),
    new BatchNorm2d({ momentum: 0.2 }),
    new Activation('relu'),
    new AvgPool2d({ kernel: 2, stride: 1 }),
    new Flatten(),
    new Dense(classes),
  ];
}

describe('CNN training matches the CPU reference step by step', () => {
  // Adam's eps is 1e-3, not 1e-8: in this network some channels of the first conv are positive
  // everywhere, so ReLU passes them whole and the BatchNorm after the pooling cancels their bias;
  // its gradient is 0 in exact arithmetic and ~1e-8 of rounding noise on either side, which
  // eps = 1e-8 would turn into full steps of lr with a random sign. eps = 1e-3 damps the steps of
  // gradients below about 1e-3 (that noise included) and leaves the larger ones nearly whole.
  const optimizers: [string, RefOptimizer][] = [
    ['adam', { kind: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-3, weightDecay: 0 }],
    ['sgd momentum, L2', { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-3 }],
  ];
  for (const [what, opt] of optimizers) {
    it(`conv, fused ReLU, max/avg pooling, BatchNorm, dense: 10 steps, ${what}`, async () => {
      const e = await getEngine();
      const B = 6;
      const C = 5;
      const shape = [2, 9, 11];
      const data = imageDataset(10 * B, shape, C, 3);
      const model = new Sequential(smallCnn(C));
      await model.build(e, shape, { seed: 7 });
      expect(model.nodes[0].fused.map((f) => f.path)).toEqual(['layers.1']);
      const optimizer = opt.kind === 'sgd' ? { kind: 'sgd' as const, lr: opt.lr, momentum: opt.momentum, weightDecay: opt.weightDecay } : { kind: opt.kind, lr: opt.lr, eps: opt.eps };
      const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer });
      const ref = await refOf(model);

      const gpuLosses: number[] = [];
      await trainer.fit(data, { epochs: 1, batchSize: B, seed: 5, logEvery: 1, onStep: (ev) => void gpuLosses.push(ev.loss) });

      const batcher = new Batcher(data.train, data, { batchSize: B, shuffle: true, seed: 5, dropLast: true });
      const x = new Float32Array(B * size(shape));
      const y = new Float32Array(B);
      const refLosses: number[] = [];
      for (let s = 0; s < 10; s++) {
        batcher.fill(0, s, x, y);
        refLosses.push(ref.trainStep([x], y, B, 'softmax_cross_entropy', opt, s));
      }
      expect(gpuLosses).toHaveLength(10);
      // f32 on both sides, different summation orders (and BatchNorm divides by small batch
      // variances): differences compound over 10 steps, so 1e-3 relative is the bound.
      for (let s = 0; s < 10; s++) {
        expect(Math.abs(gpuLosses[s] - refLosses[s]), `step ${s}: gpu ${gpuLosses[s]} ref ${refLosses[s]}`).toBeLessThanOrEqual(1e-4 + 1e-3 * Math.abs(refLosses[s]));
      }
      expect(refLosses[9]).toBeLessThan(refLosses[0]);
      const gpuParams = model.params();
      expect(gpuParams.length).toBe(ref.params.size);
      for (const p of gpuParams) expectClose(await p.value.read(), ref.params.get(p.name)!.value, { atol: 1e-3, rtol: 1e-2 }, p.name);
      const gpuBuffers = model.buffers();
      expect(gpuBuffers.length).toBe(ref.buffers.size);
      for (const b of gpuBuffers) expectClose(await b.value.read(), ref.buffers.get(b.name)!, { atol: 1e-4, rtol: 1e-3 }, b.name);

      // Evaluation mode (running statistics) on the same inputs.
      batcher.fill(0, 0, x, y);
      const logits = await predict(model, x, B);
      expectClose(logits, ref.forward([x], B, false).values.get(ref.spec.output)!.data, { atol: 1e-4, rtol: 1e-3 }, 'eval logits');
      trainer.dispose();
      model.dispose();
    });
  }
});

describe('build errors name the layer and the shapes', () => {
  const cases: [string, Layer[], number[], RegExp][] = [
    ['Conv2d on a flat input', [new Conv2d(8)], [784], /Layer layers\.0 \(Conv2d\): cannot take input of shape \[784\] \(per sample\): it takes images \[C, H, W\]/],
    [
      'Conv2d kernel larger than the padded image',
      [new Conv2d(8, { kernel: 5, padding: 1 })],
      [1, 2, 9],
      /Layer layers\.0 \(Conv2d\): cannot take input of shape \[1, 2, 9\].*5x5 kernel.*larger than the input's 2 padded by 1 on each side \(4\)/,
    ],
    [
      'MaxPool2d on an image shrunk too far',
      [new Conv2d(4, { kernel: 3 }), new Activation('relu'), new MaxPool2d({ kernel: 2 }), new MaxPool2d({ kernel: 2 })],
      [3, 5, 5],
      /Layer layers\.3 \(MaxPool2d\): cannot take input of shape \[4, 1, 1\].*2x2 window.*larger than the input's 1/,
    ],
    ['BatchNorm2d after Flatten', [new Conv2d(4), new Flatten(), new BatchNorm2d()], [1, 6, 6], /Layer layers\.2 \(BatchNorm2d\): cannot take input of shape \[64\]/],
    ['GlobalAvgPool on a vector', [new Flatten(), new GlobalAvgPool()], [2, 3, 3], /Layer layers\.1 \(GlobalAvgPool\): cannot take input of shape \[18\]/],
    ['Dense on conv features without Flatten', [new Conv2d(4), new Dense(10)], [1, 5, 5], /Layer layers\.1 \(Dense\): cannot take input of shape \[4, 3, 3\].*Flatten/],
  ];
  for (const [what, layers, shape, want] of cases) {
    it(what, async () => {
      const e = await getEngine();
      const m = new Sequential(layers);
      const err = await m.build(e, shape).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(LayerShapeError);
      expect((err as Error).message).toMatch(want);
    });
  }

  it('bad options are refused at construction', () => {
    expect(() => new Conv2d(0)).toThrow(/outChannels must be a positive integer/);
    expect(() => new Conv2d(4, { stride: 0 })).toThrow(/Conv2d: stride 0 must be an integer >= 1/);
    expect(() => new MaxPool2d({ kernel: 2, padding: 2 })).toThrow(/MaxPool2d: padding \[2, 2\] is more than half the 2x2 window/);
    expect(() => new BatchNorm2d({ momentum: 2 })).toThrow(/momentum must be in \[0, 1\]/);
  });

  it('presets build for their image sizes', async () => {
    const e = await getEngine();
    for (const [name, shape] of [
      ['cnn', [1, 28, 28]],
      ['cnn-cifar', [3, 32, 32]],
    ] as [string, number[]][]) {
      const m = makePreset(name, 10);
      await m.build(e, shape);
      expect(m.outputShape).toEqual([10]);
      m.dispose();
    }
  });
});

describe('CNN checkpoints', () => {
  it('every layer kind survives its config', () => {
    for (const l of smallCnn(3).concat([new GlobalAvgPool(), new Conv2d(2, { kernel: [1, 3], activation: 'relu', kernelInitializer: 'he_normal' })])) {
      const back = layerFromConfig(JSON.parse(JSON.stringify(layerToConfig(l))));
      expect(back.kind).toBe(l.kind);
      expect(back.config()).toEqual(l.config());
    }
  });

  it('round trip with BatchNorm buffers evaluates to the same loss and accuracy', async () => {
    const e = await getEngine();
    const shape = [2, 9, 11];
    const data = imageDataset(48, shape, 3, 9);
    const model = new Sequential(smallCnn(3));
    await model.build(e, shape, { seed: 2 });
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 0.01 } });
    await trainer.fit(data, { epochs: 2, batchSize: 8 });
    const before = await trainer.evaluate(data.test, data);
    const bytes = await checkpointBytes(trainer, datasetInfo(data));
    const ckpt = readCheckpoint(bytes, 'cnn.safetensors');
    const names = [...ckpt.tensors.keys()].filter((k) => !k.startsWith('optim.'));
    expect(names).toEqual(expect.arrayContaining(['layers.0.weight', 'layers.0.bias', 'layers.3.weight', 'layers.3.bias', 'layers.3.running_mean', 'layers.3.running_var', 'layers.4.weight', 'layers.9.weight']));
    expect(ckpt.tensors.get('layers.0.weight')!.shape).toEqual([4, 2, 3, 3]); // [OC, IC, KH, KW]
    expect(ckpt.tensors.get('layers.4.weight')!.shape).toEqual([6, 4, 3, 2]);
    expect(names).not.toContain('layers.4.bias');
    // The running statistics moved away from their initial zeros and ones.
    expect(Math.max(...ckpt.tensors.get('layers.3.running_mean')!.data.map(Math.abs))).toBeGreaterThan(0.01);
    const loaded = await trainerFromCheckpoint(e, ckpt, 'cnn.safetensors');
    const after = await loaded.evaluate(data.test, data);
    expect(after.accuracy).toBe(before.accuracy);
    expect(after.loss).toBeCloseTo(before.loss, 6);
    // A model whose running statistics were not restored evaluates differently.
    for (const b of loaded.model.buffers()) e.write(b.value, new Float32Array(b.value.size).fill(b.name.endsWith('var') ? 1 : 0));
    expect(Math.abs((await loaded.evaluate(data.test, data)).loss - before.loss)).toBeGreaterThan(1e-4);
    loaded.dispose();
    loaded.model.dispose();
    trainer.dispose();
    model.dispose();
  });
});
