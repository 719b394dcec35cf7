// LayerNorm kernel speed at a small vision transformer's shape: ms per call of the forward, the
// input gradient and the parameter gradients on x [R, D] (default [2048, 192]: batch 64 x 32
// tokens, width 192), each layout, beside the bias gradient (a column sum of the same size) as a
// yardstick for the parameter gradients.
// On a software adapter the figures are CPU figures that move with the machine's load: the load
// average is printed before and after, and each figure is the median (and the fastest) of `reps`.
// Run: npx tsx bench/layernorm.ts [reps] [R] [D]
import '../src/gpu/node-host.ts'; // Dawn as the GPU in Node
import { loadavg } from 'node:os';
import { Engine, type Dispatch } from '../src/gpu/engine.ts';
import { layerNormBackward, layerNormForward, layerNormParamGrad, type LayerNormVariant } from '../src/kernels/layernorm.ts';
import { biasGrad } from '../src/kernels/matmul.ts';
import { reluForward } from '../src/kernels/activation.ts';
import { randomUniform } from '../src/util/random.ts';

const reps = Number(process.argv[2] ?? 7);
const R = Number(process.argv[3] ?? 2048);
const D = Number(process.argv[4] ?? 192);

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
const show = (what: string, t: { median: number; min: number }) => console.log(`  ${what.padEnd(34)} ${t.median.toFixed(3).padStart(8)} ms (${t.min.toFixed(3)})`);

const e = await Engine.create();
console.log(`adapter: ${e.adapter.name}${e.adapter.isSoftware ? ' (software)' : ''}; x [${R}, ${D}]; median (fastest) of ${reps} runs; load average ${load()}`);
// Calibration: a memory-bound elementwise kernel over as many floats as the problem, timed in the
// same run, so that figures taken under different machine loads can be compared as ratios.
{
  const n = R * D;
  const a = e.tensor([n], randomUniform(n, 9), 'a');
  const b = e.tensor([n], undefined, 'b');
  const d = await reluForward(e, a, b);
  show(`calibration: relu over ${n} floats`, await time(e, [d]));
  d.dispose();
  a.dispose();
  b.dispose();
}
const x = e.tensor([R, D], randomUniform(R * D, 1, -2, 3), 'x');
const dy = e.tensor([R, D], randomUniform(R * D, 2), 'dy');
const gamma = e.tensor([D], randomUniform(D, 3, 0.5, 1.5), 'gamma');
const beta = e.tensor([D], randomUniform(D, 4), 'beta');
const y = e.tensor([R, D], undefined, 'y');
const dx = e.tensor([R, D], undefined, 'dx');
const mean = e.tensor([R], undefined, 'mean');
const rstd = e.tensor([R], undefined, 'rstd');
const dgamma = e.tensor([D], undefined, 'dgamma');
const dbeta = e.tensor([D], undefined, 'dbeta');
for (const variant of ['row', 'workgroup'] as LayerNormVariant[]) {
  console.log(`layout "${variant}"`);
  const fwd = await layerNormForward(e, x, gamma, beta, y, mean, rstd, { eps: 1e-5, variant });
  const bwd = await layerNormBackward(e, x, dy, gamma, mean, rstd, dx, { variant });
  show('layer_norm_forward', await time(e, [fwd]));
  show('layer_norm_backward (dx)', await time(e, [bwd]));
  fwd.dispose();
  bwd.dispose();
}
const pg = await layerNormParamGrad(e, x, dy, mean, rstd, dgamma, dbeta);
show('layer_norm_param_grad (dgamma, dbeta)', await time(e, [pg]));
const bg = await biasGrad(e, dy, dbeta);
show('bias_grad (dbeta alone)', await time(e, [bg]));
for (const d of [pg, bg]) d.dispose();
for (const t of [x, dy, gamma, beta, y, dx, mean, rstd, dgamma, dbeta]) t.dispose();
console.log(`load average ${load()}`);
e.destroy();
