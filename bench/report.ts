// Presenting benchmark rows: the side-by-side table with "x faster" ratios, the targets we hold
// ourselves to, and where our training step's time goes.
import { TARGET_OF, type BenchRow, type Target, type Unit } from './common.ts';

/** Units where a larger value is better (the others are times or sizes: smaller is better). */
const HIGHER_IS_BETTER: Record<Unit, boolean | null> = { 'GFLOP/s': true, 'samples/s': true, ms: false, bytes: null };

function find(rows: BenchRow[], t: Target, benchmark: string): BenchRow | undefined {
  const { library, backend } = TARGET_OF[t];
  return rows.find((r) => r.library === library && r.backend === backend && r.benchmark === benchmark);
}

function fmt(v: number, unit: Unit): string {
  if (unit === 'bytes') return `${(v / 2 ** 20).toFixed(1)} MiB`;
  if (unit === 'samples/s') return v >= 100 ? v.toFixed(0) : v.toPrecision(3);
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toPrecision(3);
}

/** How many times faster ours is than `peer` (undefined when either is missing or the unit has no direction). */
export function speedup(ours: BenchRow | undefined, peer: BenchRow | undefined): number | undefined {
  if (ours?.value === undefined || peer?.value === undefined) return undefined;
  const dir = HIGHER_IS_BETTER[ours.unit];
  if (dir === null) return undefined;
  return dir ? ours.value / peer.value : peer.value / ours.value;
}

/**
 * Merge repeated rounds: per library and benchmark, the round with the best value (lowest time,
 * highest rate: background load only ever slows a run down), with every round's value in
 * `extra.rounds`. Error rows are kept only when no round measured that benchmark.
 */
export function bestOfRounds(perRound: BenchRow[][]): BenchRow[] {
  if (perRound.length === 1) return perRound[0];
  const key = (r: BenchRow) => `${r.library}/${r.backend}/${r.benchmark}`;
  const out = new Map<string, BenchRow>();
  const values = new Map<string, number[]>();
  for (const rows of perRound) {
    for (const r of rows) {
      const k = key(r);
      if (r.value !== undefined) values.set(k, [...(values.get(k) ?? []), r.value]);
      const best = out.get(k);
      const dir = HIGHER_IS_BETTER[r.unit];
      const better = !best || (best.value === undefined && r.value !== undefined) || (best.value !== undefined && r.value !== undefined && dir !== null && (dir ? r.value > best.value : r.value < best.value));
      if (better) out.set(k, r);
    }
  }
  return [...out.entries()].map(([k, r]) => (values.has(k) ? { ...r, extra: { ...r.extra, rounds: values.get(k) } } : r));
}

