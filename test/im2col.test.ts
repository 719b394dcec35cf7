// The im2col path of Conv2d: the im2col, col2im and batched-transpose kernels vs their CPU
// references on odd shapes (odd sizes, strides that do not divide the input, padding, batch > 1,
// 1x1 kernels, widths past one workgroup, grids smaller than the tensor so the shader's loops run);
// Conv2d forced to 'im2col' and to 'direct' vs the CPU convolution reference for y, dx, dW and db;
// the 'auto' choice by K and by the adapter's buffer limit; and a small CNN trained both ways.
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../src/data/dataset.ts';
import type { Engine } from '../src/gpu/engine.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { conv2dParams } from '../src/kernels/conv2d.ts';
import { col2im, colShape, im2col, im2colGeometry, transposeBatched, type Im2colOptions } from '../src/kernels/im2col.ts';
import { Activation, Flatten } from '../src/nn/activations.ts';
import { Conv2d, type Conv2dOptions } from '../src/nn/conv.ts';
import { Dense } from '../src/nn/dense.ts';
import type { Layer } from '../src/nn/layer.ts';
import { MaxPool2d } from '../src/nn/pool.ts';
import { layerFromConfig, layerToConfig } from '../src/nn/registry.ts';
import * as refConv from '../src/reference/conv2d.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import * as ref from '../src/reference/im2col.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { Trainer } from '../src/train/trainer.ts';
import { Rng, randomUniform } from '../src/util/random.ts';
import { expectClose, getEngine, planAlone } from './helpers.ts';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** The same seeded data on the GPU and on the host. */
function both(e: Engine, shape: number[], seed: number, label: string) {
  const data = randomUniform(size(shape), seed);
  return { gpu: e.tensor(shape, data, label), host: hostTensor(shape, data, label) };
}

interface KernelCase {
  x: [number, number, number, number];
  opts: Im2colOptions;
}

const KERNEL_CASES: KernelCase[] = [
  { x: [3, 2, 7, 9], opts: { kernel: 3, stride: 2, padding: 1 } }, // (7 + 2 - 3) / 2 = 3: even; W: (9 + 2 - 3) / 2 = 4
  { x: [2, 3, 8, 10], opts: { kernel: 3, stride: 3, padding: 1 } }, // (8 + 2 - 3) / 3 and (10 + 2 - 3) / 3 leave remainders
  { x: [2, 5, 5, 3], opts: { kernel: 1 } }, // 1x1
  { x: [3, 4, 7, 6], opts: { kernel: 1, stride: 2 } }, // 1x1 strided: some pixels are never seen
  { x: [1, 3, 6, 7], opts: { kernel: [2, 4], stride: [3, 2], padding: [1, 2] } },
  { x: [3, 1, 13, 5], opts: { kernel: [5, 3], stride: [2, 1], padding: 2 } },
  { x: [2, 2, 5, 5], opts: { kernel: 3, padding: 2 } }, // padding wider than a window's overlap
  { x: [2, 2, 3, 70], opts: { kernel: 3, stride: [1, 2] } }, // wider than one 64-lane workgroup
];

function kernelCaseName(c: KernelCase): string {
  const o = c.opts;
  return `x [${c.x.join(', ')}] kernel ${JSON.stringify(o.kernel)} stride ${JSON.stringify(o.stride ?? 1)} pad ${JSON.stringify(o.padding ?? 0)}`;
}

