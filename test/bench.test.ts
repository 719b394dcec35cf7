// The benchmark runner's behaviour: `bench/run.ts --quick --only ours --json FILE` runs our child
// process and writes a report whose schema the docs promise, with positive finite values. No
// timing assertions: speed is for the benchmark to report, not for tests to gate.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchRow } from '../bench/common.ts';
import { paramMismatch } from '../bench/nets-ours.ts';
import { initialWeights, nchwToNhwc, oihwToHwio, peerWeights, RESNET, resnetParams, VIT, vitParams } from '../bench/nets.ts';
import { bestOfRounds, checkTargets, speedup } from '../bench/report.ts';
import type { BenchReport } from '../bench/run.ts';
import { makePreset } from '../src/nn/presets.ts';
import { getEngine } from './helpers.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'bench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const row = (library: BenchRow['library'], backend: BenchRow['backend'], benchmark: string, value: number, unit: BenchRow['unit']): BenchRow => ({ library, backend, benchmark, value, unit });

describe('bench report', () => {
  it('says how many times faster ours is, by the direction of the unit', () => {
    expect(speedup(row('ours', 'webgpu', 'mlp-train-step', 50, 'ms'), row('tfjs', 'wasm', 'mlp-train-step', 150, 'ms'))).toBeCloseTo(3);
    expect(speedup(row('ours', 'webgpu', 'matmul-256', 4, 'GFLOP/s'), row('jax-js', 'webgpu', 'matmul-256', 2, 'GFLOP/s'))).toBeCloseTo(2);
    expect(speedup(row('ours', 'webgpu', 'peak-gpu-bytes', 4, 'bytes'), row('tfjs', 'webgpu', 'peak-gpu-bytes', 2, 'bytes'))).toBeUndefined();
    expect(speedup(row('ours', 'webgpu', 'mlp-train-step', 50, 'ms'), { library: 'tfjs', backend: 'wasm', benchmark: 'mlp-train-step', unit: 'ms', error: 'x' })).toBeUndefined();
  });

  it('keeps the best round of each benchmark, and an error only when no round measured it', () => {
    const merged = bestOfRounds([
      [row('ours', 'webgpu', 'mlp-train-step', 90, 'ms'), row('ours', 'webgpu', 'mlp-samples-per-s', 1400, 'samples/s'), { ...row('jax-js', 'webgpu', 'mlp-train-step', 0, 'ms'), value: undefined, error: 'crashed' }],
      [row('ours', 'webgpu', 'mlp-train-step', 60, 'ms'), row('ours', 'webgpu', 'mlp-samples-per-s', 2100, 'samples/s'), row('jax-js', 'webgpu', 'mlp-train-step', 300, 'ms')],
    ]);
    const get = (lib: string, b: string) => merged.find((r) => r.library === lib && r.benchmark === b)!;
    expect(get('ours', 'mlp-train-step')).toMatchObject({ value: 60, extra: { rounds: [90, 60] } });
    expect(get('ours', 'mlp-samples-per-s').value).toBe(2100);
    expect(get('jax-js', 'mlp-train-step')).toMatchObject({ value: 300 });
    expect(get('jax-js', 'mlp-train-step').error).toBeUndefined();
  });

  it('checks the targets, and says when a side was not measured', () => {
    const rows = [row('ours', 'webgpu', 'mlp-train-step', 40, 'ms'), row('jax-js', 'webgpu', 'mlp-train-step', 100, 'ms'), row('tfjs', 'wasm', 'mlp-train-step', 140, 'ms'), row('ours', 'webgpu', 'matmul-1024', 5, 'GFLOP/s')];
    const [jax, tfWebgpu, tfWasm, mm] = checkTargets(rows);
    expect(jax).toMatchObject({ met: false, measured: 2.5 });
    expect(tfWebgpu).toMatchObject({ met: null, measured: null });
    expect(tfWasm.met).toBe(true);
    expect(mm).toMatchObject({ met: true, measured: 5 });
  });
});

