// Convolution speed on a small MNIST CNN's shapes: ms per call of each conv kernel, forward and
// backward, for B=64, 1->16 channels 3x3 pad 1 on 28x28, then 16->32 3x3 pad 1 on 14x14.
// On a software adapter the figures are CPU figures that move with the machine's load: the load
// average is printed before and after, and each figure is the median (and the fastest) of `reps`.
// Run: npx tsx bench/conv.ts [reps]
import { loadavg } from 'node:os';
import { Engine, type Dispatch } from '../src/gpu/engine.ts';
import { reluForward } from '../src/kernels/activation.ts';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, conv2dOutputShape, type Conv2dOptions } from '../src/kernels/conv2d.ts';
import { randomUniform } from '../src/util/random.ts';

const reps = Number(process.argv[2] ?? 5);

interface Layer {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  opts: Conv2dOptions;
}

const LAYERS: Layer[] = [
  { name: 'conv1 1->16 3x3 pad 1, 28x28', x: [64, 1, 28, 28], w: [16, 1, 3, 3], opts: { padding: 1, relu: true } },
  { name: 'conv2 16->32 3x3 pad 1, 14x14', x: [64, 16, 14, 14], w: [32, 16, 3, 3], opts: { padding: 1, relu: true } },
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Median and fastest wall-clock ms per call over `reps` timed runs of `n` replays each (after one warm-up run). */
async function time(e: Engine, d: Dispatch, n = 3): Promise<{ median: number; min: number }> {
  e.run(d);
  await e.sync();
  const ms: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) e.run(d);
    await e.sync();
    ms.push((performance.now() - t0) / n);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)], min: ms[0] };
}

const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');

const e = await Engine.create();
console.log(`adapter: ${e.adapter.name}${e.adapter.isSoftware ? ' (software)' : ''}; median (fastest) of ${reps} runs; load average ${load()}`);
// Calibration: a memory-bound elementwise kernel over as many floats as conv1's output, timed in the
// same run, so that figures taken under different machine loads can be compared as ratios.
{
  const n = 64 * 16 * 28 * 28;
  const a = e.tensor([n], randomUniform(n, 9), 'a');
  const b = e.tensor([n], undefined, 'b');
  const d = await reluForward(e, a, b);
  const { median, min } = await time(e, d);
  console.log(`calibration: relu over ${n} floats ${median.toFixed(1)} ms (${min.toFixed(1)})`);
  d.dispose();
  a.dispose();
  b.dispose();
}
let total = 0;
for (const l of LAYERS) {
  const yShape = conv2dOutputShape(l.x, l.w, l.opts);
  const x = e.tensor(l.x, randomUniform(size(l.x), 1), 'x');
  const w = e.tensor(l.w, randomUniform(size(l.w), 2, -0.3, 0.3), 'w');
  const b = e.tensor([l.w[0]], randomUniform(l.w[0], 3), 'b');
  const y = e.tensor(yShape, undefined, 'y');
  const dy = e.tensor(yShape, randomUniform(size(yShape), 4), 'dy');
  const dx = e.tensor(l.x, undefined, 'dx');
  const dw = e.tensor(l.w, undefined, 'dw');
  const db = e.tensor([l.w[0]], undefined, 'db');
  const macs = size(yShape) * l.w[1] * l.w[2] * l.w[3];
  const runs: [string, Dispatch][] = [
    ['forward (bias+relu)', await conv2dForward(e, x, w, b, y, l.opts)],
    [l.x[1] === 1 ? 'backward input (*)' : 'backward input', await conv2dBackwardInput(e, dy, w, dx, l.opts)],
    ['backward weight+bias', await conv2dBackwardWeight(e, x, dy, dw, db, l.opts)],
  ];
  console.log(`${l.name}: x [${l.x.join(', ')}] -> y [${yShape.join(', ')}], ${(macs / 1e6).toFixed(1)} M multiply-adds per pass`);
  for (const [what, d] of runs) {
    const { median, min } = await time(e, d);
    total += median;
    const gflops = (2 * macs) / median / 1e6;
    console.log(`  ${what.padEnd(22)} ${median.toFixed(1).padStart(7)} ms (${min.toFixed(1)})   ${gflops.toFixed(2)} GFLOP/s`);
    d.dispose();
  }
  for (const t of [x, w, b, y, dy, dx, dw, db]) t.dispose();
}
console.log(`total of the medians, both layers forward + backward: ${total.toFixed(1)} ms; load average ${load()}`);
console.log('(*) a first layer needs no input gradient; with 1 input channel this kernel also wastes 7/8 of its 8-channel blocks.');
e.destroy();