describe('im2col kernels vs reference', () => {
  KERNEL_CASES.forEach((c, ci) => {
    it(kernelCaseName(c), async () => {
      const e = await getEngine();
      const x = both(e, c.x, 10 * ci + 1, 'x');
      const g = im2colGeometry('test', x.host, c.opts);
      const cShape = colShape(g);
      const dcol = both(e, cShape, 10 * ci + 2, 'dcol');
      const col = e.tensor(cShape, undefined, 'col');
      const dx = e.tensor(c.x, undefined, 'dx');
      e.runOnce(await im2col(e, x.gpu, col, c.opts));
      e.runOnce(await col2im(e, dcol.gpu, dx, c.opts));

      const wantCol = hostTensor(cShape);
      const wantDx = hostTensor(c.x);
      ref.im2col(x.host, wantCol, c.opts);
      ref.col2im(dcol.host, wantDx, c.opts);
      // im2col only copies and zero-fills: exact.
      expectClose(await col.read(), wantCol.data, { atol: 0, rtol: 0 }, 'im2col');
      // col2im sums at most ceil(KH/SH) * ceil(KW/SW) = 15 terms per pixel in f32, the reference in f64.
      expectClose(await dx.read(), wantDx.data, { atol: 1e-6, rtol: 1e-5 }, 'col2im');
      for (const t of [x.gpu, dcol.gpu, col, dx]) t.dispose();
    });
  });

  it('the reference col2im is the adjoint of im2col: <im2col(x), d> = <x, col2im(d)>', () => {
    const c = KERNEL_CASES[1];
    const x = hostTensor(c.x, randomUniform(size(c.x), 3));
    const g = im2colGeometry('test', x, c.opts);
    const d = hostTensor(colShape(g), randomUniform(size(colShape(g)), 4));
    const col = hostTensor(colShape(g));
    const back = hostTensor(c.x);
    ref.im2col(x, col, c.opts);
    ref.col2im(d, back, c.opts);
    let lhs = 0;
    let rhs = 0;
    for (let i = 0; i < col.data.length; i++) lhs += col.data[i] * d.data[i];
    for (let i = 0; i < x.data.length; i++) rhs += x.data[i] * back.data[i];
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-4 * Math.abs(lhs) + 1e-4);
  });

  it('covers the tensor when the grid is smaller (the y and z loops of a capped grid)', async () => {
    // The wrappers cap y and z at 65,535 workgroups and the shader loops over the rest: dispatch
    // one workgroup along y and z by hand so that those loops do all the work.
    const e = await getEngine();
    const c = KERNEL_CASES[1];
    const x = both(e, c.x, 31, 'x');
    const g = im2colGeometry('test', x.host, c.opts);
    const cShape = colShape(g);
    const dcol = both(e, cShape, 32, 'dcol');
    const col = e.tensor(cShape, undefined, 'col');
    const dx = e.tensor(c.x, undefined, 'dx');
    const src = both(e, [3, 5, 70], 33, 'src');
    const dst = e.tensor([3, 70, 5], undefined, 'dst');
    const params = conv2dParams(g);
    const constants = { WX: 4, WY: 2 };
    const k1 = await e.kernel('im2col', 'im2col', constants);
    e.runOnce(e.dispatch(k1, { x: x.gpu, col }, [Math.ceil(g.outW / 4), 1, 1], params));
    const k2 = await e.kernel('im2col', 'col2im', constants);
    e.runOnce(e.dispatch(k2, { dcol: dcol.gpu, dx }, [Math.ceil(g.inW / 4), 1, 1], params));
    const k3 = await e.kernel('transpose', 'transpose_batched', { ...constants, TC: 3 }); // 70 columns: a partial block of 3
    e.runOnce(e.dispatch(k3, { src: src.gpu, dst }, [2, 1, 1], { batch: 3, rows: 5, cols: 70 }));

    const wantCol = hostTensor(cShape);
    const wantDx = hostTensor(c.x);
    const wantT = hostTensor([3, 70, 5]);
    ref.im2col(x.host, wantCol, c.opts);
    ref.col2im(dcol.host, wantDx, c.opts);
    ref.transposeBatched(src.host, wantT);
    expectClose(await col.read(), wantCol.data, { atol: 0, rtol: 0 }, 'im2col, small grid');
    expectClose(await dx.read(), wantDx.data, { atol: 1e-6, rtol: 1e-5 }, 'col2im, small grid');
    expectClose(await dst.read(), wantT.data, { atol: 0, rtol: 0 }, 'transpose_batched, small grid');
    for (const t of [x.gpu, dcol.gpu, col, dx, src.gpu, dst]) t.dispose();
  });

  for (const shape of [
    [1, 1, 1],
    [3, 5, 7],
    [2, 70, 3],
    [4, 1, 9],
    [2, 64, 130],
  ] as [number, number, number][]) {
    it(`transpose_batched [${shape.join(', ')}] (exact)`, async () => {
      const e = await getEngine();
      const src = both(e, shape, 41, 'src');
      const tShape = [shape[0], shape[2], shape[1]];
      const dst = e.tensor(tShape, undefined, 'dst');
      e.runOnce(await transposeBatched(e, src.gpu, dst));
      const want = hostTensor(tShape);
      ref.transposeBatched(src.host, want);
      expectClose(await dst.read(), want.data, { atol: 0, rtol: 0 }, 'transpose_batched');
      src.gpu.dispose();
      dst.dispose();
    });
  }

  it('rejects bad shapes, naming the kernel and the tensors', async () => {
    const e = await getEngine();
    const x = e.tensor([2, 3, 5, 5], undefined, 'x');
    const col2 = e.tensor([50, 28], undefined, 'col');
    await expect(im2col(e, x, col2, { kernel: 3, padding: 1 })).rejects.toThrow(/Kernel im2col\.im2col: "col" \[50, 28\] should be \[50, 27\].*"x" \[2, 3, 5, 5\]/);
    await expect(col2im(e, col2, x, { kernel: 3, padding: 1 })).rejects.toThrow(/Kernel im2col\.col2im: "col" \[50, 28\] should be \[50, 27\]/);
    await expect(im2col(e, x, col2, { kernel: 7 })).rejects.toThrow(/Kernel im2col\.im2col: "x" \[2, 3, 5, 5\].*smaller than the 7x7 kernel/);
    const t = e.tensor([2, 3, 4], undefined, 'src');
    const u = e.tensor([2, 3, 4], undefined, 'dst');
    await expect(transposeBatched(e, t, u)).rejects.toThrow(/Kernel transpose\.transpose_batched: "dst" \[2, 3, 4\] should be \[2, 4, 3\].*"src" \[2, 3, 4\]/);
    for (const v of [x, col2, t, u]) v.dispose();
  });
});

