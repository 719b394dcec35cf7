// Convolution speed on the shapes that matter: every convolution of ResNet-20 on 3x32x32 and of a
// ResNet-8 on 1x28x28 (16/32/64 channels, 3x3 pad 1, the stride-2 transitions and their 1x1
// stride-2 projections), and ViT patch embeddings (4x4 stride 4: 3->192 on 32x32, 1->64 on 28x28),
// at batch 32. For each shape and pass (forward with bias and ReLU, input gradient, weight gradient
// with the bias gradient), GFLOP/s of every algorithm (direct, im2col + matmul, implicit GEMM:
// the best of the tiles the conv tuner tries) beside the tuned matmul's GFLOP/s at the pass's
// equivalent GEMM shape, the product im2col runs for it:
//   forward   [B*OH*OW, IC*KH*KW] · [OC, IC*KH*KW]ᵀ     input gradient  [B*OH*OW, OC] · [OC, IC*KH*KW]
//   weight gradient [B*OH*OW, OC]ᵀ · [B*OH*OW, IC*KH*KW]
// Every figure counts the convolution's 2*B*OH*OW*OC*IC*KH*KW flops. Candidates of one shape and
// pass are timed interleaved, round after round; each keeps its fastest round (background load
// only slows a run down). Each timing runs the pass's dispatches back to back until at least
// 20 ms have passed, then waits for the queue.
//
//   npx tsx bench/conv.ts [--rounds 3] [--only resnet20,resnet8,vit] [--passes forward,backward_input,backward_weight] [--json FILE]
//
// Prints a table and, with --json, writes {adapter, load, rows} with rows like the main bench's
// (library ours, unit GFLOP/s, details in extra).
import '../src/gpu/node-host.ts'; // Dawn as the GPU in Node
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Engine, type Dispatch } from '../src/gpu/engine.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { buildConvPass, convAlgorithmCandidates, type ConvPass, type ConvPassPlan, type ConvSpec } from '../src/kernels/conv-algorithm.ts';
import { chooseMatmulVariant, matmul } from '../src/kernels/matmul.ts';
import { conv2dGeometry } from '../src/ops/conv.ts';
import { randomUniform } from '../src/util/random.ts';
import type { BenchRow } from './common.ts';

interface ConvCase {
  net: 'resnet20' | 'resnet8' | 'vit';
  name: string;
  /** [IC, H, W] -> OC with a k x k kernel. */
  ic: number;
  hw: number;
  oc: number;
  k: number;
  stride: number;
  padding: number;
}

const BATCH = 32;

const c3 = (net: ConvCase['net'], ic: number, oc: number, hw: number, stride = 1): ConvCase => ({ net, name: `${ic}->${oc} 3x3${stride > 1 ? ' s2' : ''} on ${hw}x${hw}`, ic, hw, oc, k: 3, stride, padding: 1 });
const proj = (net: ConvCase['net'], ic: number, oc: number, hw: number): ConvCase => ({ net, name: `${ic}->${oc} 1x1 s2 on ${hw}x${hw}`, ic, hw, oc, k: 1, stride: 2, padding: 0 });
const patch = (ic: number, oc: number, hw: number): ConvCase => ({ net: 'vit', name: `patch ${ic}->${oc} 4x4 s4 on ${hw}x${hw}`, ic, hw, oc, k: 4, stride: 4, padding: 0 });

// The distinct convolutions of each network (repeated blocks share a shape).
const CASES: ConvCase[] = [
  c3('resnet20', 3, 16, 32),
  c3('resnet20', 16, 16, 32),
  c3('resnet20', 16, 32, 32, 2),
  proj('resnet20', 16, 32, 32),
  c3('resnet20', 32, 32, 16),
  c3('resnet20', 32, 64, 16, 2),
  proj('resnet20', 32, 64, 16),
  c3('resnet20', 64, 64, 8),
  c3('resnet8', 1, 16, 28),
  c3('resnet8', 16, 16, 28),
  c3('resnet8', 16, 32, 28, 2),
  proj('resnet8', 16, 32, 28),
  c3('resnet8', 32, 32, 14),
  c3('resnet8', 32, 64, 14, 2),
  proj('resnet8', 32, 64, 14),
  c3('resnet8', 64, 64, 7),
  patch(3, 192, 32),
  patch(1, 64, 28),
];

