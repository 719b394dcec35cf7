// Optimizer update kernels vs the CPU reference over several steps from the same state, with the
// per-step values (learning rate, Adam's bias corrections) written into the per-step uniform the
// kernels read, once per step; and checks that each flag (momentum, nesterov, decoupled) really
// changes the update.
import { describe, expect, it } from 'vitest';
import type { BufferArg, Engine } from '../src/gpu/engine.ts';
import { GPUBufferUsageFlags } from '../src/gpu/buffers.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { adamParams, adamStepValues, adamUpdate, type AdamOptions } from '../src/kernels/adam.ts';
import { sgdParams, sgdUpdate, type SgdOptions } from '../src/kernels/sgd.ts';
import { packStepValues } from '../src/kernels/step.ts';
import { Optimizer } from '../src/optim/optimizer.ts';
import { refitSchedule, scheduleFor } from '../src/optim/schedule.ts';
import * as ref from '../src/reference/optim.ts';
import { randomUniform } from '../src/util/random.ts';
import { expectClose, getEngine } from './helpers.ts';

const SIZES = [1, 7, 1000, 70_001];
const STEPS = 5;

/** A decaying learning rate, so that a kernel that ignored the per-step values would drift from the reference. */
const lrAt = (base: number, t: number) => base * (1 - 0.15 * t);
const gradAt = (n: number, t: number) => randomUniform(n, 900 + 31 * t + n, -1, 1);