describe('the larger networks every library trains (bench/nets.ts)', () => {
  it('lists exactly the parameters of our presets, by name and shape', async () => {
    const e = await getEngine();
    for (const [spec, params] of [
      [RESNET, resnetParams()],
      [VIT, vitParams()],
    ] as const) {
      const model = makePreset(spec.preset, spec.classes, spec.options);
      await model.build(e, [...spec.inputShape], { seed: spec.seed });
      try {
        expect(paramMismatch(model.params(), params), spec.preset).toBeNull();
      } finally {
        model.dispose();
      }
    }
    expect(paramMismatch([{ name: 'stem.weight', value: { shape: [16, 3, 3, 3] } }], resnetParams().slice(0, 2))).toBe('bn.weight missing from ours');
    expect(paramMismatch([{ name: 'stem.weight', value: { shape: [16, 1, 3, 3] } }], resnetParams().slice(0, 1))).toBe('stem.weight [16, 1, 3, 3] vs [16, 3, 3, 3]');
  });

  it('moves each value to where the peers read it: NHWC images, [KH, KW, IC, OC] kernels, [in, out] Dense weights', () => {
    // x[n, c, h, w] = 1000n + 100c + 10h + w, shape [2, 3, 2, 4].
    const shape = [2, 3, 2, 4];
    const x = Float32Array.from({ length: 48 }, (_, i) => {
      const [n, c, h, w] = [Math.floor(i / 24), Math.floor(i / 8) % 3, Math.floor(i / 4) % 2, i % 4];
      return 1000 * n + 100 * c + 10 * h + w;
    });
    const nhwc = nchwToNhwc(x, shape);
    expect(nhwc[((1 * 2 + 1) * 4 + 3) * 3 + 2]).toBe(1213); // [n=1, h=1, w=3, c=2]
    // The same numbers read as a kernel [OC=2, IC=3, KH=2, KW=4]: value 1000o + 100i + 10y + x.
    const hwio = oihwToHwio(x, shape);
    expect(hwio[((1 * 4 + 2) * 3 + 0) * 2 + 1]).toBe(1012); // [y=1, x=2, i=0, o=1]
    const specs = resnetParams();
    const peer = peerWeights(specs, initialWeights(specs, RESNET.seed), 'HWIO');
    expect(peer.get('stem.weight')!.shape).toEqual([3, 3, 3, 16]);
    expect(peer.get('head.weight')!.shape).toEqual([64, 10]);
    expect(peer.get('bn.weight')!.data.every((v) => v === 1)).toBe(true);
    const ours = initialWeights(specs, RESNET.seed).get('head.weight')!; // [10, 64]
    expect(peer.get('head.weight')!.data[5 * 10 + 7]).toBe(ours[7 * 64 + 5]);
    expect(peerWeights(specs, initialWeights(specs, RESNET.seed), 'OIHW').get('stem.weight')!.shape).toEqual([16, 3, 3, 3]);
  });

  it('checks their speed targets and the memory row only when they ran', () => {
    const rows: BenchRow[] = [
      row('ours', 'webgpu', 'resnet20-train-step', 5000, 'ms'),
      row('jax-js', 'webgpu', 'resnet20-train-step', 60000, 'ms'),
      row('tfjs', 'webgpu', 'resnet20-train-step', 40000, 'ms'),
      { ...row('ours', 'webgpu', 'resnet20-b128-peak-gpu-bytes', 800 * 2 ** 20, 'bytes'), extra: { batch: 128 } },
    ];
    const checks = checkTargets(rows);
    expect(checks.map((c) => c.target)).not.toContain('ViT step vs jax-js WebGPU');
    expect(checks.find((c) => c.target === 'ResNet-20 step vs jax-js WebGPU')).toMatchObject({ measured: 12, met: true });
    expect(checks.find((c) => c.target === 'ResNet-20 step vs TF.js WebGPU')).toMatchObject({ measured: 8, met: false });
    expect(checks.find((c) => c.target === 'ResNet-20 batch 128, default limits')).toMatchObject({ measured: 800, met: true });
    const failed = checkTargets([{ library: 'ours', backend: 'webgpu', benchmark: 'resnet20-b128-peak-gpu-bytes', unit: 'bytes', error: 'out of memory' }]);
    expect(failed.find((c) => c.target === 'ResNet-20 batch 128, default limits')).toMatchObject({ measured: null, met: false });
  });
});

