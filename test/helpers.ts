// Shared test helpers: one engine per test file, the CLI as a child process (also watched, to
// signal it mid-run), seeded inputs, allclose with a useful failure message, and central finite
// differences for checking reference gradients.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect } from 'vitest';
import { Engine } from '../src/gpu/engine.ts';
import { GPUBufferUsageFlags } from '../src/gpu/buffers.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { packStepValues } from '../src/kernels/step.ts';
import type { Epilogue } from '../src/nn/graph.ts';
import type { Layer } from '../src/nn/layer.ts';
import type { Model } from '../src/nn/model.ts';
import type { OpPlan } from '../src/nn/op.ts';
import { RefGraph } from '../src/reference/graph.ts';
import { Rng, randomUniform } from '../src/util/random.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', 'bin', 'wgtrain.js');

/** Run the CLI (bin/wgtrain.js) as a user would; the exit status and both streams, never a throw. */
export async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 300_000, maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/**
 * Run the CLI and watch its stderr as it comes: `watch` is called with all of stderr so far after
 * each chunk (to send signals at a chosen moment). Resolves with the exit status, or the signal
 * that ended it.
 */
export function cliWatched(args: string[], watch: (stderr: string, child: ChildProcess) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      watch(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

let enginePromise: Promise<Engine> | null = null;

/** The GPU engine for this test file (SwiftShader on machines without a GPU); destroyed after the file. */
export function getEngine(): Promise<Engine> {
  if (!enginePromise) {
    enginePromise = Engine.create({ log: () => {} });
    afterAll(async () => {
      (await enginePromise!).destroy();
      enginePromise = null;
    });
  }
  return enginePromise;
}

export interface Tolerance {
  atol?: number;
  rtol?: number;
}

/** Default tolerance for f32 GPU vs float64-ish reference on well-conditioned ops. */
export const DEFAULT_TOL = { atol: 1e-5, rtol: 1e-4 };

/**
 * Assert |actual - expected| <= atol + rtol * |expected| elementwise. On failure the message gives
 * the max difference, where, and the first mismatching pairs.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance = {}, what = 'value'): void {
  const atol = tol.atol ?? DEFAULT_TOL.atol;
  const rtol = tol.rtol ?? DEFAULT_TOL.rtol;
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let maxDiff = 0;
  let maxAt = -1;
  const bad: string[] = [];
  let nBad = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const d = Math.abs(a - e);
    const ok = d <= atol + rtol * Math.abs(e) && Number.isFinite(a) === Number.isFinite(e);
    if (!(d <= maxDiff) || Number.isNaN(d)) {
      maxDiff = Number.isNaN(d) ? Infinity : d;
      maxAt = i;
    }
    if (!ok) {
      nBad++;
      if (bad.length < 5) bad.push(`[${i}] got ${a} want ${e}`);
    }
  }
  if (nBad) {
    throw new Error(`${what}: ${nBad}/${expected.length} outside atol=${atol} rtol=${rtol}; max |diff| ${maxDiff} at ${maxAt}; ${bad.join(', ')}`);
  }
}

/**
 * Central finite differences of a scalar function of `x` (changed in place and restored),
 * compared with the analytic gradient. float64 throughout so that eps can be small.
 */
export function checkGradient(f: (x: Float64Array) => number, x: Float64Array, analytic: ArrayLike<number>, tol: Tolerance & { eps?: number } = {}, what = 'gradient'): void {
  const eps = tol.eps ?? 1e-6;
  const numeric = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    x[i] = v + eps;
    const fp = f(x);
    x[i] = v - eps;
    const fm = f(x);
    x[i] = v;
    numeric[i] = (fp - fm) / (2 * eps);
  }
  expectClose(analytic, numeric, { atol: tol.atol ?? 1e-6, rtol: tol.rtol ?? 1e-5 }, what);
}

/** Odd shapes for kernel tests: not multiples of any tile or workgroup size, and one over 256 everywhere. */
export const ODD_SHAPES_MNK: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [127, 33, 65],
  [257, 263, 269],
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * A layer built alone (no model) and planned against tensors the test owns, with seeded random x
 * and dy; every gradient is written (not added). `epilogue` fuses an activation as the model's
 * fusion pass would. The step values uniform holds step `step` with dropout on.
 */
export async function planAlone(e: Engine, layer: Layer, batch: number, inputShape: number[], seed: number, opts: { epilogue?: Epilogue; step?: number; withDx?: boolean } = {}) {
  layer.inputShape = [...inputShape];
  const outShape = layer.build(e, inputShape, new Rng(seed));
  layer.outputShape = outShape;
  const xData = randomUniform(batch * size(inputShape), seed + 1, -1, 2);
  const dyData = randomUniform(batch * size(outShape), seed + 2);
  const x = e.tensor([batch, ...inputShape], xData, 'x');
  const y = e.tensor([batch, ...outShape], undefined, 'y');
  const dy = e.tensor([batch, ...outShape], dyData, 'dy');
  const dx = e.tensor([batch, ...inputShape], undefined, 'dx');
  const scratch: Tensor[] = [];
  const stepBuffer = e.pool.acquire(32, GPUBufferUsageFlags.uniform, 'step values');
  const stepValues = { buffer: stepBuffer, byteLength: 32, label: 'step values' };
  e.writeBuffer(stepValues, packStepValues({ step: opts.step ?? 0, dropout: true, lr: 0 }));
  const plan: OpPlan = await layer.plan(e, {
    batch,
    path: layer.kind,
    inputs: [x],
    x,
    outputs: [y],
    y,
    dys: [dy],
    dy,
    dxs: [opts.withDx === false ? null : { tensor: dx, accumulate: false }],
    dx: opts.withDx === false ? null : { tensor: dx, accumulate: false },
    grad: (p) => ({ tensor: p.grad, accumulate: false }),
    scratch: (shape, label) => {
      const t = e.tensor(shape, undefined, label);
      scratch.push(t);
      return t;
    },
    epilogue: opts.epilogue ?? null,
    stepValues,
  });
  return {
    x,
    y,
    dy,
    dx,
    plan,
    stepValues,
    xData,
    dyData,
    dispose: () => {
      plan.dispose();
      layer.dispose();
      for (const t of [x, y, dy, dx, ...scratch]) t.dispose();
      e.releaseBuffer(stepBuffer);
    },
  };
}

/** The CPU reference of a built model: its graph, with the model's current parameters and buffers. */
export async function refOf(model: Model, opts: { float64?: boolean } = {}): Promise<RefGraph> {
  const params = new Map<string, Float32Array>();
  for (const p of model.params()) params.set(p.name, await p.value.read());
  const buffers = new Map<string, Float32Array>();
  for (const b of model.buffers()) buffers.set(b.name, await b.value.read());
  return new RefGraph(model.spec(), params, buffers, opts);
}
