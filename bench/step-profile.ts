// One training step of a preset: its wall time (write the batch, record, submit, wait; the median of
// --steps after one untimed step) and samples/s, then where it spends its device time: every
// dispatch of the step timed on its own (bench/profile.ts), summed per kernel and per phase.
//
//   npx tsx bench/step-profile.ts --model cnn --batch 64 --input 1x28x28
//   npx tsx bench/step-profile.ts --model resnet --depth 8 --batch 32 --input 1x28x28
//   npx tsx bench/step-profile.ts --model vit --depth 2 --width 64 --batch 32 --input 1x28x28
import '../src/gpu/node-host.ts'; // Dawn as the GPU in Node
import { parseArgs } from 'node:util';
import { Engine } from '../src/gpu/engine.ts';
import { makePreset, presetNames } from '../src/nn/presets.ts';
import { Trainer } from '../src/train/trainer.ts';
import { GpuTimer } from './gpu-timer.ts';
import { profileStep } from './profile.ts';
import { FixedBatchSteps } from './recorded-steps.ts';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'cnn' },
    depth: { type: 'string' },
    width: { type: 'string' },
    batch: { type: 'string', default: '64' },
    input: { type: 'string', default: '1x28x28' },
    runs: { type: 'string', default: '3' },
    steps: { type: 'string', default: '6' },
  },
});
const shape = o.input.split('x').map(Number);
if (shape.length !== 3 || shape.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`--input takes CxHxW (e.g. 1x28x28), got "${o.input}"`);
if (!presetNames().includes(o.model)) throw new Error(`--model: unknown preset "${o.model}" (known: ${presetNames().join(', ')})`);
const batch = Number(o.batch);
const [c, h, w] = shape;

const e = await Engine.create({ log: () => {} });
const m = makePreset(o.model, 10, { depth: o.depth ? Number(o.depth) : undefined, width: o.width ? Number(o.width) : undefined });
await m.build(e, shape, { seed: 1 });
const t = await Trainer.create(m, { loss: 'softmax_cross_entropy', optimizer: { kind: 'adam', lr: 1e-3 } });
const step = await t.trainStep(batch, 100);
const x = new Float32Array(batch * c * h * w).map(() => Math.random());
const y = new Float32Array(batch).map(() => Math.floor(Math.random() * 10));
const rec = new FixedBatchSteps(e, step, x, y);
rec.record();
await e.sync();
const times: number[] = [];
for (let i = 0; i < Number(o.steps); i++) {
  const t0 = performance.now();
  rec.record();
  await e.sync();
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const med = times[Math.floor(times.length / 2)];
console.log(`${o.model} at batch ${batch} on ${o.input}: median step ${med.toFixed(0)} ms over ${times.length} steps, ${((batch * 1000) / med).toFixed(1)} samples/s`);
console.log(m.summary().split('\n').slice(-2).join('\n'));
const p = await profileStep(e, rec, new GpuTimer(e), Number(o.runs));
console.log(`${o.model} at batch ${batch} on ${o.input}: dispatches timed alone sum to ${p.totalMs.toFixed(1)} ms; by phase ${p.byPhase.map((b) => `${b.phase} ${b.ms.toFixed(1)}`).join(', ')}`);
for (const k of p.byKernel.slice(0, 14)) console.log(`  ${k.kernel.padEnd(50)} ${k.ms.toFixed(1).padStart(8)} ms  x${k.count}`);
console.log('heaviest dispatches:');
for (const d of [...p.dispatches].sort((a, b) => b.ms - a.ms).slice(0, 12)) console.log(`  ${d.phase}#${d.index} ${d.kernel} ${d.ms.toFixed(1)} ms, workgroups ${d.workgroups.join('x')}`);
e.destroy();
