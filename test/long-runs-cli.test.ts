// Long runs from the command line, as a user has them: bad input refused in one line with status
// 2 before the first training step; Ctrl-C (SIGINT) within an epoch leaves a checkpoint and the
// metrics so far and prints the command that resumes, which ends bit-exact with an uninterrupted
// run; so does a run killed (SIGKILL) within an epoch, from its last --save-every checkpoint; and
// --max-time stops the same way. A second Ctrl-C quits at once, leaving no torn file.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint, type Checkpoint } from '../src/train/checkpoint.ts';
import { cli, cliWatched } from './helpers.ts';

/** A table of 3 separable classes in 6 features: `rows` rows, 80% of them for training. */
function writeBlobs(path: string, rows: number, seed = 7): void {
  let s = seed;
  const rnd = () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const lines = ['a,b,c,d,e,f,label'];
  for (let i = 0; i < rows; i++) {
    const c = i % 3;
    const v = Array.from({ length: 6 }, (_, j) => ((j % 3 === c ? 2 : 0) + 1.4 * (rnd() - 0.5)).toFixed(3));
    lines.push(`${v.join(',')},${'xyz'[c]}`);
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

const read = (path: string): Checkpoint => readCheckpoint(new Uint8Array(readFileSync(path)), path);

/** Every tensor of two checkpoint files is the same, bit for bit (names the first that is not). */
function expectSameTensors(got: string, want: string): void {
  const a = read(got);
  const b = read(want);
  expect([...a.tensors.keys()]).toEqual([...b.tensors.keys()]);
  for (const [name, t] of b.tensors) {
    const u = a.tensors.get(name)!;
    expect(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `${name} differs from the uninterrupted run`).toBe(true);
  }
}

/** The command the CLI printed to resume, as arguments (paths here have no spaces to quote). */
function resumeArgs(stderr: string): string[] {
  const line = stderr.split('\n').find((l) => l.startsWith('Resume with: wgtrain '));
  expect(line, stderr).toBeDefined();
  return line!.slice('Resume with: wgtrain '.length).split(' ');
}

/** The line printed just before the first training step: its absence shows that no step ran. */
const TRAINING = /^training: /m;

describe('long runs from the command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wgtrain-long-'));
  const csv = join(dir, 'blobs.csv');
  writeBlobs(csv, 1500); // 1200 training rows: 300 steps per epoch in batches of 4
  /** Dropout, so that resuming also has to recreate the masks; a cosine schedule (the default). */
  const run = (out: string) => [
    'train',
    '--dataset',
    csv,
    '--target',
    'label',
    '--hidden',
    '8',
    '--dropout',
    '0.2',
    '--epochs',
    '2',
    '--batch-size',
    '4',
    '--lr',
    '0.01',
    '--save-every',
    '40',
    '--quiet',
    '--save',
    join(out, 'ck.safetensors'),
  ];
  let straight: string;

  beforeAll(async () => {
    // The uninterrupted run every interrupted one must match; --mkdir makes its new directory.
    const out = join(dir, 'straight', 'new');
    const r = await cli([...run(out), '--mkdir']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/made directory .*straight\/new \(--mkdir\)/);
    straight = join(out, 'ck.safetensors');
    expect(read(straight).meta.state).toMatchObject({ epoch: 2, step: 600, batch: 0 });
  });

  it('Ctrl-C within an epoch: a checkpoint there, the metrics so far, how to resume, status 130; the resumed run ends bit-exact', async () => {
    const out = join(dir, 'sigint');
    mkdirSync(out);
    const metrics = join(out, 'm.json');
    let sent = false;
    const r = await cliWatched([...run(out), '--metrics-out', metrics], (err, child) => {
      if (!sent && /checkpoint .*: epoch 1, batch 40 of 300/.test(err)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/Ctrl-C: stopping after the current step/);
    expect(r.stderr).toMatch(/Stopped: Ctrl-C \(SIGINT\); the checkpoint .*ck\.safetensors \(epoch 1, batch \d+ of 300, step \d+\) holds the run so far/);
    const at = read(join(out, 'ck.safetensors')).meta.state;
    expect(at.epoch).toBe(0);
    expect(at.batch).toBeGreaterThanOrEqual(40);
    expect(at.batch).toBeLessThan(300);
    const m = JSON.parse(readFileSync(metrics, 'utf8'));
    expect(m.stopped).toMatchObject({ reason: 'Ctrl-C (SIGINT)', at: { step: at.step, batch: at.batch }, checkpoint: join(out, 'ck.safetensors') });
    expect(m.testLoss).toBeNull();
    copyFileSync(join(out, 'ck.safetensors'), join(dir, 'mid-epoch.safetensors')); // for the refusals below

    const args = resumeArgs(r.stderr);
    expect(args.slice(0, 3)).toEqual(['train', '--resume', join(out, 'ck.safetensors')]);
    const resumed = await cli(args);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resumed .*: epoch 0, step ${at.step} \\(within epoch 1: continues at batch ${at.batch! + 1}\\)`));
    expectSameTensors(join(out, 'ck.safetensors'), straight);
    expect(JSON.parse(readFileSync(metrics, 'utf8')).stopped).toBeUndefined();
  });

  it('that mid-epoch checkpoint on other data or another batch size: refused in one line, status 2, before any step', async () => {
    const file = join(dir, 'mid-epoch.safetensors');
    const smaller = join(dir, 'smaller.csv');
    writeBlobs(smaller, 1400);
    const common = ['train', '--resume', file, '--target', 'label', '--epochs', '2', '--quiet'];
    const cases: [string[], RegExp][] = [
      [
        ['--dataset', smaller, '--batch-size', '4'],
        /--resume .*mid-epoch\.safetensors stopped within an epoch \(epoch 1, batch \d+ of 300\) and continues only on the batches it was cut from: 1200 training samples, this data has 1120\. Resume with the same --dataset, --batch-size and --augment, or from a checkpoint saved at an epoch end\./,
      ],
      [['--dataset', csv, '--batch-size', '8'], /cut from: batches of 4, this run's are of 8/],
    ];
    for (const [args, want] of cases) {
      const r = await cli([...common, ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(want);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('error: '))).toHaveLength(1);
      expect(r.stderr).not.toMatch(TRAINING);
    }
  });

  it('a run killed (SIGKILL) within an epoch resumes from its last --save-every checkpoint and ends bit-exact', async () => {
    const out = join(dir, 'sigkill');
    mkdirSync(out);
    let sent = false;
    const r = await cliWatched(run(out), (err, child) => {
      if (!sent && /checkpoint .*: epoch 2, batch 20 of 300 \(step 320\)/.test(err)) {
        sent = true;
        child.kill('SIGKILL');
      }
    });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    const at = read(join(out, 'ck.safetensors')).meta.state;
    // Saved every 40 steps: the kill came at or just after step 320, within epoch 2.
    expect(at.step % 40).toBe(0);
    expect(at).toMatchObject({ epoch: 1 });
    expect(at.batch).toBeGreaterThan(0);
    const resumed = await cli([...run(out), '--resume', join(out, 'ck.safetensors')]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expectSameTensors(join(out, 'ck.safetensors'), straight);
  });

  it('--max-time stops the same way (status 3), and the run resumes to the same end', async () => {
    const out = join(dir, 'maxtime');
    mkdirSync(out);
    // The time counts from the command's start, so one second runs out within the first epoch.
    const r = await cli([...run(out), '--max-time', '1']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/Stopped: the --max-time of 1s ran out; the checkpoint .* holds the run so far/);
    const at = read(join(out, 'ck.safetensors')).meta.state;
    expect(at.batch).toBeGreaterThan(0);
    // The printed command keeps --max-time (each chunk of a long job gets its budget); drop it to finish.
    const args = resumeArgs(r.stderr);
    const i = args.indexOf('--max-time');
    args.splice(i, 2);
    const resumed = await cli(args);
    expect(resumed.code, resumed.stderr).toBe(0);
    expectSameTensors(join(out, 'ck.safetensors'), straight);
  });

  it('a second Ctrl-C quits at once: ended by SIGINT (status 130 in a shell), the checkpoint whole, no temporary file left', async () => {
    const out = join(dir, 'twice');
    mkdirSync(out);
    let stage = 0;
    const r = await cliWatched([...run(out), '--metrics-out', join(out, 'm.json')], (err, child) => {
      if (stage === 0 && /checkpoint .*: epoch 1, batch 40 of 300/.test(err)) {
        stage = 1;
        child.kill('SIGINT');
      } else if (stage === 1 && /Ctrl-C: stopping/.test(err)) {
        // While the stop writes its checkpoint and metrics (drawing the curves takes a while).
        stage = 2;
        child.kill('SIGINT');
      }
    });
    // Ended by SIGINT itself, as a shell reports with status 130.
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: null, signal: 'SIGINT' });
    expect(r.stderr).toMatch(/SIGINT again: quitting at once/);
    expect(read(join(out, 'ck.safetensors')).meta.state.batch).toBeGreaterThanOrEqual(40);
    expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('bad input: one line, status 2, before the first training step', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wgtrain-bad-'));
  const csv = join(dir, 'blobs.csv');
  writeBlobs(csv, 150);
  const base = ['train', '--dataset', csv, '--target', 'label', '--hidden', '8', '--epochs', '1', '--quiet'];
  writeFileSync(join(dir, 'a-file'), 'not a directory');

  const cases: [string, string[], RegExp][] = [
    ['--save into a missing directory', ['--save', join(dir, 'no/such/dir/ck.safetensors')], /--save .*no\/such\/dir\/ck\.safetensors: the directory .*no\/such\/dir does not exist; create it, or pass --mkdir/],
    ['--metrics-out under a file', ['--metrics-out', join(dir, 'a-file/m.json')], /--metrics-out .*a-file\/m\.json: .*\/a-file is a file, not a directory/],
    ['--save-every 0', ['--save-every', '0'], /--save-every takes a number of steps \(e\.g\. 500\) or a time \(e\.g\. 10m, 90s, 1h\), got "0"/],
    ['--save-every as text', ['--save-every', 'often'], /--save-every takes a number of steps .* got "often"/],
    [
      'a model over the adapter limit',
      ['--hidden', '200000,200000'],
      /layers\.3 \(Dense 200000→200000\): 149\.0 GiB \(160,000,000,000 bytes\) of weights \(layers\.3\.weight \[200000, 200000\]\); this adapter allows [\d.]+ [KMGT]iB \([\d,]+ bytes\) per buffer \(\w+\), at most [\d,]+ values per tensor: make the layer smaller/,
    ],
  ];
  for (const [what, args, want] of cases) {
    it(what, async () => {
      const before = readdirSync(dir).sort();
      const r = await cli([...base, ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(want);
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
      expect(errors, r.stderr).toHaveLength(1);
      expect(r.stderr).not.toMatch(TRAINING);
      // Refused before the model was built, let alone planned: no summary of it was printed.
      expect(r.stderr).not.toMatch(/Total parameters/);
      expect(readdirSync(dir).sort()).toEqual(before); // nothing written, no directory made
    });
  }
});