const PASSES: ConvPass[] = ['forward', 'backward_input', 'backward_weight'];
const ALGORITHMS = ['direct', 'im2col', 'gemm'] as const;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' },
    passes: { type: 'string' },
    json: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const nets = values.only?.split(',');
const passes = (values.passes?.split(',') as ConvPass[] | undefined) ?? PASSES;
for (const p of passes) if (!PASSES.includes(p)) throw new Error(`--passes: unknown pass "${p}" (known: ${PASSES.join(', ')}).`);

const load = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
const load0 = load();
const e = await Engine.create({ log: () => {} });
console.log(`adapter: ${e.adapter.name} (${e.adapter.description})${e.adapter.isSoftware ? ' [software adapter: CPU figures]' : ''}; ${availableParallelism()} cores; load average ${load0}`);
console.log(`batch ${BATCH}; GFLOP/s = 2*B*OH*OW*OC*IC*KH*KW / time, fastest of ${rounds} interleaved rounds\n`);

/** Seconds per run of a dispatch sequence: back-to-back runs for >= 20 ms, then a wait for the queue. */
async function timeOnce(ds: readonly Dispatch[], calls: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) e.run(...ds);
  await e.sync();
  return (performance.now() - t0) / 1000 / calls;
}

async function timeInterleaved(cands: Map<string, readonly Dispatch[]>): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  const best = new Map<string, number>();
  for (const [name, ds] of cands) {
    const warm = await timeOnce(ds, 1); // compiles nothing (done at build), but warms caches
    calls.set(name, Math.max(1, Math.min(64, Math.ceil(0.02 / warm))));
    best.set(name, warm);
  }
  for (let r = 0; r < rounds; r++) {
    for (const [name, ds] of cands) best.set(name, Math.min(best.get(name)!, await timeOnce(ds, calls.get(name)!)));
  }
  return best;
}

const rows: BenchRow[] = [];
const table: string[][] = [];
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

