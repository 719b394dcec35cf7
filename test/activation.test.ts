// Activation kernels vs the CPU reference, and the reference's derivatives vs finite differences.
import { describe, expect, it } from 'vitest';
import { ACTIVATIONS, activationBackward, activationForward, activationId } from '../src/kernels/activation.ts';
import * as ref from '../src/reference/activation.ts';
import { randomUniform } from '../src/util/random.ts';
import { checkGradient, expectClose, getEngine } from './helpers.ts';

// 1, a few, not a multiple of the 256 workgroup, and over 65535 workgroups' worth is not needed
// here (grid splitting is tested in gpu.test.ts).
const SIZES = [1, 7, 1000, 70_001];

describe('activation kernels vs reference', () => {
  for (const act of ACTIVATIONS) {
    for (const n of SIZES) {
      it(`${act} forward and backward, n=${n}`, async () => {
        const e = await getEngine();
        const xs = randomUniform(n, 1000 + n, -4, 4);
        const dys = randomUniform(n, 2000 + n);
        const x = e.tensor([n], xs, 'x');
        const y = e.tensor([n], undefined, 'y');
        const dy = e.tensor([n], dys, 'dy');
        const dx = e.tensor([n], undefined, 'dx');
        e.runOnce(await activationForward(e, act, x, y, 0.1));
        e.runOnce(await activationBackward(e, act, x, dy, dx, 0.1));
        const wantY = new Float32Array(n);
        const wantDx = new Float32Array(n);
        ref.activationForward(act, xs, wantY, 0.1);
        ref.activationBackward(act, xs, dys, wantDx, 0.1);
        // GPU transcendental functions (exp, tanh) are accurate to a few ulp, not correctly rounded.
        expectClose(await y.read(), wantY, { atol: 2e-6, rtol: 1e-5 }, `${act}_forward`);
        expectClose(await dx.read(), wantDx, { atol: 2e-6, rtol: 1e-5 }, `${act}_backward`);
        for (const t of [x, y, dy, dx]) t.dispose();
      });
    }
  }

  it('takes the activation ids from shaders/_activation.wgsl: one per activation, distinct, none 0 (no activation)', async () => {
    await getEngine();
    const ids = ACTIVATIONS.map(activationId);
    expect(new Set(ids).size).toBe(ACTIVATIONS.length);
    expect(ids).not.toContain(0);
  });

  it('rejects mismatched sizes, naming the kernel and both shapes', async () => {
    const e = await getEngine();
    const x = e.tensor([3, 4], undefined, 'x');
    const y = e.tensor([5], undefined, 'y');
    await expect(activationForward(e, 'relu', x, y)).rejects.toThrow(/activation\.relu_forward.*"x" \[3, 4\].*"y" \[5\]/);
    x.dispose();
    y.dispose();
  });
});

describe('activation reference gradients by finite differences', () => {
  for (const act of ACTIVATIONS) {
    it(act, () => {
      // Points away from relu's kink at 0, where the derivative is undefined.
      const x = Float64Array.from(randomUniform(50, 7, -3, 3), (v) => (Math.abs(v) < 0.05 ? v + 0.1 : v));
      const w = Float64Array.from(randomUniform(50, 8));
      const f = (xx: Float64Array) => {
        let s = 0;
        for (let i = 0; i < xx.length; i++) s += w[i] * ref.activate(act, xx[i], 0.1);
        return s;
      };
      const analytic = Array.from(x, (v, i) => w[i] * ref.activateGrad(act, v, 0.1));
      checkGradient(f, x, analytic, {}, `${act} derivative`);
    });
  }
});