/** A Conv2d built alone (seeded weights) and planned against tensors the test owns. */
async function planConv(e: Engine, opts: Conv2dOptions, oc: number, batch: number, input: number[], relu: boolean, withDx = true) {
  const conv = new Conv2d(oc, opts);
  const t = await planAlone(e, conv, batch, input, 5, { epilogue: relu ? { activation: 'relu', alpha: 0 } : undefined, withDx });
  const outShape = conv.outputShape;
  return {
    ...t,
    conv,
    dx: withDx ? t.dx : null,
    host: { x: hostTensor([batch, ...input], t.xData, 'x'), dy: hostTensor([batch, ...outShape], t.dyData, 'dy') },
  };
}

async function readHost(t: Tensor): Promise<HostTensor> {
  return hostTensor(t.shape, await t.read(), t.label);
}

describe('Conv2d: every algorithm vs the CPU convolution reference', () => {
  const cases: { name: string; batch: number; input: number[]; oc: number; opts: Conv2dOptions; relu: boolean; withDx?: boolean }[] = [
    { name: '3->5, 3x2 kernel, stride [2,1], padding [1,0], bias', batch: 3, input: [3, 7, 9], oc: 5, opts: { kernel: [3, 2], stride: [2, 1], padding: [1, 0] }, relu: false },
    { name: '1->3, 5x5 kernel, padding 2, no bias, fused ReLU', batch: 2, input: [1, 6, 5], oc: 3, opts: { kernel: 5, padding: 2, bias: false }, relu: true },
    { name: '6->4, 1x1 kernel, stride 2, bias, fused ReLU', batch: 2, input: [6, 5, 7], oc: 4, opts: { kernel: 1, stride: 2 }, relu: true },
    { name: '4->7, 3x3 kernel, stride 3 (uneven), padding 1, no bias', batch: 2, input: [4, 10, 8], oc: 7, opts: { kernel: 3, stride: 3, padding: 1, bias: false }, relu: false },
    { name: '30->9, 3x3 kernel, padding 1, bias, ReLU, K = 270 (first layer: no dx)', batch: 3, input: [30, 5, 6], oc: 9, opts: { kernel: 3, padding: 1 }, relu: true, withDx: false },
  ];
  for (const c of cases) {
    for (const algorithm of ['im2col', 'direct', 'gemm'] as const) {
      it(`${algorithm}: ${c.name}`, async () => {
        const e = await getEngine();
        const t = await planConv(e, { ...c.opts, algorithm }, c.oc, c.batch, c.input, c.relu, c.withDx ?? true);
        expect(t.conv.algorithm).toBe(algorithm);
        expect(t.conv.algorithmReason).toMatch(new RegExp(`'${algorithm}' requested`));
        e.run(...t.plan.forward, ...t.plan.backward);
        const conv = t.conv;
        const w = await readHost(conv.weight!.value);
        const b = conv.bias ? await readHost(conv.bias.value) : null;
        const opts = { stride: conv.stride, padding: conv.padding };
        const y = hostTensor(t.host.dy.shape);
        refConv.conv2dForward(t.host.x, w, b, y, { ...opts, relu: c.relu });
        // With the ReLU fused, the gradient reaching the convolution is dy where y > 0.
        const dz = hostTensor(
          y.shape,
          t.host.dy.data.map((v, i) => (!c.relu || y.data[i] > 0 ? v : 0)),
        );
        const dx = hostTensor(t.host.x.shape);
        const dw = hostTensor(w.shape);
        const db = b ? hostTensor(b.shape) : null;
        refConv.conv2dBackwardInput(dz, w, dx, opts);
        refConv.conv2dBackwardWeight(t.host.x, dz, dw, db, opts);
        // y sums K <= 270 products, dx at most OC * 9; dW and db up to B*OH*OW = 90: f32 in
        // another order than the reference's f64.
        expectClose(await t.y.read(), y.data, { atol: 2e-5, rtol: 1e-4 }, 'y');
        if (t.dx) expectClose(await t.dx.read(), dx.data, { atol: 2e-5, rtol: 1e-4 }, 'dx');
        expectClose(await conv.weight!.grad.read(), dw.data, { atol: 5e-5, rtol: 1e-4 }, 'dweight');
        if (db) expectClose(await conv.bias!.grad.read(), db.data, { atol: 5e-5, rtol: 1e-4 }, 'dbias');
        t.dispose();
      });
    }
  }
});