for (const c of CASES.filter((x) => !nets || nets.includes(x.net))) {
  const xShape = [BATCH, c.ic, c.hw, c.hw] as const;
  const wShape = [c.oc, c.ic, c.k, c.k] as const;
  const opts = { stride: c.stride, padding: c.padding };
  const g = conv2dGeometry('bench', { shape: xShape, label: 'x' }, { shape: wShape, label: 'w' }, opts);
  const yShape = [BATCH, c.oc, g.outH, g.outW];
  const spec: ConvSpec = { input: xShape, weight: wShape, ...opts, bias: true, relu: true };
  const t = {
    x: e.tensor(xShape, randomUniform(size(xShape), 1), 'x'),
    w: e.tensor(wShape, randomUniform(size(wShape), 2, -0.3, 0.3), 'w'),
    bias: e.tensor([c.oc], randomUniform(c.oc, 3), 'bias'),
    y: e.tensor(yShape, undefined, 'y'),
    dy: e.tensor(yShape, randomUniform(size(yShape), 4), 'dy'),
    dx: e.tensor(xShape, undefined, 'dx'),
    dw: e.tensor(wShape, undefined, 'dw'),
    db: e.tensor([c.oc], undefined, 'db'),
  };
  const M = BATCH * g.outH * g.outW;
  const K = c.ic * c.k * c.k;
  const flops = 2 * M * c.oc * K;
  for (const pass of passes) {
    const plans = new Map<string, ConvPassPlan>();
    const cands = new Map<string, readonly Dispatch[]>();
    for (const v of convAlgorithmCandidates(e, spec, pass).candidates) {
      const plan = await buildConvPass(e, pass, v, t, { ...opts, relu: true });
      plans.set(v, plan);
      cands.set(v, plan.dispatches);
    }
    // The matmul im2col would run for this pass, on operands of its shapes.
    const [mm, nn, kk, transA, transB] = pass === 'forward' ? [M, c.oc, K, false, true] : pass === 'backward_input' ? [M, K, c.oc, false, false] : [c.oc, K, M, true, false];
    const ops: Tensor[] = [e.tensor(transA ? [kk, mm] : [mm, kk], randomUniform(mm * kk, 5), 'a'), e.tensor(transB ? [nn, kk] : [kk, nn], randomUniform(kk * nn, 6), 'b'), e.tensor([mm, nn], undefined, 'c')];
    const variant = await chooseMatmulVariant(e, mm, nn, kk, { transA, transB });
    const md = await matmul(e, ops[0], ops[1], ops[2], { transA, transB, variant });
    cands.set('matmul', [md]);
    const seconds = await timeInterleaved(cands);
    const rate = (s: number | undefined) => (s === undefined ? undefined : flops / s / 1e9);
    const gemmTiles = [...seconds.keys()].filter((k) => k.startsWith('gemm'));
    const bestGemm = gemmTiles.sort((a, b) => seconds.get(a)! - seconds.get(b)!)[0];
    const figure: Record<string, number | undefined> = {
      direct: rate(seconds.get('direct')),
      im2col: rate(seconds.get('im2col')),
      gemm: rate(bestGemm ? seconds.get(bestGemm) : undefined),
      matmul: rate(seconds.get('matmul')),
    };
    const id = `conv-${c.net}-${c.ic}to${c.oc}-k${c.k}s${c.stride}-${c.hw}-${pass}`;
    const extra = { net: c.net, shape: c.name, pass, batch: BATCH, gemmShape: { M: mm, N: nn, K: kk, transA, transB }, flops };
    for (const alg of ALGORITHMS) {
      const v = figure[alg];
      if (v === undefined) continue;
      const key = alg === 'gemm' ? bestGemm : alg;
      rows.push({ library: 'ours', backend: 'webgpu', benchmark: `${id}-${alg}`, value: v, unit: 'GFLOP/s', extra: { ...extra, algorithm: alg, variant: key, ms: seconds.get(key)! * 1e3, scratchBytes: plans.get(key)!.scratchBytes } });
    }
    rows.push({ library: 'ours', backend: 'webgpu', benchmark: `${id}-matmul`, value: figure.matmul!, unit: 'GFLOP/s', extra: { ...extra, algorithm: 'matmul', variant, ms: seconds.get('matmul')! * 1e3 } });
    const f = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(2));
    const ratio = figure.gemm !== undefined ? `${Math.round((100 * figure.gemm) / figure.matmul!)}%` : '-';
    const line = [c.net, c.name, pass, f(figure.direct), f(figure.im2col), `${f(figure.gemm)}${bestGemm ? ` (${bestGemm.slice(5)})` : ''}`, `${f(figure.matmul)} (${variant})`, ratio, `${mm}x${nn}x${kk}`];
    table.push(line);
    console.error(line.join('  '));
    for (const p of plans.values()) p.dispose();
    md.dispose();
    for (const x of ops) x.dispose();
  }
  for (const x of Object.values(t)) x.dispose();
}

const load1 = load();
const header = ['net', 'conv', 'pass', 'direct', 'im2col', 'gemm (tile)', 'matmul (variant)', 'gemm/matmul', 'GEMM M x N x K'];
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
const line = (r: string[]) => `| ${r.map((s, i) => (i < 3 || i === 8 ? s.padEnd(widths[i]) : s.padStart(widths[i]))).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w, i) => (i < 3 || i === 8 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
for (const r of table) console.log(line(r));
console.log(`\nload average ${load0} at start, ${load1} at end`);
if (values.json) {
  writeFileSync(values.json, JSON.stringify({ adapter: e.adapter, load: { start: load0, end: load1 }, rows }, null, 1));
  console.log(`rows written to ${values.json}`);
}
e.destroy();
