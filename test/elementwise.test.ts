// Elementwise primitives (add, mul, scale) vs the CPU reference on odd shapes, with b broadcast
// along a's leading dimensions, overwriting and accumulating, and one tensor past 65,535
// workgroups; the reference backward passes vs finite differences; bad shapes rejected with the
// kernel's name and the shapes.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/gpu/engine.ts';
import { addForward, fillForward, mulForward, scaleForward } from '../src/kernels/elementwise.ts';
import * as ref from '../src/reference/elementwise.ts';
import { hostTensor, type HostTensor } from '../src/reference/host.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** [a's shape, b's shape]: equal shapes, trailing parts, leading 1s, a scalar. */
const PAIRS: [number[], number[]][] = [
  [[1], [1]],
  [
    [3, 5, 7],
    [3, 5, 7],
  ],
  [
    [3, 5, 7],
    [5, 7],
  ],
  [[3, 5, 7], [7]],
  [
    [127, 33, 65],
    [1, 33, 65],
  ],
  [[127, 33, 65], [1]],
];

function both(e: Engine, shape: number[], seed: number, label: string) {
  const data = randomUniform(size(shape), seed);
  return { gpu: e.tensor(shape, data, label), host: hostTensor(shape, data, label) };
}

describe('elementwise kernels vs reference', () => {
  PAIRS.forEach(([aShape, bShape], ci) => {
    it(`a [${aShape.join(', ')}], b [${bShape.join(', ')}]: add and mul, overwriting and accumulating`, async () => {
      const e = await getEngine();
      const a = both(e, aShape, 10 * ci + 1, 'a');
      const b = both(e, bShape, 10 * ci + 2, 'b');
      const prefill = randomUniform(size(aShape), 10 * ci + 3);
      const y = e.tensor(aShape, undefined, 'y');
      const cases: [string, boolean, (out: HostTensor, accumulate: boolean) => void, (accumulate: boolean) => ReturnType<typeof addForward>][] = [
        ['add_forward', false, (o, acc) => ref.addForward(a.host, b.host, o, { alpha: 0.5, beta: -1.5, accumulate: acc }), (acc) => addForward(e, a.gpu, b.gpu, y, { alpha: 0.5, beta: -1.5, accumulate: acc })],
        ['add_forward', true, (o, acc) => ref.addForward(a.host, b.host, o, { accumulate: acc }), (acc) => addForward(e, a.gpu, b.gpu, y, { accumulate: acc })],
        ['mul_forward', false, (o, acc) => ref.mulForward(a.host, b.host, o, { accumulate: acc }), (acc) => mulForward(e, a.gpu, b.gpu, y, { accumulate: acc })],
        ['mul_forward', true, (o, acc) => ref.mulForward(a.host, b.host, o, { accumulate: acc }), (acc) => mulForward(e, a.gpu, b.gpu, y, { accumulate: acc })],
      ];
      for (const [name, accumulate, refRun, gpuRun] of cases) {
        if (accumulate) e.write(y, prefill);
        else e.fill(y, NaN); // every element must be written
        e.runOnce(await gpuRun(accumulate));
        const want = hostTensor(aShape, accumulate ? prefill : undefined);
        refRun(want, accumulate);
        // One or two products and sums of values in [-2, 2]: a few ulp.
        expectClose(await y.read(), want.data, {}, `${name}${accumulate ? ' +=' : ''}`);
      }
      for (const t of [a.gpu, b.gpu, y]) t.dispose();
    });
  });

  it('scaleForward: a copy (s = 1), a scale, and an add in place (accumulate)', async () => {
    const e = await getEngine();
    const shape = [3, 5, 7];
    const x = both(e, shape, 40, 'x');
    const prefill = randomUniform(size(shape), 41);
    const y = e.tensor(shape, undefined, 'y');
    for (const [s, accumulate] of [
      [1, false],
      [-2.5, false],
      [1, true],
      [0.75, true],
    ] as const) {
      if (accumulate) e.write(y, prefill);
      else e.fill(y, NaN);
      e.runOnce(await scaleForward(e, x.gpu, y, s, { accumulate }));
      const want = hostTensor(shape, accumulate ? prefill : undefined);
      ref.scaleForward(x.host, want, s, { accumulate });
      expectClose(await y.read(), want.data, {}, `scale_forward s=${s}${accumulate ? ' +=' : ''}`);
    }
    x.gpu.dispose();
    y.dispose();
  });

  it('fillForward: a constant, or a constant added', async () => {
    const e = await getEngine();
    const shape = [2, 3, 7];
    const prefill = randomUniform(size(shape), 44);
    const y = e.tensor(shape, undefined, 'y');
    for (const [v, accumulate] of [
      [0, false],
      [-1.5, false],
      [2.25, true],
    ] as const) {
      if (accumulate) e.write(y, prefill);
      else e.fill(y, NaN);
      e.runOnce(await fillForward(e, y, v, { accumulate }));
      const want = hostTensor(shape, accumulate ? prefill : undefined);
      ref.fillForward(want, v, { accumulate });
      expectClose(await y.read(), want.data, {}, `fill_forward ${v}${accumulate ? ' +=' : ''}`);
    }
    await expect(fillForward(e, y, NaN)).rejects.toThrow(/elementwise\.fill_forward: the value NaN/);
    y.dispose();
  });

  it('more than 65,535 workgroups: add with a broadcast row (the grid splits over x and y)', async () => {
    const e = await getEngine();
    const D = 77;
    const rows = Math.ceil((65535 * 256 + 1) / D); // a's elements need 65,536 or more workgroups of 256
    const a = both(e, [rows, D], 50, 'a');
    const b = both(e, [D], 51, 'b');
    const y = e.tensor([rows, D], undefined, 'y');
    e.fill(y, NaN);
    e.runOnce(await addForward(e, a.gpu, b.gpu, y, { beta: 2 }));
    const want = hostTensor([rows, D]);
    ref.addForward(a.host, b.host, want, { beta: 2 });
    expectClose(await y.read(), want.data, {}, 'add_forward over 65,535 workgroups');
    for (const t of [a.gpu, b.gpu, y]) t.dispose();
  });
});