/** Print the table: one line per benchmark, one column per library, then ours-vs-each ratios. */
export function printTable(rows: BenchRow[], targets: readonly Target[]): void {
  const benchmarks = [...new Set(rows.filter((r) => !['child', 'setup', 'timeout'].includes(r.benchmark)).map((r) => r.benchmark))];
  const peers = targets.filter((t) => t !== 'ours');
  const showRatios = targets.includes('ours');
  const header = ['benchmark', 'unit', ...targets, ...(showRatios ? peers.map((p) => `vs ${p}`) : [])];
  const notes: string[] = [];
  // Footnote number per distinct message (a missing module fails every row the same way).
  const note = (msg: string) => {
    const i = notes.indexOf(msg);
    return i >= 0 ? i + 1 : notes.push(msg);
  };
  const body = benchmarks.map((b) => {
    const unit = rows.find((r) => r.benchmark === b)!.unit;
    const cells = targets.map((t) => {
      const r = find(rows, t, b);
      if (!r) return '-';
      if (r.error !== undefined) return `error[${note(`${t}: ${r.error}`)}]`;
      return fmt(r.value!, r.unit);
    });
    const ratios = showRatios
      ? peers.map((p) => {
          const s = speedup(find(rows, 'ours', b), find(rows, p, b));
          return s === undefined ? '' : `${s >= 10 ? s.toFixed(0) : s.toPrecision(2)}x`;
        })
      : [];
    return [b, unit, ...cells, ...ratios];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (c < 2 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of body) console.log(line(r));
  if (showRatios && peers.length) console.log('\n"vs <peer>": how many times faster ours is (above 1: ours is faster).');
  for (const r of rows.filter((x) => ['child', 'setup', 'timeout'].includes(x.benchmark))) note(`${r.library}/${r.backend} ${r.benchmark}: ${r.error}`);
  if (notes.length) {
    console.log('\nErrors:');
    notes.forEach((n, i) => console.log(`  [${i + 1}] ${n}`));
  }
}

export interface TargetCheck {
  target: string;
  want: string;
  measured: number | null;
  /** What `measured` counts: times faster than the peer, GFLOP/s, or MiB. */
  unit?: 'x' | 'GFLOP/s' | 'MiB';
  met: boolean | null;
}

/** The benchmark rows of the larger networks (bench/nets.ts), by the group that runs them. */
const NET_TARGETS = [
  { group: 'resnet20', what: 'ResNet-20' },
  { group: 'vit', what: 'ViT' },
] as const;

/**
 * The figures we hold ourselves to; `met` is null when a side was not measured. The MLP's and the
 * matmul's are always listed; a larger network's only when some library ran it.
 */
export function checkTargets(rows: BenchRow[]): TargetCheck[] {
  const ours = (b: string) => find(rows, 'ours', b);
  const ratio = (benchmark: string, peer: Target, min: number, strict: boolean, what: string): TargetCheck => {
    const s = speedup(ours(benchmark), find(rows, peer, benchmark));
    return { target: what, want: `${strict ? '>' : '>='} ${min}x`, measured: s ?? null, unit: 'x', met: s === undefined ? null : strict ? s > min : s >= min };
  };
  const mm = ours('matmul-1024')?.value;
  const checks: TargetCheck[] = [
    ratio('mlp-train-step', 'jax-js', 3, false, 'MLP step vs jax-js WebGPU'),
    ratio('mlp-train-step', 'tfjs-webgpu', 8, false, 'MLP step vs TF.js WebGPU'),
    ratio('mlp-train-step', 'tfjs-wasm', 1, true, 'MLP step vs TF.js wasm'),
    { target: 'matmul 1024² (ours)', want: '>= 4 GFLOP/s', measured: mm ?? null, unit: 'GFLOP/s', met: mm === undefined ? null : mm >= 4 },
  ];
  for (const { group, what } of NET_TARGETS) {
    const step = `${group}-train-step`;
    if (!rows.some((r) => r.benchmark === step)) continue;
    checks.push(ratio(step, 'jax-js', 2, false, `${what} step vs jax-js WebGPU`), ratio(step, 'tfjs-webgpu', 10, false, `${what} step vs TF.js WebGPU`));
  }
  // ResNet-20 at batch 128 must train on a device with WebGPU's default limits (the row errs otherwise).
  const mem = rows.find((r) => r.library === 'ours' && /^resnet20-b\d+-peak-gpu-bytes$/.test(r.benchmark));
  if (mem) {
    checks.push({
      target: `ResNet-20 batch ${/-b(\d+)-/.exec(mem.benchmark)![1]}, default limits`,
      want: 'trains',
      measured: mem.value === undefined ? null : mem.value / 2 ** 20,
      unit: 'MiB',
      met: mem.value !== undefined && mem.error === undefined,
    });
  }
  return checks;
}

export function printTargets(checks: TargetCheck[]): void {
  console.log('\nTargets:');
  const width = Math.max(28, ...checks.map((c) => c.target.length));
  for (const c of checks) {
    const unit = c.unit ?? (c.want.includes('GFLOP') ? 'GFLOP/s' : 'x');
    const m = c.measured === null ? 'not measured' : unit === 'x' ? `${c.measured.toPrecision(3)}x` : unit === 'MiB' ? `${c.measured.toFixed(0)} MiB peak` : `${c.measured.toPrecision(3)} GFLOP/s`;
    console.log(`  ${c.target.padEnd(width)} want ${c.want.padEnd(13)} got ${m.padEnd(14)} ${c.met === null ? '' : c.met ? 'met' : 'NOT met'}`);
  }
}

/**
 * Each library's first losses on every trained network (same weights, same batch): the first
 * checks the forward pass, the second the gradients and the update. With the largest difference
 * from ours at each step.
 */
export function printLosses(rows: BenchRow[], targets: readonly Target[]): void {
  const steps = [...new Set(rows.filter((r) => r.benchmark.endsWith('-train-step') && Array.isArray(r.extra?.losses)).map((r) => r.benchmark))];
  if (!steps.length) return;
  console.log('\nLosses of the first steps (same weights and batch in every library):');
  for (const b of steps) {
    const ours = find(rows, 'ours', b)?.extra?.losses as number[] | undefined;
    for (const t of targets) {
      const losses = find(rows, t, b)?.extra?.losses as number[] | undefined;
      if (!losses) continue;
      const diff = t !== 'ours' && ours ? losses.map((l, i) => (i < ours.length ? Math.abs(l - ours[i]) : NaN)).filter(Number.isFinite) : [];
      const d = diff.length ? `  (max |diff| from ours ${Math.max(...diff).toExponential(1)})` : '';
      console.log(`  ${b.replace(/-train-step$/, '').padEnd(10)} ${t.padEnd(12)} ${losses.map((l) => l.toFixed(4)).join(' ')}${d}`);
    }
  }
}

/** The memory row of ResNet-20 at a larger batch: peak bytes beside what lifetime reuse saved. */
export function printMemory(rows: BenchRow[]): void {
  const peak = rows.find((r) => r.library === 'ours' && /^resnet20-b\d+-peak-gpu-bytes$/.test(r.benchmark));
  if (!peak) return;
  const name = peak.benchmark.replace(/-peak-gpu-bytes$/, '');
  if (peak.value === undefined) {
    console.log(`\n${name}: ${peak.error}`);
    return;
  }
  const reuse = find(rows, 'ours', `${name}-activation-bytes`);
  const without = find(rows, 'ours', `${name}-activation-bytes-without-reuse`);
  const mib = (v: number | undefined) => (v === undefined ? '?' : `${(v / 2 ** 20).toFixed(1)} MiB`);
  const x = peak.extra as { batch: number; largestBufferBytes: number; deviceLimits: { maxStorageBufferBindingSize: number } };
  console.log(
    `\nOur ResNet-20 at batch ${x.batch} on a device with WebGPU's default limits: peak ${mib(peak.value)} held; ` +
      `activations, gradients and scratch ${mib(reuse?.value)} with lifetime reuse, ${mib(without?.value)} without ` +
      `(saved ${mib(reuse?.value !== undefined && without?.value !== undefined ? without.value - reuse.value : undefined)}); ` +
      `largest buffer ${mib(x.largestBufferBytes)} (binding limit ${mib(x.deviceLimits.maxStorageBufferBindingSize)}).`,
  );
}

/** Print the heaviest dispatches of our profiled training step. */
export function printProfile(rows: BenchRow[], top = 8): void {
  const step = find(rows, 'ours', 'mlp-train-step');
  const p = step?.extra?.profile as
    | { method: string; totalMs: number; byPhase?: { phase: string; ms: number }[]; byKernel: { kernel: string; ms: number; count: number; share: number }[]; byDispatch: { at: string; kernel: string; ms: number }[] }
    | undefined;
  if (!p) return;
  console.log(`\nOur MLP step, per kernel (each dispatch timed alone by ${p.method}; sum ${p.totalMs.toPrecision(3)} ms vs ${step!.value} ms per step):`);
  for (const k of p.byKernel.slice(0, top)) {
    console.log(`  ${k.kernel.padEnd(40)} ${k.ms.toFixed(2).padStart(9)} ms  ${(k.share * 100).toFixed(0).padStart(3)}%  (${k.count} dispatch${k.count > 1 ? 'es' : ''})`);
  }
  if (p.byPhase) console.log(`  by phase: ${p.byPhase.map((x) => `${x.phase} ${x.ms.toFixed(1)} ms`).join(', ')}`);
  const heaviest = [...p.byDispatch].sort((a, b) => b.ms - a.ms).slice(0, 5);
  console.log(`  heaviest dispatches: ${heaviest.map((d) => `${d.at} ${d.kernel} ${d.ms.toFixed(2)} ms`).join('; ')}`);
}
