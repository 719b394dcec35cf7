// The round trip from the command line: train here, export, continue under DistributedDataParallel
// (2 processes, gloo, CPU, launched by train.py), come back (evaluate, resume, init-from), and ONNX
// from a checkpoint; then bad input, each refused in one message naming the file, tensor or place,
// with a non-zero exit and nothing half-written left behind.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { exportPytorch } from '../src/export/pytorch.ts';
import { makePreset } from '../src/nn/presets.ts';
import { readCheckpoint } from '../src/train/checkpoint.ts';
import { Trainer } from '../src/train/trainer.ts';
import { encodeSafetensors } from '../src/train/safetensors.ts';
import { runPython } from './export-models.ts';
import { cli, getEngine } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'wgtrain-export-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const CK = at('mlp.safetensors');
const PT = at('pt');
const BACK = at('from-pytorch.safetensors');
const ADAPTER = 'WebGPU adapter';

/** "… accuracy 91.23% (2004 samples)" -> [0.9123, 2004]. */
function accuracyOf(text: string): [number, number] {
  const m = /accuracy ([\d.]+)% \((\d+) samples\)/.exec(text);
  if (!m) throw new Error(`no accuracy in: ${text}`);
  return [Number(m[1]) / 100, Number(m[2])];
}

describe('round trip: train here, continue in PyTorch on 2 processes, come back', () => {
  it('trains, exports, continues under DDP, and the checkpoint evaluates here to the accuracy PyTorch reported', async () => {
    const train = await cli(['train', '--dataset', 'mnist', '--hidden', '32', '--epochs', '1', '--batch-size', '64', '--schedule', 'constant', '--lr', '0.003', '--quiet', '--save', CK]);
    expect(train.code, train.stderr).toBe(0);
    const exp = await cli(['export', '--checkpoint', CK, '--format', 'pytorch', '--out', PT, '--epochs', '2']);
    expect(exp.code, exp.stderr).toBe(0);
    expect(readdirSync(PT).sort()).toEqual(['README.md', 'data', 'model.py', 'optimizer.safetensors', 'settings.json', 'train.py', 'weights.safetensors', 'wgtrain_io.py']);

    const torch = await runPython([join(PT, 'train.py'), '--nproc', '2', '--max-steps', '6', '--log-every', '3', '--out', BACK]);
    expect(torch.stdout).toContain('2 process(es), global batch 64');
    const [torchAcc, n] = accuracyOf(torch.stdout);

    const before = readCheckpoint(new Uint8Array(readFileSync(CK)), CK);
    const after = readCheckpoint(new Uint8Array(readFileSync(BACK)), BACK);
    expect(after.meta.state.step).toBe(before.meta.state.step + 6);
    expect(after.meta.state.batch, 'stopped within the epoch: resumes at its next batch').toBe(6);
    const w0 = before.tensors.get('layers.1.weight')!.data;
    const w1 = after.tensors.get('layers.1.weight')!.data;
    expect(w1.some((v, i) => v !== w0[i])).toBe(true);
    expect([...after.tensors.keys()].sort()).toEqual([...before.tensors.keys()].sort());

    const ev = await cli(['evaluate', '--checkpoint', BACK]);
    expect(ev.code, ev.stderr).toBe(0);
    const [ours, m] = accuracyOf(ev.stdout);
    expect(m).toBe(n);
    // The same weights on the same 2,004 digits: at most one near-tied prediction may fall the
    // other way between PyTorch's float32 sums and ours.
    expect(Math.abs(ours - torchAcc) * n).toBeLessThanOrEqual(1.01);

    const resume = await cli(['train', '--resume', BACK, '--epochs', '2', '--quiet']);
    expect(resume.code, resume.stderr).toBe(0);
    expect(resume.stderr).toContain(`resumed ${BACK}: epoch 1, step ${after.meta.state.step} (within epoch 2: continues at batch 7)`);
  });

  it('--init-from starts a new run from exported weights (names and shapes ours)', async () => {
    const ev = await cli(['evaluate', '--checkpoint', CK]);
    const init = await cli(['train', '--dataset', 'mnist', '--hidden', '32', '--epochs', '0', '--init-from', join(PT, 'weights.safetensors')]);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stderr).toContain(`weights from ${join(PT, 'weights.safetensors')}`);
    expect(accuracyOf(`${/test accuracy ([\d.]+)%/.exec(init.stdout)![0]} (2004 samples)`)[0]).toBe(accuracyOf(ev.stdout)[0]);
  });

  it('exports ONNX from a checkpoint, with the normalisation and class names as metadata', async () => {
    const onnx = at('mlp.onnx');
    const r = await cli(['export', '--checkpoint', CK, '--format', 'onnx', '--out', onnx]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('input "input" [batch, 1, 28, 28], output "output" [batch, 10]');
    const session = await ort.InferenceSession.create(onnx);
    const out = await session.run({ input: new ort.Tensor('float32', new Float32Array(2 * 784).fill(0.5), [2, 1, 28, 28]) });
    expect(out.output.dims).toEqual([2, 10]);
    await session.release();
    const text = new TextDecoder().decode(readFileSync(onnx));
    expect(text).toContain('"kind":"scale255"');
    expect(text).toContain('classNames');
  });
});