describe('elementwise reference gradients by finite differences', () => {
  /** L = sum(w ⊙ y): its gradient with respect to y is w. */
  const lossOf = (y: HostTensor, w: Float64Array) => {
    let s = 0;
    for (let i = 0; i < w.length; i++) s += y.data[i] * w[i];
    return s;
  };
  const f64 = (shape: number[], seed: number, label: string) => ({ shape, data: Float64Array.from(randomUniform(size(shape), seed)), label });

  for (const [aShape, bShape] of [
    [
      [2, 3, 4],
      [2, 3, 4],
    ],
    [
      [2, 3, 4],
      [3, 4],
    ],
    [[2, 3, 4], [1]],
  ]) {
    it(`add and mul with b [${bShape.join(', ')}] against a [${aShape.join(', ')}]`, () => {
      const a = f64(aShape, 1, 'a');
      const b = f64(bShape, 2, 'b');
      const w = Float64Array.from(randomUniform(size(aShape), 3));
      const dy = { shape: aShape, data: w, label: 'dy' };
      const y = () => ({ shape: aShape, data: new Float64Array(size(aShape)) });
      const addLoss = () => {
        const out = y();
        ref.addForward(a, b, out, { alpha: 0.5, beta: -2 });
        return lossOf(out, w);
      };
      const mulLoss = () => {
        const out = y();
        ref.mulForward(a, b, out);
        return lossOf(out, w);
      };
      const da = { shape: aShape, data: new Float64Array(size(aShape)) };
      const db = { shape: bShape, data: new Float64Array(size(bShape)) };
      ref.addBackward(dy, da, db, { alpha: 0.5, beta: -2 });
      checkGradient(addLoss, a.data, da.data, {}, 'add: da');
      checkGradient(addLoss, b.data, db.data, {}, 'add: db');
      ref.mulBackward(a, b, dy, da, db);
      checkGradient(mulLoss, a.data, da.data, {}, 'mul: da');
      checkGradient(mulLoss, b.data, db.data, {}, 'mul: db');
    });
  }

  it('a value consumed twice gets the sum of both gradients: y = a·b + a', () => {
    const a = f64([3, 4], 11, 'a');
    const b = f64([4], 12, 'b');
    const w = Float64Array.from(randomUniform(12, 13));
    const loss = () => {
      const p = { shape: [3, 4], data: new Float64Array(12) };
      ref.mulForward(a, b, p);
      const out = { shape: [3, 4], data: new Float64Array(12) };
      ref.addForward(p, a, out);
      return lossOf(out, w);
    };
    const dy = { shape: [3, 4], data: w };
    const da = { shape: [3, 4], data: new Float64Array(12) };
    const dp = { shape: [3, 4], data: new Float64Array(12) };
    ref.addBackward(dy, dp, da); // the add writes first: overwrite
    ref.mulBackward(a, b, dp, da, null, { accumulate: true }); // the multiply's share adds
    checkGradient(loss, a.data, da.data, {}, 'da');
  });
});

describe('elementwise shape errors name the kernel and the shapes', () => {
  it('rejects a b that does not broadcast, and a y of the wrong shape', async () => {
    const e = await getEngine();
    const t = (shape: number[], label: string) => e.tensor(shape, undefined, label);
    const [a, b, y, bad] = [t([3, 5, 7], 'h'), t([5, 6], 'bias'), t([3, 5, 7], 'out'), t([3, 35], 'flat')];
    await expect(addForward(e, a, b, y)).rejects.toThrow(/elementwise\.add_forward.*"bias" \[5, 6\].*"h" \[3, 5, 7\]/);
    await expect(mulForward(e, a, t([3, 5], 'lead'), y)).rejects.toThrow(/elementwise\.mul_forward.*"lead" \[3, 5\].*"h" \[3, 5, 7\]/);
    await expect(addForward(e, a, y, bad)).rejects.toThrow(/elementwise\.add_forward.*"flat" \[3, 35\].*\[3, 5, 7\]/);
    await expect(scaleForward(e, a, bad, 2)).rejects.toThrow(/elementwise\.scale_forward.*"flat" \[3, 35\].*"h" \[3, 5, 7\]/);
    for (const x of [a, b, y, bad]) x.dispose();
  });
});
