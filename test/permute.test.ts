// The permute kernel vs the CPU reference on odd shapes and permutations of rank 1 to 6 (axes of
// size 1, axes that merge), overwriting and accumulating; the reference backward (the inverse
// permutation) vs finite differences; bad permutations and shapes rejected with the kernel's name.
import { describe, expect, it } from 'vitest';
import { collapsePermutation, permute, permutedShape } from '../src/kernels/permute.ts';
import { hostTensor } from '../src/reference/host.ts';
import * as ref from '../src/reference/permute.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

const CASES: [number[], number[]][] = [
  [[7], [0]],
  [
    [3, 5],
    [1, 0],
  ],
  [
    [3, 5, 7],
    [0, 1, 2],
  ], // identity: a copy
  [
    [3, 5, 7],
    [2, 0, 1],
  ],
  [
    [2, 3, 5, 7],
    [0, 2, 1, 3],
  ], // attention's [B, T, H, D] -> [B, H, T, D]
  [
    [1, 5, 1, 7],
    [3, 1, 2, 0],
  ], // axes of size 1
  [
    [127, 33, 65],
    [1, 2, 0],
  ],
  [
    [2, 3, 1, 4, 5, 2],
    [5, 3, 1, 0, 4, 2],
  ],
  [
    [3, 2, 2, 3, 2, 2],
    [0, 1, 4, 5, 2, 3],
  ], // runs that merge
];

describe('permute vs reference', () => {
  CASES.forEach(([shape, perm], ci) => {
    it(`x [${shape.join(', ')}] by [${perm.join(', ')}], overwriting and accumulating`, async () => {
      const e = await getEngine();
      const data = randomUniform(size(shape), ci + 1);
      const yShape = permutedShape(shape, perm);
      const x = e.tensor(shape, data, 'x');
      const y = e.tensor(yShape, undefined, 'y');
      const prefill = randomUniform(size(shape), ci + 100);
      for (const accumulate of [false, true]) {
        if (accumulate) e.write(y, prefill);
        else e.fill(y, NaN); // every element must be written
        e.runOnce(await permute(e, x, y, perm, { accumulate }));
        const want = hostTensor(yShape, accumulate ? prefill : undefined);
        ref.permute(hostTensor(shape, data), want, perm, { accumulate });
        // A copy is exact; an add rounds once.
        expectClose(await y.read(), want.data, accumulate ? {} : { atol: 0, rtol: 0 }, `permute${accumulate ? ' +=' : ''}`);
      }
      x.dispose();
      y.dispose();
    });
  });

  it('more than 65,535 workgroups: a [4097, 4096] transpose (the grid splits over x and y)', async () => {
    const e = await getEngine();
    const shape = [4097, 4096]; // 16,781,312 elements: over 65,535 workgroups of 256
    const data = randomUniform(size(shape), 90);
    const x = e.tensor(shape, data, 'x');
    const y = e.tensor([4096, 4097], undefined, 'y');
    e.fill(y, NaN);
    e.runOnce(await permute(e, x, y, [1, 0]));
    const want = hostTensor([4096, 4097]);
    ref.permute(hostTensor(shape, data), want, [1, 0]);
    expectClose(await y.read(), want.data, { atol: 0, rtol: 0 }, 'permute over 65,535 workgroups');
    x.dispose();
    y.dispose();
  });

  it('collapses axes: size-1 axes dropped, runs that stay in order merged', () => {
    // Every y coordinate must land on the same x offset before and after collapsing.
    for (const [shape, perm] of CASES) {
      const { dims, strides } = collapsePermutation(shape, perm);
      expect(size(dims)).toBe(size(shape));
      const xStrides = shape.map((_, k) => size(shape.slice(k + 1)));
      const yShape = permutedShape(shape, perm);
      for (let i = 0; i < size(shape); i += 7) {
        let full = 0;
        let rest = i;
        for (let k = yShape.length - 1; k >= 0; k--) {
          full += (rest % yShape[k]) * xStrides[perm[k]];
          rest = Math.floor(rest / yShape[k]);
        }
        let collapsed = 0;
        rest = i;
        for (let k = dims.length - 1; k >= 0; k--) {
          collapsed += (rest % dims[k]) * strides[k];
          rest = Math.floor(rest / dims[k]);
        }
        expect(collapsed).toBe(full);
      }
    }
    // [B, T, H, D] -> [B, H, T, D] keeps D whole; an identity is one axis.
    expect(collapsePermutation([2, 3, 5, 7], [0, 2, 1, 3]).dims.length).toBe(4);
    expect(collapsePermutation([3, 5, 7], [0, 1, 2]).dims).toEqual([105]);
    expect(collapsePermutation([3, 2, 2, 3, 2, 2], [0, 1, 4, 5, 2, 3]).dims).toEqual([6, 4, 6]);
  });
});

describe('permute reference backward by finite differences', () => {
  for (const [shape, perm] of [
    [
      [2, 3, 4],
      [2, 0, 1],
    ],
    [
      [2, 1, 3, 2],
      [3, 0, 2, 1],
    ],
  ]) {
    it(`x [${shape.join(', ')}] by [${perm.join(', ')}]`, () => {
      const x = { shape, data: Float64Array.from(randomUniform(size(shape), 5)) };
      const yShape = permutedShape(shape, perm);
      const w = Float64Array.from(randomUniform(size(shape), 6)); // dL/dy for L = sum(w ⊙ y)
      const loss = () => {
        const y = { shape: yShape, data: new Float64Array(size(shape)) };
        ref.permute(x, y, perm);
        return y.data.reduce((s, v, i) => s + v * w[i], 0);
      };
      const dx = { shape, data: new Float64Array(size(shape)) };
      ref.permuteBackward({ shape: yShape, data: w }, dx, perm);
      checkGradient(loss, x.data, dx.data, {}, 'dx');
    });
  }
});

describe('permute errors name the kernel and the shapes', () => {
  it('rejects a bad permutation, a wrong output shape and rank 7', async () => {
    const e = await getEngine();
    const t = (shape: number[], label: string) => e.tensor(shape, undefined, label);
    const [x, y, x7] = [t([2, 3, 4], 'q'), t([4, 3, 2], 'qt'), t([1, 1, 1, 1, 1, 1, 2], 'deep')];
    await expect(permute(e, x, y, [0, 0, 1])).rejects.toThrow(/permute\.permute.*\[0, 0, 1\] is not a permutation.*"q" \[2, 3, 4\]/);
    await expect(permute(e, x, y, [1, 0, 2])).rejects.toThrow(/permute\.permute.*"qt" \[4, 3, 2\] should be \[3, 2, 4\].*"q" \[2, 3, 4\]/);
    await expect(permute(e, x7, x7, [0, 1, 2, 3, 4, 5, 6])).rejects.toThrow(/permute\.permute.*"deep" \[1, 1, 1, 1, 1, 1, 2\] has rank 7.*rank 6 at most/);
    for (const v of [x, y, x7]) v.dispose();
  });
});