interface State {
  w: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

function initialState(n: number, withMomentum: boolean): State {
  return {
    w: randomUniform(n, 1 + n, -1, 1),
    g: new Float32Array(n),
    // Non-zero optimizer state, so that reading it is part of what is checked.
    m: withMomentum ? randomUniform(n, 2 + n, -0.1, 0.1) : new Float32Array(n),
    v: withMomentum ? randomUniform(n, 3 + n, 0, 0.01) : new Float32Array(n),
  };
}

/** The per-step values uniform for one test run. */
function stepBuffer(e: Engine): BufferArg & { release(): void } {
  const buffer = e.pool.acquire(32, GPUBufferUsageFlags.uniform, 'step values');
  return { buffer, byteLength: 32, label: 'step values', release: () => e.releaseBuffer(buffer) };
}

function upload(e: Engine, s: State): Record<keyof State, Tensor> {
  const n = s.w.length;
  return {
    w: e.tensor([n], s.w, 'w'),
    g: e.tensor([n], s.g, 'g'),
    m: e.tensor([n], s.m, 'm'),
    v: e.tensor([n], s.v, 'v'),
  };
}

async function runSgdGpu(e: Engine, init: State, opts: SgdOptions): Promise<State> {
  const n = init.w.length;
  const t = upload(e, init);
  // Momentum 0 (no Nesterov) runs the stateless entry, sgd_update_plain, with no velocity bound.
  const plain = !((opts.momentum ?? 0) > 0);
  const sv = stepBuffer(e);
  const d = await sgdUpdate(e, t.w, t.g, plain ? null : t.v, opts, sv);
  for (let step = 0; step < STEPS; step++) {
    e.write(t.g, gradAt(n, step)); // submits the previous step first
    e.writeBuffer(sv, packStepValues({ step, dropout: false, lr: lrAt(opts.lr, step) }));
    e.run(d);
  }
  const out = { w: await t.w.read(), g: init.g, m: init.m, v: await t.v.read() };
  d.dispose();
  sv.release();
  Object.values(t).forEach((x) => x.dispose());
  return out;
}

function runSgdRef(init: State, opts: SgdOptions): State {
  const s = { w: init.w.slice(), g: init.g, m: init.m, v: init.v.slice() };
  for (let step = 0; step < STEPS; step++) ref.sgdUpdate(s.w, gradAt(s.w.length, step), s.v, { ...opts, lr: lrAt(opts.lr, step) });
  return s;
}

async function runAdamGpu(e: Engine, init: State, opts: AdamOptions): Promise<State> {
  const n = init.w.length;
  const t = upload(e, init);
  const sv = stepBuffer(e);
  const d = await adamUpdate(e, t.w, t.g, t.m, t.v, opts, sv);
  for (let step = 1; step <= STEPS; step++) {
    e.write(t.g, gradAt(n, step));
    e.writeBuffer(sv, packStepValues({ step: step - 1, dropout: false, lr: lrAt(opts.lr, step), extra: adamStepValues(opts, step) }));
    e.run(d);
  }
  const out = { w: await t.w.read(), g: init.g, m: await t.m.read(), v: await t.v.read() };
  d.dispose();
  sv.release();
  Object.values(t).forEach((x) => x.dispose());
  return out;
}

function runAdamRef(init: State, opts: AdamOptions): State {
  const s = { w: init.w.slice(), g: init.g, m: init.m.slice(), v: init.v.slice() };
  for (let step = 1; step <= STEPS; step++) {
    ref.adamUpdate(s.w, gradAt(s.w.length, step), s.m, s.v, { ...opts, lr: lrAt(opts.lr, step), step });
  }
  return s;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const SGD_CASES: [string, SgdOptions][] = [
  ['plain', { lr: 0.1 }],
  ['plain + weight decay', { lr: 0.1, weightDecay: 0.05 }],
  ['momentum', { lr: 0.1, momentum: 0.9 }],
  ['nesterov', { lr: 0.1, momentum: 0.9, nesterov: true }],
  ['momentum + weight decay', { lr: 0.1, momentum: 0.8, weightDecay: 0.05 }],
  ['nesterov + weight decay', { lr: 0.05, momentum: 0.9, weightDecay: 0.01, nesterov: true }],
];

const ADAM_CASES: [string, AdamOptions][] = [
  ['adam', { lr: 0.01 }],
  ['adam + L2', { lr: 0.01, weightDecay: 0.1 }],
  ['adamw', { lr: 0.01, weightDecay: 0.1, decoupled: true }],
  ['adam, other betas and eps', { lr: 0.003, beta1: 0.8, beta2: 0.95, eps: 1e-6 }],
];

describe('sgd_update vs reference, 5 steps', () => {
  for (const [name, opts] of SGD_CASES) {
    for (const n of SIZES) {
      it(`${name}, n=${n}`, async () => {
        const e = await getEngine();
        const init = initialState(n, true);
        const got = await runSgdGpu(e, init, opts);
        const want = runSgdRef(init, opts);
        expectClose(got.w, want.w, {}, `${name} w`);
        // Plain SGD keeps no velocity: the GPU's v is the untouched initial buffer.
        if ((opts.momentum ?? 0) > 0) expectClose(got.v, want.v, {}, `${name} v`);
        else expect(got.v).toEqual(init.v);
      });
    }
  }
});

describe('adam_update vs reference, 5 steps', () => {
  for (const [name, opts] of ADAM_CASES) {
    for (const n of SIZES) {
      it(`${name}, n=${n}`, async () => {
        const e = await getEngine();
        const init = initialState(n, true);
        const got = await runAdamGpu(e, init, opts);
        const want = runAdamRef(init, opts);
        expectClose(got.w, want.w, {}, `${name} w`);
        expectClose(got.m, want.m, {}, `${name} m`);
        // v holds squares of gradients (down to ~1e-9); the absolute floor sits below them.
        expectClose(got.v, want.v, { atol: 1e-9, rtol: 1e-4 }, `${name} v`);
      });
    }
  }
});

describe('each flag changes the update on the GPU', () => {
  const n = 1000;
  const init = initialState(n, true);

  it('momentum and nesterov', async () => {
    const e = await getEngine();
    const plain = await runSgdGpu(e, init, { lr: 0.1 });
    const momentum = await runSgdGpu(e, init, { lr: 0.1, momentum: 0.9 });
    const nesterov = await runSgdGpu(e, init, { lr: 0.1, momentum: 0.9, nesterov: true });
    expect(maxAbsDiff(plain.w, momentum.w)).toBeGreaterThan(1e-2);
    expect(maxAbsDiff(momentum.w, nesterov.w)).toBeGreaterThan(1e-2);
  });

  it('weight decay (SGD) and decoupled (Adam vs AdamW)', async () => {
    const e = await getEngine();
    const noDecay = await runSgdGpu(e, init, { lr: 0.1, momentum: 0.9 });
    const decay = await runSgdGpu(e, init, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
    expect(maxAbsDiff(noDecay.w, decay.w)).toBeGreaterThan(1e-3);
    const adamL2 = await runAdamGpu(e, init, { lr: 0.01, weightDecay: 0.5 });
    const adamW = await runAdamGpu(e, init, { lr: 0.01, weightDecay: 0.5, decoupled: true });
    expect(maxAbsDiff(adamL2.w, adamW.w)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(adamL2.m, adamW.m)).toBeGreaterThan(1e-3);
  });
});

describe('params helpers', () => {
  it('adamStepValues computes the bias corrections of step t; adamParams holds the fixed values', () => {
    const opts = { beta1: 0.9, beta2: 0.999 };
    const [bc1, bc2] = adamStepValues(opts, 3);
    expect(bc1).toBeCloseTo(1 - 0.9 ** 3, 12);
    expect(bc2).toBeCloseTo(1 - 0.999 ** 3, 12);
    expect(adamParams(opts, 10)).toEqual({ n: 10, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: 0 });
    expect(() => adamStepValues(opts, 0)).toThrow(/adam\.adam_update.*step 0/);
  });

  it('sgdParams refuses Nesterov without momentum', () => {
    expect(() => sgdParams({ nesterov: true }, 4)).toThrow(/sgd\.sgd_update.*Nesterov/);
  });

  it("packStepValues lays out step, flags, lr and the rule's values; refuses what does not fit", () => {
    const v = new DataView(packStepValues({ step: 7, dropout: true, lr: 0.5, extra: [0.25, 0.125] }));
    expect([v.getUint32(0, true), v.getUint32(4, true), v.getFloat32(8, true), v.getFloat32(12, true), v.getFloat32(16, true)]).toEqual([7, 1, 0.5, 0.25, 0.125]);
    expect(new DataView(packStepValues({ step: 0, dropout: false, lr: 1 })).getUint32(4, true)).toBe(0);
    expect(() => packStepValues({ step: 0, dropout: false, lr: 1, extra: [1, 2, 3, 4, 5, 6] })).toThrow(/6 optimizer values given; the uniform has room for 5/);
    expect(() => packStepValues({ step: -1, dropout: false, lr: 1 })).toThrow(/step -1 is not a u32/);
    expect(() => packStepValues({ step: 0, dropout: false, lr: NaN })).toThrow(/learning rate NaN/);
  });
});

describe('shape checks', () => {
  it('rejects mismatched sizes, naming the kernel and both shapes', async () => {
    const e = await getEngine();
    const w = e.tensor([4, 3], undefined, 'w');
    const g = e.tensor([4, 3], undefined, 'g');
    const v = e.tensor([13], undefined, 'v');
    const m = e.tensor([2, 6], undefined, 'm');
    const sv = stepBuffer(e);
    await expect(sgdUpdate(e, w, g, v, { momentum: 0.9 }, sv)).rejects.toThrow(/sgd\.sgd_update.*"w" \[4, 3\].*"v" \[13\]/);
    await expect(adamUpdate(e, w, v, m, g, {}, sv)).rejects.toThrow(/adam\.adam_update.*"w" \[4, 3\].*"v" \[13\]/);
    for (const t of [w, g, v, m]) t.dispose();
    sv.release();
  });
});

describe('learning-rate schedules refitted to a new run length', () => {
  it('cosine ends at the new last step, step decay moves its thirds; nothing else changes', () => {
    const cosine = { kind: 'cosine' as const, warmupSteps: 5, totalSteps: 100, minLr: 0.01 };
    expect(refitSchedule(cosine, 150)).toEqual({ ...cosine, totalSteps: 150 });
    expect(refitSchedule(cosine, 100)).toBeNull();
    expect(refitSchedule({ kind: 'step', everySteps: 34, gamma: 0.5 }, 150)).toEqual({ kind: 'step', everySteps: 50, gamma: 0.5 });
    expect(refitSchedule({ kind: 'step', everySteps: 34, gamma: 0.5 }, 100)).toBeNull();
    expect(refitSchedule({ kind: 'constant' }, 150)).toBeNull();
    expect(refitSchedule(undefined, 150)).toBeNull();
    expect(scheduleFor('step', 0, 100)).toEqual({ kind: 'step', everySteps: 34, gamma: 0.1 });
  });

  it('an optimizer rescheduled mid-run takes the new rates from its next step', () => {
    const opt = new Optimizer({ kind: 'sgd', lr: 0.1, schedule: scheduleFor('cosine', 0, 100) });
    expect(opt.lrAt(100)).toBe(0); // the planned run is over: rate 0 from here
    opt.reschedule(refitSchedule(opt.config.schedule, 200)!);
    expect(opt.lrAt(100)).toBeCloseTo(0.05, 12); // halfway through the longer run
    expect(opt.config.schedule).toEqual({ kind: 'cosine', warmupSteps: 0, totalSteps: 200 }); // what a checkpoint saves
  });
});