describe('bad input', () => {
  const noTemps = (d: string) => expect(readdirSync(d).filter((f) => f.includes('.tmp-'))).toEqual([]);

  it('a file that is not a safetensors checkpoint is named', async () => {
    const bad = at('notes.txt');
    writeFileSync(bad, 'not a checkpoint at all');
    const r = await cli(['export', '--checkpoint', bad, '--format', 'onnx', '--out', at('x.onnx')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^error: Checkpoint ${bad}: .*not a safetensors file`, 'm'));
    expect(readdirSync(dir)).not.toContain('x.onnx');
  });

  it('the output place is checked before any work', async () => {
    const file = at('a-file');
    writeFileSync(file, 'x');
    const cases: [string[], string][] = [
      [['--format', 'onnx', '--out', join(file, 'm.onnx')], `is not a directory`],
      [['--format', 'onnx', '--out', at('missing/m.onnx')], 'no such directory'],
      [['--format', 'onnx', '--out', dir], 'is a directory; give the .onnx file'],
      [['--format', 'pytorch', '--out', PT], `--out ${PT} is not empty`],
      [['--format', 'pytorch', '--out', file], 'is a file; a PyTorch export writes a directory'],
      [['--format', 'pytorch', '--out', at('missing/pt')], 'no such directory'],
    ];
    for (const [args, why] of cases) {
      const r = await cli(['export', '--checkpoint', CK, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(why);
      expect(r.stderr, 'refused before the engine started').not.toContain(ADAPTER);
    }
    noTemps(dir);
  });

  it('--init-from names every tensor that does not fit, and refuses an ONNX file', async () => {
    const wrong = at('wrong.safetensors');
    writeFileSync(
      wrong,
      encodeSafetensors({
        'layers.1.weight': { shape: [16, 784], data: new Float32Array(16 * 784) },
        'layers.1.bias': { shape: [32], data: new Float32Array(32) },
        'layers.3.weight': { shape: [10, 32], data: new Float32Array(320) },
        'head.weight': { shape: [2], data: new Float32Array(2) },
      }),
    );
    const r = await cli(['train', '--dataset', 'mnist', '--hidden', '32', '--epochs', '0', '--init-from', wrong]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Checkpoint ${wrong}: does not match the model (3 problems)`);
    expect(r.stderr).toContain('layers.1.weight: file has [16, 784], model expects [32, 784]');
    expect(r.stderr).toContain('layers.3.bias: missing from the file (model expects [10])');
    expect(r.stderr).toContain('head.weight: in the file [2] but not in the model');

    const onnx = at('mlp.onnx');
    const o = await cli(['train', '--dataset', 'mnist', '--hidden', '32', '--epochs', '0', '--init-from', onnx]);
    expect(o.code).toBe(1);
    expect(o.stderr).toContain(`Checkpoint ${onnx}: is an ONNX model, not safetensors`);

    const both = await cli(['train', '--resume', CK, '--init-from', wrong]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give one of them');
  });

  it('a train.py run refuses a batch that does not split over its processes', async () => {
    const e = await getEngine();
    const model = makePreset('mlp', 10, { hidden: [8] });
    await model.build(e, [4]);
    const trainer = await Trainer.create(model, { loss: 'softmax_cross_entropy', optimizer: { kind: 'sgd', lr: 0.1 } });
    const pt = at('pt-batch');
    mkdirSync(pt);
    for (const [name, bytes] of await exportPytorch(trainer, { training: { batchSize: 64 } })) writeFileSync(join(pt, name), bytes);
    await expect(runPython([join(pt, 'train.py'), '--nproc', '3', '--max-steps', '1', '--out', at('never.safetensors')])).rejects.toThrow('the global batch size 64 does not split evenly over 3 processes');
    expect(readdirSync(dir)).not.toContain('never.safetensors');
    trainer.dispose();
    model.dispose();
  });
});
