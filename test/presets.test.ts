// The ResNet and vision-transformer presets: a ResNet-8 and a 2-block ViT train 10 steps like the
// CPU reference of the same graph; presets refuse inputs they cannot take before any GPU work;
// their checkpoints rebuild them; and weight decay skips norms, biases and embeddings.
import { describe, expect, it } from 'vitest';
import { Engine } from '../src/gpu/engine.ts';
import { GraphError } from '../src/nn/graph.ts';
import type { Model } from '../src/nn/model.ts';
import { makePreset } from '../src/nn/presets.ts';
import type { RefOptimizer } from '../src/reference/graph.ts';
import { checkpointBytes, readCheckpoint, trainerFromCheckpoint } from '../src/train/checkpoint.ts';
import { predict, Trainer } from '../src/train/trainer.ts';
import { Rng } from '../src/util/random.ts';
import { expectClose, getEngine, refOf } from './helpers.ts';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function batch(shape: number[], n: number, classes: number, seed: number): { x: Float32Array; y: Float32Array } {
  const rng = new Rng(seed);
  return { x: Float32Array.from({ length: n * size(shape) }, () => rng.normal()), y: Float32Array.from({ length: n }, () => rng.int(classes)) };
}

async function tenSteps(e: Engine, model: Model, shape: number[], opt: RefOptimizer, B: number, tol: number) {
  await model.build(e, shape, { seed: 3 });
  const optimizer = opt.kind === 'sgd' ? { kind: 'sgd', lr: opt.lr, momentum: opt.momentum } : { kind: opt.kind, lr: opt.lr, eps: opt.eps, weightDecay: opt.weightDecay };
  const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer });
  const ref = await refOf(model);
  for (let s = 0; s < 10; s++) {
    const { x, y } = batch(shape, B, 10, 100 + s);
    const gpu = (await trainer.step(x, y, { readLoss: true }))!;
    const want = ref.trainStep([x], y, B, 'softmax_cross_entropy', opt, s);
    expect(Math.abs(gpu - want), `step ${s}: gpu ${gpu} reference ${want}`).toBeLessThanOrEqual(tol * (1 + want));
  }
  trainer.dispose();
  model.dispose();
}

describe('presets train like the CPU reference of their graph', () => {
  it('ResNet-8 on [3, 12, 12], 10 steps of SGD with momentum', async () => {
    // f32 sums in other orders, and BatchNorm over small batches: differences compound over steps.
    await tenSteps(await getEngine(), makePreset('resnet', 10, { depth: 8 }), [3, 12, 12], { kind: 'sgd', lr: 0.05, momentum: 0.9 }, 4, 2e-3);
  });

  it('a 2-block ViT on [1, 8, 8] (patch 4, class token), 10 steps of AdamW', async () => {
    // eps 1e-6: a few parameters have gradients near zero that Adam would turn into noisy full steps.
    await tenSteps(await getEngine(), makePreset('vit', 10, { depth: 2, width: 16, heads: 2, patch: 4, pool: 'cls' }), [1, 8, 8], { kind: 'adamw', lr: 0.003, beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.05 }, 4, 1e-3);
  });

  it('a ViT with mean pooling: the graph has the blocks, and the norms, biases and embeddings are not decayed', async () => {
    const e = await getEngine();
    const m = makePreset('vit', 10, { depth: 2, width: 16, heads: 4, patch: 7 });
    await m.build(e, [1, 28, 28]);
    const decayed = m
      .params()
      .filter((p) => p.decay)
      .map((p) => p.name);
    expect(decayed).toEqual([
      'patches.weight',
      'blocks.0.attn.qkv.weight',
      'blocks.0.attn.proj.weight',
      'blocks.0.fc1.weight',
      'blocks.0.fc2.weight',
      'blocks.1.attn.qkv.weight',
      'blocks.1.attn.proj.weight',
      'blocks.1.fc1.weight',
      'blocks.1.fc2.weight',
      'head.weight',
    ]);
    expect(m.params().map((p) => p.name)).toContain('pos');
    expect(m.params().find((p) => p.name === 'pos')!.value.shape).toEqual([16, 16]);
    m.dispose();
  });
});

