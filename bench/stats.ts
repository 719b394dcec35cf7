// What per-layer statistics cost a training step: the MLP and the small CNN of the main bench
// (bench/workloads.ts), trained with statistics every N steps (default 25) and without, in one run.
//
//   npx tsx bench/stats.ts [--only mlp,cnn] [--rounds 3] [--steps 50] [--every 25] [--json FILE]
//
// Each round times `--steps` steps (a multiple of --every, so every run holds the same number of
// statistics steps) paced as fit() paces them (a wait for the queue every 8 steps, losses read
// every 25), off
// then on or on then off, alternating between rounds; the readbacks still in flight are waited
// for inside the timed run. Each way keeps its best round (load from other work only ever slows a
// round down; the main bench's --rounds does the same), and the overhead is best on against best
// off; the medians are printed too. Beside it, the cost of one statistics step alone: single
// steps, each submitted and waited for, with statistics on every step and without, in turns (best
// of each); and the device time of a statistics step's added dispatches against the step's own
// (bench/gpu-timer.ts: timestamp queries where the adapter has them; each a pass of its own, the
// two timed together, best of 7), with what each predicts for one step in N.
import '../src/gpu/node-host.ts'; // Dawn as the GPU in Node
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Engine } from '../src/gpu/engine.ts';
import type { Model } from '../src/nn/model.ts';
import type { StatsRecorder } from '../src/train/stats.ts';
import type { TrainStep } from '../src/train/step.ts';
import { GpuTimer } from './gpu-timer.ts';
import { FixedBatchSteps } from './recorded-steps.ts';
import { median, sig } from './timing.ts';
import { CNN, cnnBatch, MLP, mlpBatch, mlpWeights, transpose } from './workloads.ts';

