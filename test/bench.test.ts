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
import { bestOfRounds, checkTargets, speedup } from '../bench/report.ts';
import type { BenchReport } from '../bench/run.ts';

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
    const rows = [
      row('ours', 'webgpu', 'mlp-train-step', 40, 'ms'),
      row('jax-js', 'webgpu', 'mlp-train-step', 100, 'ms'),
      row('tfjs', 'wasm', 'mlp-train-step', 140, 'ms'),
      row('ours', 'webgpu', 'matmul-1024', 5, 'GFLOP/s'),
    ];
    const [jax, tfWebgpu, tfWasm, mm] = checkTargets(rows);
    expect(jax).toMatchObject({ met: false, measured: 2.5 });
    expect(tfWebgpu).toMatchObject({ met: null, measured: null });
    expect(tfWasm.met).toBe(true);
    expect(mm).toMatchObject({ met: true, measured: 5 });
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