describe('presets refuse inputs they cannot take, before any GPU work', () => {
  const cases: [string, () => Model, number[], RegExp][] = [
    ['a ViT whose patch does not divide the image', () => makePreset('vit', 10, { patch: 5 }), [1, 28, 28], /vit: --patch 5 does not divide the image \[1, 28, 28\] \(patch sizes that do: 2, 4, 7\)/],
    ['a ViT width that the heads do not divide', () => makePreset('vit', 10, { width: 50, heads: 4 }), [1, 28, 28], /vit: --width 50 is not a multiple of --heads 4 \(try a width of 52\)/],
    ['too few pixels for the ResNet strides', () => makePreset('resnet', 10), [1, 3, 3], /resnet: takes images \[C, H, W\] of at least 4x4 pixels.*got \[1, 3, 3\]/],
  ];
  for (const [what, make, shape, want] of cases) {
    it(what, async () => {
      const e = await getEngine();
      const before = e.stats().bytesInUse;
      const err = await Promise.resolve()
        .then(() => make().build(e, shape))
        .catch((x: unknown) => x);
      expect(err).toBeInstanceOf(GraphError);
      expect((err as Error).message).toMatch(want);
      expect(e.stats().bytesInUse).toBe(before);
    });
  }

  it('a ResNet depth that is not 6n + 2', () => {
    expect(() => makePreset('resnet', 10, { depth: 18 })).toThrow(/resnet: --depth 18 is not 6n \+ 2 for a whole n >= 1 \(try 8, 14, 20, 32, 44\)/);
  });
});

describe('preset checkpoints', () => {
  it('a ResNet-8 and a ViT rebuild from their checkpoints and predict the same', async () => {
    const e = await getEngine();
    for (const [model, shape] of [
      [makePreset('resnet', 4, { depth: 8 }), [1, 8, 8]],
      [makePreset('vit', 4, { depth: 1, width: 8, heads: 2, patch: 4, pool: 'cls' }), [1, 8, 8]],
    ] as [Model, number[]][]) {
      await model.build(e, shape, { seed: 5 });
      const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 0.01 }, labelSmoothing: 0.1 });
      const { x, y } = batch(shape, 3, 4, 9);
      await trainer.step(x, y);
      const before = await predict(model, x, 3);
      const back = await trainerFromCheckpoint(e, readCheckpoint(await checkpointBytes(trainer), 'mem'), 'mem');
      expect(back.settings.labelSmoothing).toBe(0.1);
      expectClose(await predict(back.model, x, 3), before, { atol: 0, rtol: 0 }, 'predictions after the round trip');
      for (const t of [trainer, back]) {
        t.dispose();
        t.model.dispose();
      }
    }
  });
});

describe("on a device with WebGPU's default limits", () => {
  it('a ResNet-8 (batch norm with its ReLU fused: 8 storage buffers in its backward) trains as on the full device', async () => {
    const small = await Engine.create({ limits: 'default', log: () => {} });
    try {
      expect(small.adapter.limits.maxStorageBuffersPerShaderStage).toBe(8);
      const losses: number[][] = [];
      for (const e of [await getEngine(), small]) {
        const model = makePreset('resnet', 10, { depth: 8 });
        await model.build(e, [3, 12, 12], { seed: 3 });
        const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 } });
        expect(model.summary()).toMatch(/BatchNorm2d\+relu/);
        const run: number[] = [];
        for (let s = 0; s < 3; s++) {
          const { x, y } = batch([3, 12, 12], 4, 10, 100 + s);
          run.push((await trainer.step(x, y, { readLoss: true }))!);
        }
        losses.push(run);
        trainer.dispose();
        model.dispose();
      }
      // The same kernels on the same adapter: the same losses.
      expect(losses[1]).toEqual(losses[0]);
    } finally {
      small.destroy();
    }
  });
});