interface Options {
  only: string[];
  rounds: number;
  steps: number;
  every: number;
  json?: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: { only: { type: 'string', default: 'mlp,cnn' }, rounds: { type: 'string', default: '3' }, steps: { type: 'string', default: '50' }, every: { type: 'string', default: '25' }, json: { type: 'string' } },
  });
  const int = (k: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${k} must be a whole number >= 1, got ${v}`);
    return n;
  };
  const o = { only: values.only!.split(','), rounds: int('rounds', values.rounds!), steps: int('steps', values.steps!), every: int('every', values.every!), json: values.json };
  if (o.steps % o.every) throw new Error(`--steps ${o.steps} must be a multiple of --every ${o.every}, so that every timed run holds the same number of statistics steps.`);
  for (const m of o.only) if (m !== 'mlp' && m !== 'cnn') throw new Error(`--only takes mlp and cnn, got ${m}`);
  return o;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

/** The bench's MLP (784-512-256-10, ReLU, batch 128, SGD) from the main bench's weights. */
async function mlp(e: Engine): Promise<{ model: Model; batch: number; x: Float32Array; y: Float32Array }> {
  const { Sequential } = await import('../src/nn/sequential.ts');
  const { Dense } = await import('../src/nn/dense.ts');
  const { ReLU } = await import('../src/nn/activations.ts');
  const L = MLP.layers;
  const model = new Sequential([new Dense(L[1]), ReLU(), new Dense(L[2]), ReLU(), new Dense(L[3])]);
  await model.build(e, [L[0]], { seed: MLP.seed });
  const { w } = mlpWeights();
  model.layers.filter((l): l is InstanceType<typeof Dense> => l instanceof Dense).forEach((l, i) => e.write(l.weight!.value, transpose(w[i], L[i], L[i + 1])));
  const { x, labels } = mlpBatch();
  return { model, batch: MLP.batch, x, y: Float32Array.from(labels) };
}

/** The bench's CNN (the 'cnn' preset, batch 64). */
async function cnn(e: Engine): Promise<{ model: Model; batch: number; x: Float32Array; y: Float32Array }> {
  const { makePreset } = await import('../src/nn/presets.ts');
  const model = makePreset(CNN.preset, CNN.classes);
  await model.build(e, CNN.inputShape, { seed: CNN.seed });
  const { x, labels } = cnnBatch();
  return { model, batch: CNN.batch, x, y: Float32Array.from(labels) };
}

/** `n` steps as fit() records them: a wait for the queue (Engine.sync) every 8 steps, losses read every window. */
async function fitPaced(e: Engine, rec: FixedBatchSteps, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    rec.record();
    if (i % 8 === 0) await e.sync();
    if (rec.step.pending >= rec.step.window) await rec.readLosses();
  }
  await e.sync();
}

async function clock(f: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/**
 * Fastest ms of single steps, each submitted and waited for: `n` without statistics and `n` with
 * them on every step, taken in turns (so that a change of load affects both alike).
 */
async function singleSteps(e: Engine, rec: FixedBatchSteps, stats: StatsRecorder, n: number): Promise<{ off: number; on: number }> {
  const off: number[] = [];
  const on: number[] = [];
  for (let i = 0; i < 2 * n; i++) {
    rec.options = i % 2 ? { stats } : {};
    const ms = await clock(async () => {
      rec.record();
      await e.sync();
    });
    (i % 2 ? on : off).push(ms);
    await rec.readLosses();
    await stats.drain();
  }
  return { off: Math.min(...off), on: Math.min(...on) };
}

interface Row {
  model: string;
  offMs: number[];
  onMs: number[];
  overhead: number[];
  singleOffMs: number;
  singleStatsMs: number;
  statsDispatches: number;
  stepDispatches: number;
  /** Device ms of the step's own dispatches and of the statistics' (best of the runs). */
  deviceStepMs: number;
  deviceStatsMs: number;
  timing: string;
  snapshots: number;
}

async function measure(name: 'mlp' | 'cnn', o: Options): Promise<Row> {
  const e = await Engine.create({ log: () => {} });
  try {
    const { model, batch, x, y } = name === 'mlp' ? await mlp(e) : await cnn(e);
    const { Trainer } = await import('../src/train/trainer.ts');
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: name === 'mlp' ? MLP.lr : CNN.lr, momentum: 0 } });
    const step: TrainStep = await trainer.trainStep(batch, 25);
    const rec = new FixedBatchSteps(e, step, x, y);
    let snapshots = 0;
    const watched = await step.statsRecorder({ every: o.every, onSnapshot: () => void snapshots++ });
    const everyStep = await step.statsRecorder({ every: 1, onSnapshot: () => {} });
    const timed = async (stats: StatsRecorder | null) => {
      rec.options = stats ? { stats } : {};
      const ms = await clock(async () => {
        await fitPaced(e, rec, o.steps);
        await stats?.drain();
      });
      await rec.readLosses();
      return ms / o.steps;
    };
    // Warm up both ways (pipelines, the tuner's choices, the staging ring).
    rec.options = {};
    await fitPaced(e, rec, 3);
    rec.options = { stats: everyStep };
    await fitPaced(e, rec, 2);
    await everyStep.drain();
    await rec.readLosses();

    const row: Row = { model: name, offMs: [], onMs: [], overhead: [], singleOffMs: 0, singleStatsMs: 0, statsDispatches: 0, stepDispatches: 0, deviceStepMs: 0, deviceStatsMs: 0, timing: '', snapshots: 0 };
    for (let r = 0; r < o.rounds; r++) {
      const [a, b] = r % 2 ? [watched, null] : [null, watched];
      const ta = await timed(a);
      const tb = await timed(b);
      const [off, on] = a ? [tb, ta] : [ta, tb];
      row.offMs.push(off);
      row.onMs.push(on);
      row.overhead.push(on / off - 1);
      log(`${name} round ${r + 1}/${o.rounds}: off ${off.toFixed(1)} ms/step, stats every ${o.every}: ${on.toFixed(1)} ms/step (${(100 * (on / off - 1)).toFixed(1)}%)`);
    }
    row.snapshots = snapshots;
    const single = await singleSteps(e, rec, everyStep, name === 'mlp' ? 15 : 6);
    row.singleOffMs = single.off;
    row.singleStatsMs = single.on;
    trainer.state.step = 0; // due: the dispatches of a statistics step
    rec.options = { stats: everyStep };
    const ds = rec.dispatches();
    const own = ds.filter((d) => d.phase !== 'stats').map((d) => d.dispatch);
    const added = ds.filter((d) => d.phase === 'stats').map((d) => d.dispatch);
    row.statsDispatches = added.length;
    row.stepDispatches = own.length;
    const timer = new GpuTimer(e);
    const device: number[][] = [];
    for (let i = 0; i < 7; i++) device.push(await timer.time([own, added]));
    row.deviceStepMs = Math.min(...device.map((t) => t[0]));
    row.deviceStatsMs = Math.min(...device.map((t) => t[1]));
    row.timing = timer.method;
    log(
      `${name} single steps: ${row.singleOffMs.toFixed(1)} ms without statistics, ${row.singleStatsMs.toFixed(1)} ms with (${row.statsDispatches} dispatches added to ${row.stepDispatches}); device time ${row.deviceStepMs.toFixed(1)} ms for the step's own, ${row.deviceStatsMs.toFixed(1)} ms for the statistics (${timer.method})`,
    );
    watched.dispose();
    everyStep.dispose();
    trainer.dispose();
    model.dispose();
    return row;
  } finally {
    e.destroy();
  }
}

