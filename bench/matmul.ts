// Matmul throughput per variant: GFLOP/s (2·M·N·K flops per run, median of timed runs) for square
// sizes and the shapes of an MLP 784-512-256-10 training step at batch 128, forward and backward.
//
//   npx tsx bench/matmul.ts [--variants quad32x8,blocked] [--shapes square|mlp|all] [--runs 3]
//
// Each run is one dispatch followed by a wait for the queue (onSubmittedWorkDone), so the figure
// includes one submission's overhead, as a training step pays it. The machine's load average is
// printed with the table: on a shared CPU, other processes slow a software adapter down. On a
// software adapter each cell also shows, in brackets, flops per CPU-second of this process times
// the number of cores: what the run would reach with every core to itself.
import '../src/gpu/node-host.ts'; // Dawn as the GPU in Node
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Engine } from '../src/gpu/engine.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { chooseMatmulVariant, matmul, matmulVariantsFor } from '../src/kernels/matmul.ts';
import { randomUniform } from '../src/util/random.ts';

interface Case {
  name: string;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
}

const SQUARE: Case[] = [256, 512, 1024, 2048].map((n) => ({ name: `${n}²`, M: n, N: n, K: n }));
// Dense layers compute y = x·Wᵀ + b with W stored [out, in]; backward dx = dy·W, dW = dyᵀ·x.
const MLP: Case[] = [];
for (const [inp, out] of [
  [784, 512],
  [512, 256],
  [256, 10],
]) {
  MLP.push({ name: `fwd  [128x${inp}]·[${out}x${inp}]ᵀ`, M: 128, N: out, K: inp, transB: true });
}
for (const [inp, out] of [
  [784, 512],
  [512, 256],
  [256, 10],
]) {
  MLP.push({ name: `dX   [128x${out}]·[${out}x${inp}]`, M: 128, N: inp, K: out });
}
for (const [inp, out] of [
  [784, 512],
  [512, 256],
  [256, 10],
]) {
  MLP.push({ name: `dW   [128x${out}]ᵀ·[128x${inp}]`, M: out, N: inp, K: 128, transA: true });
}

const { values } = parseArgs({
  options: {
    variants: { type: 'string' },
    shapes: { type: 'string', default: 'all' },
    runs: { type: 'string', default: '3' },
    // A variant whose first run takes longer than this is reported from that run alone.
    'max-seconds': { type: 'string', default: '4' },
  },
});

const e = await Engine.create();
const runs = Number(values.runs);
const maxSeconds = Number(values['max-seconds']);
const variants = values.variants ? values.variants.split(',') : matmulVariantsFor(e);
const cases = values.shapes === 'square' ? SQUARE : values.shapes === 'mlp' ? MLP : [...SQUARE, ...MLP];

const cores = availableParallelism();

/** Wall seconds and CPU seconds (all threads of this process, SwiftShader's included) of one run. */
async function timeRun(run: () => void): Promise<[number, number]> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  run();
  await e.sync();
  const c = process.cpuUsage(c0);
  return [(performance.now() - t0) / 1000, (c.user + c.system) / 1e6];
}

// Last figure per variant, to skip runs that would take more than a minute.
const lastGflops = new Map<string, number>();

async function measure(c: Case, variant: string, a: Tensor, b: Tensor, out: Tensor): Promise<string> {
  const flops = 2 * c.M * c.N * c.K;
  const last = lastGflops.get(variant);
  if (last && flops / (last * 1e9) > 60) return 'skip';
  const d = await matmul(e, a, b, out, { transA: c.transA, transB: c.transB, variant });
  try {
    const first = await timeRun(() => e.run(d)); // also warms the pipeline up
    const times = first[0] > maxSeconds ? [first] : [];
    while (times.length < runs) times.push(await timeRun(() => e.run(d)));
    const median = (i: 0 | 1) => times.map((t) => t[i]).sort((x, y) => x - y)[times.length >> 1];
    const gflops = flops / median(0) / 1e9;
    lastGflops.set(variant, gflops);
    const cpu = e.adapter.isSoftware ? ` (${((flops / median(1) / 1e9) * cores).toFixed(2)})` : '';
    return `${gflops.toFixed(2)}${cpu}${times.length < runs ? '*' : ''}`;
  } finally {
    d.dispose();
  }
}

const load0 = loadavg()[0];
const header = ['shape', 'M', 'N', 'K', ...variants, 'tuned'];
const rows: string[][] = [];
for (const c of cases) {
  const a = e.tensor(c.transA ? [c.K, c.M] : [c.M, c.K], randomUniform(c.M * c.K, 1), 'a');
  const b = e.tensor(c.transB ? [c.N, c.K] : [c.K, c.N], randomUniform(c.K * c.N, 2), 'b');
  const out = e.tensor([c.M, c.N], undefined, 'c');
  const row = [c.name, String(c.M), String(c.N), String(c.K)];
  for (const v of variants) row.push(await measure(c, v, a, b, out));
  row.push(await chooseMatmulVariant(e, c.M, c.N, c.K, c));
  rows.push(row);
  process.stderr.write(`${row.join('  ')}\n`);
  for (const t of [a, b, out]) t.dispose();
}

const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => `| ${r.map((s, i) => (i === 0 ? s.padEnd(widths[i]) : s.padStart(widths[i]))).join(' | ')} |`;
console.log(`\nmatmul GFLOP/s, median of ${runs} runs (* = one run, over ${maxSeconds} s) on ${e.adapter.name} (${e.adapter.description})${e.adapter.isSoftware ? ' [software adapter]' : ''}`);
console.log('skip: not run, the previous size predicts over a minute per run');
console.log(`load average ${load0.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end, ${cores} cores`);
if (e.adapter.isSoftware) console.log('(bracketed: flops per CPU-second of this process x cores, the figure without other load)');
console.log('');
console.log(line(header));
console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
for (const r of rows) console.log(line(r));
e.destroy();
