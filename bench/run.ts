// `npm run bench`: our engine beside TF.js (WebGPU, wasm) and jax-js (WebGPU), in one run. Each
// library runs in its own child process, one after another (sharing a process, or the CPU, skews
// the figures); each child prints one JSON line of rows. This prints the table with how many times
// faster we are than each peer, checks the targets, and writes everything as JSON with --json.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { BENCH_GROUPS, TARGET_OF, TARGETS, type AdapterInfo, type BenchRow, type ChildResult, type Target } from './common.ts';
import { bestOfRounds, checkTargets, printLosses, printMemory, printProfile, printTable, printTargets } from './report.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Groups that train (timed before the matmuls, repeated by --rounds), and those that train the larger networks. */
const TRAINING: readonly string[] = ['mlp', 'resnet', 'vit'];
const NETS: readonly string[] = ['resnet', 'vit'];

/** The child script and arguments for each library. */
const CHILDREN: Record<Target, { script: string; args: string[] }> = {
  ours: { script: 'bench/ours.ts', args: [] },
  'tfjs-webgpu': { script: 'bench/tfjs.ts', args: ['--backend', 'webgpu'] },
  'tfjs-wasm': { script: 'bench/tfjs.ts', args: ['--backend', 'wasm'] },
  'jax-js': { script: 'bench/jax.ts', args: [] },
};

/** The whole report, as written by --json. */
export interface BenchReport {
  adapter: AdapterInfo | null;
  date: string;
  machine: { cpus: number; cpuModel: string; node: string; platform: string; loadavgStart: number[]; loadavgEnd: number[] };
  options: Record<string, unknown>;
  results: BenchRow[];
  targets: ReturnType<typeof checkTargets>;
}

interface CliOptions {
  quick?: boolean;
  only: string;
  sizes?: string;
  steps?: string;
  warmup?: string;
  groups?: string;
  json?: string;
  timeout?: string;
  variants?: boolean;
  verbose?: boolean;
  rounds?: string;
}

function parseCli(argv: string[]): CliOptions {
  return new Command('bench')
    .description('Our engine beside TF.js (WebGPU, wasm) and jax-js (WebGPU): matmul GFLOP/s and training steps (MLP, CNN, ResNet-20, ViT).')
    .option('--quick', 'fewer sizes, steps and repetitions (for tests)')
    .option('--only <list>', `libraries to run, comma-separated (${TARGETS.join(', ')})`, TARGETS.join(','))
    .option('--sizes <list>', 'square matmul sizes, e.g. 256,512 (default 256,512,1024,2048; quick: 256)')
    .option('--steps <n>', 'timed training steps (default 30; quick: 3)')
    .option('--warmup <n>', 'untimed warm-up training steps (default 5; quick: 1)')
    .option('--groups <list>', `benchmark groups (${BENCH_GROUPS.join(', ')}; default mlp,matmul)`)
    .option('--json <file>', 'write the results as JSON')
    .option('--timeout <s>', 'seconds each library may take per group (default 900, resnet and vit 3600; quick: 300, resnet and vit 1200)')
    .option('--variants', 'ours: also time every matmul variant')
    .option('--rounds <n>', "run the training phases (mlp, resnet, vit) n times, alternating the order of the libraries, and keep each one's best round (for busy machines)", '1')
    .option('--verbose', "show the children's full stderr")
    .parse(argv, { from: 'user' })
    .opts<CliOptions>();
}

/** The child running now: stopped with the orchestrator (Ctrl-C, or a SIGTERM from a test runner). */
let current: ReturnType<typeof spawn> | null = null;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    current?.kill('SIGKILL');
    process.exit(130);
  });
}