describe('npm run bench (quick, ours only)', () => {
  it('writes the JSON report with positive values for every benchmark', { timeout: 600_000 }, async () => {
    const file = join(dir, 'bench.json');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--only', 'ours', '--json', file], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      timeout: 590_000,
      maxBuffer: 16 << 20,
    });
    expect(stdout).toContain('mlp-train-step');
    const report = JSON.parse(readFileSync(file, 'utf8')) as BenchReport;

    expect(report.adapter).toMatchObject({ name: expect.any(String), description: expect.any(String), isSoftware: expect.any(Boolean) });
    expect(Number.isNaN(Date.parse(report.date))).toBe(false);
    expect(report.machine).toMatchObject({ cpus: expect.any(Number), node: expect.stringMatching(/^v\d+/) });
    expect(Array.isArray(report.results)).toBe(true);

    const errors = report.results.filter((r) => r.error !== undefined);
    expect(errors, `error rows: ${JSON.stringify(errors)}`).toEqual([]);
    for (const r of report.results) {
      expect(r.library).toBe('ours');
      expect(r.backend).toBe('webgpu');
      expect(['GFLOP/s', 'ms', 'samples/s', 'bytes']).toContain(r.unit);
      expect(typeof r.value === 'number' && Number.isFinite(r.value) && r.value > 0, `${r.benchmark} = ${r.value}`).toBe(true);
    }
    const names = report.results.map((r) => r.benchmark);
    for (const b of ['matmul-256', 'matmul-mlp-fwd1', 'matmul-mlp-bwd1-dw', 'mlp-train-step', 'mlp-samples-per-s', 'peak-gpu-bytes']) expect(names).toContain(b);

    const step = report.results.find((r) => r.benchmark === 'mlp-train-step')!;
    expect(step.extra).toMatchObject({ batch: 128, firstLoss: expect.any(Number), lastLoss: expect.any(Number) });
    // The step really trains: repeated steps on one batch lower its loss.
    expect(step.extra!.lastLoss as number).toBeLessThan(step.extra!.firstLoss as number);
  });
});

describe('npm run bench --groups vit (one step, ours only)', () => {
  it('trains the ViT from the shared weights and reports its step, throughput, peak bytes and losses', { timeout: 600_000 }, async () => {
    const file = join(dir, 'vit.json');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--only', 'ours', '--groups', 'vit', '--steps', '1', '--warmup', '1', '--json', file], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      timeout: 590_000,
      maxBuffer: 16 << 20,
    });
    expect(stdout).toContain('Losses of the first steps');
    const report = JSON.parse(readFileSync(file, 'utf8')) as BenchReport;
    const errors = report.results.filter((r) => r.error !== undefined);
    expect(errors, `error rows: ${JSON.stringify(errors)}`).toEqual([]);
    expect(report.results.map((r) => r.benchmark).sort()).toEqual(['vit-peak-gpu-bytes', 'vit-samples-per-s', 'vit-train-step']);
    for (const r of report.results) expect(typeof r.value === 'number' && Number.isFinite(r.value) && r.value > 0, `${r.benchmark} = ${r.value}`).toBe(true);
    const step = report.results.find((r) => r.benchmark === 'vit-train-step')!;
    const losses = step.extra!.losses as number[];
    expect(losses).toHaveLength(2);
    // Ten classes from small random weights: the first loss is near ln 10, and one step on the batch lowers it.
    expect(Math.abs(losses[0] - Math.log(10))).toBeLessThan(1);
    expect(losses[1]).toBeLessThan(losses[0]);
    expect(report.targets.map((t) => t.target)).toContain('ViT step vs jax-js WebGPU');
  });
});
