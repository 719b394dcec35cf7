// PyTorch export: the generated model.py loads our weights strictly (state_dict names and shapes
// are ours) and, in evaluation mode, gives our outputs within 1e-4 of the largest one, for every
// test case; an op with no PyTorch equivalent is refused by module path and kind.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExportError } from '../src/export/onnx.ts';
import { exportPytorch } from '../src/export/pytorch.ts';
import { pytorchModelSource } from '../src/export/pytorch-model.ts';
import type { GraphSpec } from '../src/ops/graph.ts';
import { decodeSafetensors, encodeSafetensors } from '../src/train/safetensors.ts';
import { predict } from '../src/train/trainer.ts';
import { EXPORT_CASES, perturbBatchNorm, relativeToLargest, runPython, seededInputs } from './export-models.ts';
import { getEngine } from './helpers.ts';

/** The tolerance: outputs within 1e-4 relative to the largest logit. */
const TOL = 1e-4;
const BATCH = 3;

const dir = mkdtempSync(join(tmpdir(), 'wgtrain-export-pytorch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** For each case directory: import its model.py, load the weights strictly, run the input in eval mode, save the output. */
const RUNNER = `
import importlib.util, sys, torch
for d in sys.argv[1:]:
    sys.path.insert(0, d)
    import wgtrain_io
    spec = importlib.util.spec_from_file_location("model_" + str(abs(hash(d))), d + "/model.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    model = mod.Model()
    weights, _ = wgtrain_io.read_safetensors(d + "/weights.safetensors")
    model.load_state_dict(weights, strict=True)
    assert sorted(model.state_dict()) == sorted(weights), "state_dict names differ from the engine's"
    model.eval()
    x = wgtrain_io.read_safetensors(d + "/input.safetensors")[0]["input"]
    with torch.no_grad():
        y = model(x)
    wgtrain_io.write_safetensors(d + "/output.safetensors", {"output": y})
    sys.path.pop(0)
    del sys.modules["wgtrain_io"]
`;

describe('PyTorch export: model.py run by PyTorch', () => {
  it('every case loads strictly and gives our outputs', async () => {
    const e = await getEngine();
    const ours = new Map<string, Float32Array>();
    for (const c of EXPORT_CASES) {
      const model = c.make();
      await model.build(e, c.inputShape, { seed: 4 });
      perturbBatchNorm(e, model, 6);
      const x = seededInputs(c.inputShape, BATCH, 11);
      ours.set(c.name, await predict(model, x, BATCH));
      const files = await exportPytorch(model);
      const at = join(dir, c.name);
      mkdirSync(at);
      for (const [name, bytes] of files) writeFileSync(join(at, name), bytes);
      writeFileSync(join(at, 'input.safetensors'), encodeSafetensors({ input: { shape: [BATCH, ...c.inputShape], data: x } }));
      model.dispose();
    }
    writeFileSync(join(dir, 'runner.py'), RUNNER);
    await runPython([join(dir, 'runner.py'), ...EXPORT_CASES.map((c) => join(dir, c.name))]);
    for (const c of EXPORT_CASES) {
      const out = decodeSafetensors(new Uint8Array(readFileSync(join(dir, c.name, 'output.safetensors'))), c.name).tensors.get('output')!;
      expect(out.shape[0]).toBe(BATCH);
      const { rel, at } = relativeToLargest(out.data, ours.get(c.name)!);
      expect(rel, `${c.name}: max difference at ${at}`).toBeLessThanOrEqual(TOL);
    }
  });
});

describe('PyTorch export refusals', () => {
  const base: GraphSpec = { inputs: [{ id: 0, shape: [4] }], shapes: { 0: [4], 1: [4] }, nodes: [], output: 1, params: [], buffers: [] };

  it('an op kind without a PyTorch mapping is refused by module path and kind', () => {
    const spec = { ...base, nodes: [{ path: 'blocks.0.norm', op: { kind: 'rotary_embedding' } as never, inputs: [0], outputs: [1] }] };
    expect(() => pytorchModelSource(spec)).toThrow(ExportError);
    expect(() => pytorchModelSource(spec)).toThrow(/^blocks\.0\.norm: op kind "rotary_embedding" has no PyTorch mapping/);
  });

  it('a parameter named like an nn.Module attribute is refused by name', () => {
    const spec: GraphSpec = { ...base, nodes: [{ path: 'add', op: { kind: 'add_param', param: 'block.training' }, inputs: [0], outputs: [1] }], params: [{ name: 'block.training', shape: [4], decay: false }] };
    expect(() => pytorchModelSource(spec)).toThrow('tensor block.training is named "training", a name nn.Module itself uses');
  });
});