/** Run one library's child; a crash, a timeout or a missing result becomes an error row. */
function runChild(target: Target, args: string[], timeoutS: number, verbose: boolean): Promise<ChildResult> {
  const { library, backend } = TARGET_OF[target];
  const child = CHILDREN[target];
  return new Promise((done) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child.script, ...child.args, ...args], {
      cwd: root,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    current = p;
    let stdout = '';
    const stderrTail: string[] = [];
    let partial = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => {
      const lines = (partial + b.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        stderrTail.push(line);
        if (stderrTail.length > 20) stderrTail.shift();
        // Children log progress as "<library> <benchmark>: ..."; driver noise is shown only with --verbose.
        if (verbose || /^(ours|tfjs|jax-js)\b/.test(line)) process.stderr.write(`  [${target}] ${line}\n`);
      }
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 10_000).unref();
    }, timeoutS * 1000);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      current = null;
      const line = stdout
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      let result: ChildResult | null = null;
      try {
        result = line ? (JSON.parse(line) as ChildResult) : null;
      } catch {
        result = null;
      }
      if (result && Array.isArray(result.rows)) {
        if (timedOut) result.rows.push({ library, backend, benchmark: 'timeout', unit: 'ms', error: `stopped after ${timeoutS} s (--timeout)` });
        done(result);
        return;
      }
      const why = timedOut ? `killed after ${timeoutS} s (--timeout)` : `exited with ${signal ?? `code ${code}`} and no result`;
      const tail = stderrTail
        .filter((l) => l.trim())
        .slice(-3)
        .join(' | ');
      done({ rows: [{ library, backend, benchmark: 'child', unit: 'ms', error: `${target}: ${why}${tail ? `: ${tail}` : ''}` }] });
    });
  });
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  const only = cli.only
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const t of only) if (!TARGETS.includes(t as Target)) throw new Error(`--only: unknown library "${t}" (known: ${TARGETS.join(', ')}).`);
  const targets = TARGETS.filter((t) => only.includes(t));
  const args: string[] = [];
  if (cli.quick) args.push('--quick');
  for (const [flag, v] of [
    ['--sizes', cli.sizes],
    ['--steps', cli.steps],
    ['--warmup', cli.warmup],
  ] as const) {
    if (v !== undefined) args.push(flag, v);
  }
  if (cli.variants) args.push('--variants');
  // A peer's ResNet-20 or ViT step can take minutes on a software adapter: those groups get longer.
  const timeoutOf = (g: string) => Number(cli.timeout ?? (NETS.includes(g) ? (cli.quick ? 1200 : 3600) : cli.quick ? 300 : 900));

  const loadavgStart = os.loadavg();
  if (loadavgStart[0] > os.cpus().length * 0.5) {
    process.stderr.write(`bench: the machine is busy (load average ${loadavgStart[0].toFixed(1)} on ${os.cpus().length} CPUs): figures will be lower and noisier than on an idle machine.\n`);
  }
  const results: BenchRow[] = [];
  let adapter: AdapterInfo | null = null;
  // One phase per group, training first: every library's step is then timed within a few minutes
  // of the others', under the same background load. Each library still gets its own process.
  const groups = (cli.groups ?? 'mlp,matmul').split(',').map((g) => g.trim());
  for (const g of groups) if (!(BENCH_GROUPS as readonly string[]).includes(g)) throw new Error(`--groups: unknown group "${g}" (known: ${BENCH_GROUPS.join(', ')}).`);
  const phases = [...BENCH_GROUPS].sort((a, b) => Number(TRAINING.includes(b)) - Number(TRAINING.includes(a))).filter((g) => groups.includes(g));
  const rounds = Number(cli.rounds ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${cli.rounds}.`);
  for (const [i, g] of phases.entries()) {
    // The CNN step rides with the MLP's phase (or the first, when there is no MLP phase and no
    // larger network asked for); only training is repeated over rounds.
    const cnnHere = g === 'mlp' || (i === 0 && !phases.some((p) => p === 'mlp' || NETS.includes(p)));
    const phaseArgs = [...args, '--groups', g, ...(cnnHere ? ['--cnn'] : [])];
    const perRound: BenchRow[][] = [];
    const n = TRAINING.includes(g) ? rounds : 1;
    for (let r = 0; r < n; r++) {
      const rows: BenchRow[] = [];
      for (const t of r % 2 ? [...targets].reverse() : targets) {
        process.stderr.write(`bench: ${t} ${g}${n > 1 ? ` (round ${r + 1}/${n})` : ''} ...\n`);
        const t0 = performance.now();
        const res = await runChild(t, phaseArgs, timeoutOf(g), !!cli.verbose);
        process.stderr.write(`bench: ${t} ${g} done in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
        rows.push(...res.rows);
        if (res.adapter && (!adapter || t === 'ours')) adapter = res.adapter;
      }
      perRound.push(rows);
    }
    results.push(...bestOfRounds(perRound));
  }

  const report: BenchReport = {
    adapter,
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform}-${process.arch}`, loadavgStart, loadavgEnd: os.loadavg() },
    options: { quick: !!cli.quick, only: targets, groups: phases, rounds, args },
    results,
    targets: checkTargets(results),
  };
  if (adapter) console.log(`Adapter: ${adapter.name} (${adapter.description})${adapter.isSoftware ? ' [SOFTWARE: runs on the CPU; not GPU figures]' : ''}`);
  console.log(`Machine: ${report.machine.cpus} x ${report.machine.cpuModel}, Node ${report.machine.node}, load average ${loadavgStart[0].toFixed(1)} -> ${report.machine.loadavgEnd[0].toFixed(1)}\n`);
  printTable(results, targets);
  printTargets(report.targets);
  printLosses(results, targets);
  printMemory(results);
  printProfile(results);
  if (cli.json) {
    mkdirSync(dirname(resolve(cli.json)), { recursive: true });
    writeFileSync(cli.json, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nWrote ${cli.json}`);
  }
}

main().catch((err) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
