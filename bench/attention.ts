// Attention's softmax and attention forward on a small vision transformer's shapes: ms per call of
// the scaled softmax fused (scaledSoftmaxForward / scaledSoftmaxBackward) beside the unfused pair
// (scaleForward then softmaxForward; softmaxBackward then scaleForward) on scores
// [batch * heads, tokens, tokens] (default batch 32, 4 heads, 64 tokens: [128, 64, 64]), and the
// composed attention forward (batched Q K^T, fused scaled softmax, batched P V) for head widths
// 16 and 48 (widths 64 and 192 over 4 heads).
// On a software adapter the figures are CPU figures that move with the machine's load: the load
// average is printed before and after, and each figure is the median (and the fastest) of `reps`.
// Run: npx tsx bench/attention.ts [reps] [batch*heads] [tokens]
import '../src/gpu/node-host.ts'; // Dawn as the GPU in Node
import { loadavg } from 'node:os';
import { Engine, type Dispatch } from '../src/gpu/engine.ts';
import { scaleForward } from '../src/kernels/elementwise.ts';
import { batchedMatmul } from '../src/kernels/matmul.ts';
import { scaledSoftmaxBackward, scaledSoftmaxForward, softmaxBackward, softmaxForward } from '../src/kernels/softmax.ts';
import { reluForward } from '../src/kernels/activation.ts';
import { randomUniform } from '../src/util/random.ts';

const reps = Number(process.argv[2] ?? 9);
const G = Number(process.argv[3] ?? 128);
const T = Number(process.argv[4] ?? 64);

/** Median and fastest wall-clock ms per call over `reps` timed runs of `n` replays each (after one warm-up run). */
async function time(e: Engine, ds: Dispatch[], n = 5): Promise<{ median: number; min: number }> {
  e.run(...ds);
  await e.sync();
  const ms: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) e.run(...ds);
    await e.sync();
    ms.push((performance.now() - t0) / n);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)], min: ms[0] };
}

const load = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
const show = (what: string, t: { median: number; min: number }) => console.log(`  ${what.padEnd(44)} ${t.median.toFixed(2).padStart(8)} ms (${t.min.toFixed(2)})`);

const e = await Engine.create();
console.log(`adapter: ${e.adapter.name}${e.adapter.isSoftware ? ' (software)' : ''}; scores [${G}, ${T}, ${T}]; median (fastest) of ${reps} runs; load average ${load()}`);
// Calibration: a memory-bound elementwise kernel over as many floats as the problem, timed in the
// same run, so that figures taken under different machine loads can be compared as ratios.
{
  const n = G * T * T;
  const a = e.tensor([n], randomUniform(n, 9), 'a');
  const b = e.tensor([n], undefined, 'b');
  const d = await reluForward(e, a, b);
  show(`calibration: relu over ${n} floats`, await time(e, [d]));
  d.dispose();
  a.dispose();
  b.dispose();
}
const n = G * T * T;
const s = e.tensor([G, T, T], randomUniform(n, 1, -3, 3), 'scores');
const t = e.tensor([G, T, T], undefined, 'scaled');
const p = e.tensor([G, T, T], undefined, 'probs');
const dp = e.tensor([G, T, T], randomUniform(n, 2), 'dprobs');
const ds = e.tensor([G, T, T], undefined, 'dscores');
const dt = e.tensor([G, T, T], undefined, 'dscaled');
const scale = 0.25;
const own: Dispatch[] = [];
const make = async (d: Promise<Dispatch>) => {
  const x = await d;
  own.push(x);
  return x;
};
console.log('softmax of the scores');
show('unfused: scale_forward + softmax_forward', await time(e, [await make(scaleForward(e, s, t, scale)), await make(softmaxForward(e, t, p))]));
show('fused: scaled_softmax_forward', await time(e, [await make(scaledSoftmaxForward(e, s, p, scale))]));
show('unfused: softmax_backward + scale_forward', await time(e, [await make(softmaxBackward(e, p, dp, dt)), await make(scaleForward(e, dt, ds, scale))]));
show('fused: scaled_softmax_backward', await time(e, [await make(scaledSoftmaxBackward(e, p, dp, ds, scale))]));

for (const dh of [16, 48]) {
  console.log(`attention forward, head width ${dh}`);
  const q = e.tensor([G, T, dh], randomUniform(G * T * dh, 3), 'q');
  const k = e.tensor([G, T, dh], randomUniform(G * T * dh, 4), 'k');
  const v = e.tensor([G, T, dh], randomUniform(G * T * dh, 5), 'v');
  const o = e.tensor([G, T, dh], undefined, 'o');
  const qk = await make(batchedMatmul(e, q, k, s, { transB: true }));
  const sm = await make(scaledSoftmaxForward(e, s, p, 1 / Math.sqrt(dh)));
  const pv = await make(batchedMatmul(e, p, v, o));
  show('batched Q K^T', await time(e, [qk]));
  show('batched P V', await time(e, [pv]));
  show('composed: Q K^T, scaled softmax, P V', await time(e, [qk, sm, pv]));
  for (const x of [q, k, v, o]) x.dispose();
}
for (const d of own) d.dispose();
for (const x of [s, t, p, dp, ds, dt]) x.dispose();
console.log(`load average ${load()}`);
e.destroy();