describe("Conv2d algorithm choice ('auto')", () => {
  it('measures each pass when the layer is planned, and the summary shows the choice', async () => {
    const e = await getEngine();
    const model = new Sequential([new Conv2d(8, { kernel: 3, padding: 1 }), new Activation('relu'), new Conv2d(4, { kernel: 3, padding: 1 }), new Flatten(), new Dense(3)]);
    await model.build(e, [5, 4, 4], { seed: 1 });
    const [first, , second] = model.layers as Conv2d[];
    expect(first.algorithm).toBeNull(); // nothing measured before a plan
    await model.plan(2);
    for (const c of [first, second]) {
      const all = c.algorithms!;
      for (const p of [all.forward, all.backwardInput, all.backwardWeight]) expect(['direct', 'im2col', 'gemm']).toContain(p.algorithm);
      expect(c.algorithmReason).toMatch(/^forward: .+; input gradient: .+; weight gradient: .+/);
    }
    const summary = model.summary();
    expect(summary).toMatch(/Params\s+Algorithm\n/);
    expect(summary).toMatch(new RegExp(`layers\\.0\\s+Conv2d\\+ReLU\\s+\\[8, 4, 4\\]\\s+368\\s+${first.algorithm!.replace(/\//g, '\\/')}\\n`));
    model.dispose();
  });

  it("a forced 'im2col' whose scratch is over the adapter's limit is refused, naming the sizes and the limit", async () => {
    const e = await getEngine();
    const limit = e.adapter.limits.maxStorageBufferBindingSize;
    // col [B*OH*OW, IC*KH*KW] with IC*KH*KW = 9 * 512 and B*OH*OW = 64 * 32 * 32: 18.9 GB, over any limit.
    const model = new Sequential([new Conv2d(1, { kernel: 3, padding: 1, algorithm: 'im2col' }), new Flatten(), new Dense(2)]);
    await model.build(e, [512, 32, 32]);
    const err = await model.plan(64).catch((x: unknown) => x);
    expect((err as Error).message).toMatch(new RegExp(`im2col: col \\[B\\*OH\\*OW, IC\\*KH\\*KW\\] = \\[65536, 4608\\] needs \\d+ bytes, over the adapter's maxStorageBufferBindingSize of ${limit} bytes`));
    model.dispose();
  });

  it("keeps 'algorithm' in the config only when set, and rejects unknown ones", () => {
    expect(layerToConfig(new Conv2d(4)).config).not.toHaveProperty('algorithm');
    const c = layerToConfig(new Conv2d(4, { algorithm: 'im2col' }));
    expect(c.config.algorithm).toBe('im2col');
    expect((layerFromConfig(c) as Conv2d).opts.algorithm).toBe('im2col');
    expect(() => new Conv2d(4, { algorithm: 'winograd' as never })).toThrow(/Conv2d: algorithm "winograd" must be one of 'auto', 'direct', 'im2col', 'gemm'/);
  });
});