const o = options();
const loadStart = loadavg();
const rows: Row[] = [];
for (const m of o.only) rows.push(await measure(m as 'mlp' | 'cnn', o));
const loadEnd = loadavg();

const pct = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}%`;
console.log(`\nstatistics every ${o.every} steps vs none: ${o.rounds} rounds of ${o.steps} steps each way; load average ${loadStart[0].toFixed(2)} -> ${loadEnd[0].toFixed(2)} on ${availableParallelism()} cores`);
console.log(`| model | off (ms/step) | stats every ${o.every} (ms/step) | overhead | medians: off / on | one step alone: off / with stats (ms) | predicted | device: step / stats (ms) | predicted |`);
console.log('| --- | --: | --: | --: | --: | --: | --: | --: | --: |');
for (const r of rows) {
  const [off, on] = [Math.min(...r.offMs), Math.min(...r.onMs)];
  const extra = r.singleStatsMs - r.singleOffMs;
  console.log(
    `| ${r.model} | ${off.toFixed(1)} | ${on.toFixed(1)} | ${pct(on / off - 1)} | ${median(r.offMs).toFixed(1)} / ${median(r.onMs).toFixed(1)} | ` +
      `${r.singleOffMs.toFixed(1)} / ${r.singleStatsMs.toFixed(1)} | ${pct(extra / o.every / r.singleOffMs)} | ${r.deviceStepMs.toFixed(1)} / ${r.deviceStatsMs.toFixed(1)} | ${pct(r.deviceStatsMs / o.every / r.deviceStepMs)} |`,
  );
}
if (o.json) {
  const e = await Engine.create({ log: () => {} });
  const adapter = { ...e.adapter };
  e.destroy();
  const out = rows.map((r) => ({
    ...r,
    offMs: r.offMs.map((v) => sig(v)),
    onMs: r.onMs.map((v) => sig(v)),
    overhead: r.overhead.map((v) => sig(v, 3)),
    bestOverhead: sig(Math.min(...r.onMs) / Math.min(...r.offMs) - 1, 3),
    singleOffMs: sig(r.singleOffMs),
    singleStatsMs: sig(r.singleStatsMs),
    deviceStepMs: sig(r.deviceStepMs),
    deviceStatsMs: sig(r.deviceStatsMs),
  }));
  writeFileSync(o.json, `${JSON.stringify({ adapter, every: o.every, steps: o.steps, rounds: o.rounds, load: { start: loadStart, end: loadEnd }, rows: out }, null, 2)}\n`);
}
