// ONNX export: onnxruntime (onnxruntime-node, CPU) runs the exported model of every test case on a
// batch and gives our outputs within 1e-4 of the largest one; the batch dimension is dynamic; an
// op with no ONNX equivalent is refused by its module path and kind.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ExportError, exportOnnx, looksLikeOnnx, ONNX_OP_KINDS, onnxFromGraph } from '../src/export/onnx.ts';
import { PYTORCH_OP_KINDS } from '../src/export/pytorch-model.ts';
import type { GraphSpec } from '../src/ops/graph.ts';
import { predict } from '../src/train/trainer.ts';
import { EXPORT_CASES, perturbBatchNorm, relativeToLargest, seededInputs } from './export-models.ts';
import { getEngine } from './helpers.ts';

/** The tolerance: outputs within 1e-4 relative to the largest logit. */
const TOL = 1e-4;

describe('ONNX export, run by onnxruntime', () => {
  for (const c of EXPORT_CASES) {
    it(`${c.name}: onnxruntime's outputs equal ours at two batch sizes`, async () => {
      const e = await getEngine();
      const model = c.make();
      await model.build(e, c.inputShape, { seed: 3 });
      perturbBatchNorm(e, model, 5);
      const bytes = await exportOnnx(model);
      expect(looksLikeOnnx(bytes)).toBe(true);
      const session = await ort.InferenceSession.create(bytes);
      expect(session.inputNames).toEqual(['input']);
      expect(session.outputNames).toEqual(['output']);
      for (const batch of [2, 3]) {
        const x = seededInputs(c.inputShape, batch, 7 + batch);
        const ours = await predict(model, x, batch);
        const out = await session.run({ input: new ort.Tensor('float32', x, [batch, ...c.inputShape]) });
        const theirs = out.output;
        expect(theirs.dims).toEqual([batch, ...model.outputShape]);
        const { rel, at } = relativeToLargest(theirs.data as Float32Array, ours);
        expect(rel, `${c.name}, batch ${batch}: max difference at ${at}`).toBeLessThanOrEqual(TOL);
      }
      await session.release();
      model.dispose();
    });
  }
});

describe('the test cases', () => {
  it('hold every op kind the exporters translate (and batch norm with its ReLU)', async () => {
    const e = await getEngine();
    const held = new Set<string>();
    for (const c of EXPORT_CASES) {
      const model = c.make();
      await model.build(e, c.inputShape, { seed: 1 });
      for (const n of model.spec().nodes) held.add(n.op.kind === 'batchnorm2d' && n.op.relu ? 'batchnorm2d+relu' : n.op.kind);
      model.dispose();
    }
    expect([...held].sort()).toEqual([...ONNX_OP_KINDS, 'batchnorm2d+relu'].sort());
    expect([...PYTORCH_OP_KINDS].sort()).toEqual([...ONNX_OP_KINDS].sort());
  });
});

describe('ONNX export refusals', () => {
  const spec: GraphSpec = {
    inputs: [{ id: 0, shape: [4] }],
    shapes: { 0: [4], 1: [4] },
    nodes: [{ path: 'blocks.0.norm', op: { kind: 'rotary_embedding' } as never, inputs: [0], outputs: [1] }],
    output: 1,
    params: [],
    buffers: [],
  };

  it('an op kind without an ONNX mapping is refused by module path and kind', () => {
    expect(() => onnxFromGraph(spec, new Map())).toThrow(ExportError);
    expect(() => onnxFromGraph(spec, new Map())).toThrow(/^blocks\.0\.norm: op kind "rotary_embedding" has no ONNX mapping/);
  });

  it('a missing or mis-sized tensor is named', () => {
    const dense: GraphSpec = { ...spec, nodes: [{ path: 'fc', op: { kind: 'dense', weight: 'fc.weight', bias: null, activation: null }, inputs: [0], outputs: [1] }], params: [{ name: 'fc.weight', shape: [4, 4], decay: true }] };
    expect(() => onnxFromGraph(dense, new Map())).toThrow('no value for tensor fc.weight [4, 4]');
    expect(() => onnxFromGraph(dense, new Map([['fc.weight', new Float32Array(3)]]))).toThrow('tensor fc.weight has 3 values; its shape [4, 4] needs 16');
  });

  it('safetensors bytes are not taken for ONNX', () => {
    expect(looksLikeOnnx(new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]))).toBe(false);
  });
});