/** n random images of `shape` with labels in [0, classes). */
function imageDataset(n: number, shape: number[], classes: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = new Uint8Array(n * size(shape)).map(() => rng.int(256));
  const y = new Uint8Array(n).map(() => rng.int(classes));
  return { name: 'random-images', task: 'classification', inputShape: shape, numClasses: classes, train: { n, x, y }, test: { n, x, y }, normalization: { kind: 'scale255' } };
}

describe('a CNN trains the same with every convolution algorithm', () => {
  it('6 SGD steps: losses and weights agree', async () => {
    const e = await getEngine();
    const B = 4;
    const shape = [3, 9, 7];
    const data = imageDataset(6 * B, shape, 4, 9);
    type Forced = 'im2col' | 'direct' | 'gemm';
    const layers = (algorithm: Forced): Layer[] => [
      new Conv2d(6, { kernel: 3, padding: 1, algorithm }), // first layer: no dx
      new Activation('relu'),
      new MaxPool2d({ kernel: 2 }),
      new Conv2d(5, { kernel: [2, 3], stride: [2, 1], padding: [1, 0], bias: false, algorithm }),
      new Flatten(),
      new Dense(4),
    ];
    const run = async (algorithm: Forced) => {
      const model = new Sequential(layers(algorithm));
      await model.build(e, shape, { seed: 3 });
      const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 } });
      const losses: number[] = [];
      await trainer.fit(data, { epochs: 1, batchSize: B, seed: 2, logEvery: 1, onStep: (ev) => void losses.push(ev.loss) });
      const params = await Promise.all(model.params().map((p) => p.value.read()));
      expect((model.layers[0] as Conv2d).algorithm).toBe(algorithm);
      trainer.dispose();
      model.dispose();
      return { losses, params };
    };
    const d = await run('direct');
    for (const other of ['im2col', 'gemm'] as const) {
      const a = await run(other);
      expect(a.losses).toHaveLength(6);
      for (let s = 0; s < 6; s++) expect(Math.abs(a.losses[s] - d.losses[s]), `step ${s}: ${other} ${a.losses[s]} direct ${d.losses[s]}`).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(d.losses[s]));
      for (let i = 0; i < a.params.length; i++) expectClose(a.params[i], d.params[i], { atol: 1e-5, rtol: 1e-4 }, `${other} param ${i}`);
    }
  });
});
