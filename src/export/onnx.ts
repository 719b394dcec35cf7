// ONNX export: a model's graph (GraphSpec, src/ops/graph.ts) translated op by op into an ONNX
// ModelProto, encoded with the published ONNX schema (the `onnx-proto` package, protobufjs). The
// exported model has inference semantics (dropout is the identity, batch norm uses its running
// statistics), a dynamic batch dimension named `batch`, and the model's parameters and buffers as
// initializers under their own names (`layers.1.weight`), as PyTorch's exporter names them.
// Opset 17: what onnxruntime (1.13 and later) runs, and the first with LayerNormalization.
// Nothing here touches the GPU but `exportOnnx`, which reads the weights.
import onnxProto from 'onnx-proto';
import type { ActivationSpec, GraphSpec, NodeSpec, OpSpec } from '../ops/graph.ts';
import type { Model } from '../nn/model.ts';

const { onnx } = onnxProto;

/** The ONNX operator set the exporter writes. */
export const ONNX_OPSET = 17;
/** ONNX IR version 8 (ONNX 1.12, the release that brought opset 17). */
const IR_VERSION = 8;

/** An op or a tensor that cannot be exported: the message names it (module path and kind, or tensor name). */
export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

export interface OnnxExportOptions {
  /** Key/value pairs stored in the model's metadata_props (e.g. the input normalisation, class names). */
  metadata?: Record<string, string>;
  /** The graph's name (default "webgpu-train"). */
  name?: string;
}

const FLOAT = 1; // onnx.TensorProto.DataType.FLOAT
const INT64 = 7; // onnx.TensorProto.DataType.INT64
const ATTR = { FLOAT: 1, INT: 2, INTS: 7 } as const; // onnx.AttributeProto.AttributeType

type Attr = number | number[] | { float: number };

/** Builds one ONNX graph: nodes, initializers and unique value names. */
class OnnxBuilder {
  readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly used = new Set<string>();

  /** A value name not used yet, made from `base` (a module path). */
  fresh(base: string): string {
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base}#${i}`;
    this.used.add(name);
    return name;
  }

  reserve(name: string): string {
    if (this.used.has(name)) throw new ExportError(`ONNX export: the name ${name} is used twice.`);
    this.used.add(name);
    return name;
  }

  /** A float32 initializer (a parameter, or a constant). */
  floats(name: string, dims: number[], data: Float32Array): string {
    const bytes = new Uint8Array(data.byteLength);
    const view = new DataView(bytes.buffer);
    data.forEach((v, i) => view.setFloat32(4 * i, v, true));
    this.initializers.push(onnx.TensorProto.create({ name, dims, dataType: FLOAT, rawData: bytes }));
    return name;
  }

  /** An int64 constant (shapes, axes, split sizes). */
  ints(base: string, values: number[]): string {
    const name = this.fresh(base);
    const bytes = new Uint8Array(8 * values.length);
    const view = new DataView(bytes.buffer);
    values.forEach((v, i) => view.setBigInt64(8 * i, BigInt(v), true));
    this.initializers.push(onnx.TensorProto.create({ name, dims: [values.length], dataType: INT64, rawData: bytes }));
    return name;
  }

  /** A float32 scalar constant. */
  scalar(base: string, v: number): string {
    const name = this.fresh(base);
    return this.floats(name, [], Float32Array.of(v));
  }

  private batch: string | null = null;

  /** [batch] as a 1-D int64 value: the first dimension of `input` (made once). */
  batchDim(input: string): string {
    this.batch ??= this.node('Shape', [input], [this.fresh('batch')], 'batch', { start: 0, end: 1 });
    return this.batch;
  }

  /** Add a node; returns its (first) output. */
  node(op: string, inputs: string[], outputs: string[], path: string, attrs: Record<string, Attr> = {}): string {
    const attribute = Object.entries(attrs).map(([name, v]) => {
      if (typeof v === 'number') return onnx.AttributeProto.create({ name, type: ATTR.INT, i: v });
      if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: ATTR.INTS, ints: v });
      return onnx.AttributeProto.create({ name, type: ATTR.FLOAT, f: v.float });
    });
    this.nodes.push(onnx.NodeProto.create({ opType: op, input: inputs, output: outputs, name: this.fresh(`${path}/${op}`), attribute }));
    return outputs[0];
  }
}

/** What a translator gets: the builder, the node, its input names, and the names its outputs must get. */
interface Emit<K extends OpSpec['kind']> {
  b: OnnxBuilder;
  node: NodeSpec;
  op: Extract<OpSpec, { kind: K }>;
  ins: string[];
  outs: string[];
  /** Per-sample shapes of the node's inputs. */
  inShapes: number[][];
  /** Per-sample shapes of the node's outputs. */
  outShapes: number[][];
  /** The first model input, whose first dimension is the batch. */
  batchOf: string;
}

/** `x` reshaped to [batch, ...shape] (Reshape's 0 copies the batch dimension from x). */
function reshapeTo(b: OnnxBuilder, x: string, shape: number[], out: string, path: string): string {
  return b.node('Reshape', [x, b.ints(`${path}.shape`, [0, ...shape])], [out], path);
}

/** An activation from `x` into `out`. GELU is the tanh approximation our kernels compute, spelled out (opset 17 has no Gelu). */
function activation(b: OnnxBuilder, a: ActivationSpec, x: string, out: string, path: string): string {
  switch (a.kind) {
    case 'relu':
      return b.node('Relu', [x], [out], path);
    case 'leaky_relu':
      return b.node('LeakyRelu', [x], [out], path, { alpha: { float: a.alpha } });
    case 'sigmoid':
      return b.node('Sigmoid', [x], [out], path);
    case 'tanh':
      return b.node('Tanh', [x], [out], path);
    case 'gelu': {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const t = (s: string) => b.fresh(`${path}.gelu.${s}`);
      const x2 = b.node('Mul', [x, x], [t('x2')], path);
      const x3 = b.node('Mul', [x2, x], [t('x3')], path);
      const inner = b.node('Add', [x, b.node('Mul', [x3, b.scalar(`${path}.gelu.k`, 0.044715)], [t('kx3')], path)], [t('inner')], path);
      const th = b.node('Tanh', [b.node('Mul', [inner, b.scalar(`${path}.gelu.c`, Math.sqrt(2 / Math.PI))], [t('scaled')], path)], [t('tanh')], path);
      const half = b.node('Mul', [x, b.scalar(`${path}.gelu.half`, 0.5)], [t('half')], path);
      return b.node('Mul', [half, b.node('Add', [th, b.scalar(`${path}.gelu.one`, 1)], [t('onePlus')], path)], [out], path);
    }
    default:
      throw new ExportError(`${path}: activation "${(a as ActivationSpec).kind}" has no ONNX mapping.`);
  }
}

/** The permutation that swaps the last two axes of a rank-r tensor. */
function swapLast(r: number): number[] {
  const p = Array.from({ length: r }, (_, i) => i);
  [p[r - 2], p[r - 1]] = [p[r - 1], p[r - 2]];
  return p;
}

type Translators = { [K in OpSpec['kind']]?: (e: Emit<K>) => void };

/**
 * One translator per op kind. A kind without one is refused by name (module path and kind); adding
 * a kind is one entry here. Axes in OpSpecs are per sample; ONNX's count the batch, hence the +1s.
 */
const TRANSLATORS: Translators = {
  dense: ({ b, node, op, ins, outs, inShapes }) => {
    const p = node.path;
    const act = op.activation;
    const pre = act ? b.fresh(`${p}.linear`) : outs[0];
    if (inShapes[0].length === 1) {
      b.node('Gemm', op.bias ? [ins[0], op.weight, op.bias] : [ins[0], op.weight], [pre], p, { transB: 1 });
    } else {
      // Dense over the last axis of [batch, ..., in]: x · Wᵀ (+ b), as nn.Linear.
      const wt = b.node('Transpose', [op.weight], [b.fresh(`${op.weight}ᵀ`)], p, { perm: [1, 0] });
      if (op.bias) b.node('Add', [b.node('MatMul', [ins[0], wt], [b.fresh(`${p}.matmul`)], p), op.bias], [pre], p);
      else b.node('MatMul', [ins[0], wt], [pre], p);
    }
    if (act) activation(b, act, pre, outs[0], p);
  },
  conv2d: ({ b, node, op, ins, outs }) => {
    const pre = op.relu ? b.fresh(`${node.path}.conv`) : outs[0];
    const [ph, pw] = op.padding;
    b.node('Conv', op.bias ? [ins[0], op.weight, op.bias] : [ins[0], op.weight], [pre], node.path, { strides: [...op.stride], pads: [ph, pw, ph, pw], dilations: [1, 1], group: 1 });
    if (op.relu) b.node('Relu', [pre], outs, node.path);
  },
  batchnorm2d: ({ b, node, op, ins, outs }) => {
    // Inference: normalised with the running statistics (training_mode 0, the default).
    const pre = op.relu ? b.fresh(`${node.path}.normalised`) : outs[0];
    b.node('BatchNormalization', [ins[0], op.weight, op.bias, op.runningMean, op.runningVar], [pre], node.path, { epsilon: { float: op.eps } });
    if (op.relu) b.node('Relu', [pre], outs, node.path);
  },
  layernorm: ({ b, node, op, ins, outs }) => {
    b.node('LayerNormalization', [ins[0], op.weight, op.bias], outs, node.path, { axis: -1, epsilon: { float: op.eps } });
  },
  scaled_softmax: ({ b, node, op, ins, outs }) => {
    const scaled = b.node('Mul', [ins[0], b.scalar(`${node.path}.factor`, op.factor)], [b.fresh(`${node.path}.scaled`)], node.path);
    b.node('Softmax', [scaled], outs, node.path, { axis: -1 });
  },
  attention: ({ b, node, op, ins, outs, inShapes }) => {
    // q, k and v are thirds of qkv's last axis; each is split into heads ([batch, heads, T, dh],
    // k transposed), then softmax(factor * q kᵀ) v, the heads put back side by side.
    const p = node.path;
    const [T, D3] = inShapes[0];
    const D = D3 / 3;
    const H = op.heads;
    const part = (i: number, name: string, perm: number[]) => {
      const third = b.node('Slice', [ins[0], b.ints(`${p}.${name}.start`, [i * D]), b.ints(`${p}.${name}.end`, [(i + 1) * D]), b.ints(`${p}.${name}.axis`, [2])], [b.fresh(`${p}.${name}`)], p);
      const heads = reshapeTo(b, third, [T, H, D / H], b.fresh(`${p}.${name}.heads`), p);
      return b.node('Transpose', [heads], [b.fresh(`${p}.${name}.by_head`)], p, { perm });
    };
    const scores = b.node('MatMul', [part(0, 'q', [0, 2, 1, 3]), part(1, 'k', [0, 2, 3, 1])], [b.fresh(`${p}.scores`)], p);
    const scaled = b.node('Mul', [scores, b.scalar(`${p}.factor`, op.factor)], [b.fresh(`${p}.scaled`)], p);
    const weights = b.node('Softmax', [scaled], [b.fresh(`${p}.weights`)], p, { axis: -1 });
    const mixed = b.node('MatMul', [weights, part(2, 'v', [0, 2, 1, 3])], [b.fresh(`${p}.mixed`)], p);
    const tokens = b.node('Transpose', [mixed], [b.fresh(`${p}.by_token`)], p, { perm: [0, 2, 1, 3] });
    reshapeTo(b, tokens, [T, D], outs[0], p);
  },
  param: ({ b, node, op, outs, outShapes, batchOf }) => {
    // A parameter as a value of every sample: expanded to [batch, ...shape], the batch taken from the first input.
    const shape = b.node('Concat', [b.batchDim(batchOf), b.ints(`${node.path}.shape`, outShapes[0])], [b.fresh(`${node.path}.expanded_shape`)], node.path, { axis: 0 });
    b.node('Expand', [op.param, shape], outs, node.path);
  },
  slice: ({ b, node, op, ins, outs }) => {
    const c = (what: string, v: number) => b.ints(`${node.path}.${what}`, [v]);
    b.node('Slice', [ins[0], c('start', op.start), c('end', op.start + op.length), c('axis', op.axis + 1)], outs, node.path);
  },
  activation: ({ b, node, op, ins, outs }) => {
    activation(b, op.activation, ins[0], outs[0], node.path);
  },
  maxpool2d: ({ b, node, op, ins, outs }) => {
    const [ph, pw] = op.padding;
    b.node('MaxPool', ins, outs, node.path, { kernel_shape: [...op.kernel], strides: [...op.stride], pads: [ph, pw, ph, pw] });
  },
  avgpool2d: ({ b, node, op, ins, outs }) => {
    const [ph, pw] = op.padding;
    b.node('AveragePool', ins, outs, node.path, { kernel_shape: [...op.kernel], strides: [...op.stride], pads: [ph, pw, ph, pw], count_include_pad: op.countIncludePad ? 1 : 0 });
  },
  globalavgpool: ({ b, node, ins, outs, outShapes }) => {
    const pooled = b.node('GlobalAveragePool', ins, [b.fresh(`${node.path}.pooled`)], node.path);
    reshapeTo(b, pooled, outShapes[0], outs[0], node.path);
  },
  reshape: ({ b, node, ins, outs, outShapes }) => {
    reshapeTo(b, ins[0], outShapes[0], outs[0], node.path);
  },
  dropout: ({ b, node, ins, outs }) => {
    // Inference: dropout is the identity.
    b.node('Identity', ins, outs, node.path);
  },
  softmax: ({ b, node, ins, outs }) => {
    b.node('Softmax', ins, outs, node.path, { axis: -1 });
  },
  add: ({ b, node, ins, outs }) => {
    b.node('Add', ins, outs, node.path);
  },
  mul: ({ b, node, ins, outs }) => {
    b.node('Mul', ins, outs, node.path);
  },
  scale: ({ b, node, op, ins, outs }) => {
    b.node('Mul', [ins[0], b.scalar(`${node.path}.factor`, op.factor)], outs, node.path);
  },
  // A parameter shaped like a trailing part of x: ONNX broadcasting aligns trailing axes, as ours does.
  add_param: ({ b, node, op, ins, outs }) => {
    b.node('Add', [ins[0], op.param], outs, node.path);
  },
  mul_param: ({ b, node, op, ins, outs }) => {
    b.node('Mul', [ins[0], op.param], outs, node.path);
  },
  matmul: ({ b, node, op, ins, outs, inShapes }) => {
    const operand = (i: number, trans: boolean) => {
      if (!trans) return ins[i];
      return b.node('Transpose', [ins[i]], [b.fresh(`${node.path}.${i ? 'b' : 'a'}ᵀ`)], node.path, { perm: swapLast(inShapes[i].length + 1) });
    };
    b.node('MatMul', [operand(0, op.transA), operand(1, op.transB)], outs, node.path);
  },
  permute: ({ b, node, op, ins, outs }) => {
    b.node('Transpose', ins, outs, node.path, { perm: [0, ...op.dims.map((d) => d + 1)] });
  },
  concat: ({ b, node, op, ins, outs }) => {
    b.node('Concat', ins, outs, node.path, { axis: op.axis + 1 });
  },
  split: ({ b, node, op, ins, outs }) => {
    b.node('Split', [ins[0], b.ints(`${node.path}.sizes`, op.sizes)], outs, node.path, { axis: op.axis + 1 });
  },
  reduce: ({ b, node, op, ins, outs, outShapes }) => {
    // Reduced with kept axes, then viewed as the spec's output shape (kept or dropped axes alike).
    const axes = Array.from({ length: op.count }, (_, i) => op.axis + 1 + i);
    const kept = b.fresh(`${node.path}.reduced`);
    if (op.mean) b.node('ReduceMean', ins, [kept], node.path, { axes, keepdims: 1 });
    else b.node('ReduceSum', [ins[0], b.ints(`${node.path}.axes`, axes)], [kept], node.path, { keepdims: 1 });
    reshapeTo(b, kept, outShapes[0], outs[0], node.path);
  },
};

/** The op kinds the ONNX exporter translates. */
export const ONNX_OP_KINDS = Object.keys(TRANSLATORS) as OpSpec['kind'][];

function valueInfo(name: string, perSample: number[]): InstanceType<typeof onnx.ValueInfoProto> {
  const dim = [{ dimParam: 'batch' }, ...perSample.map((d) => ({ dimValue: d }))];
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: FLOAT, shape: { dim } } } });
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * The ONNX bytes of a graph with the given parameter and buffer values (by name). Inputs are named
 * `input` (`input0`, `input1`, ... for several), the output `output`; every dimension but the
 * batch is fixed. Throws ExportError naming an op with no ONNX mapping (path and kind), or a
 * tensor that is missing or of the wrong size.
 */
export function onnxFromGraph(spec: GraphSpec, tensors: ReadonlyMap<string, ArrayLike<number>>, opts: OnnxExportOptions = {}): Uint8Array {
  const b = new OnnxBuilder();
  for (const t of [...spec.params, ...spec.buffers]) {
    const v = tensors.get(t.name);
    if (!v) throw new ExportError(`ONNX export: no value for tensor ${t.name} [${t.shape.join(', ')}].`);
    if (v.length !== size(t.shape)) throw new ExportError(`ONNX export: tensor ${t.name} has ${v.length} values; its shape [${t.shape.join(', ')}] needs ${size(t.shape)}.`);
    b.floats(b.reserve(t.name), [...t.shape], Float32Array.from(v));
  }
  const names = new Map<number, string>();
  const inputs = spec.inputs.map((inp, i) => {
    const name = b.reserve(spec.inputs.length > 1 ? `input${i}` : 'input');
    names.set(inp.id, name);
    return valueInfo(name, inp.shape);
  });
  const outputName = b.reserve('output');
  if (names.has(spec.output)) {
    // A model whose output is its input: still a graph with one node.
    b.node('Identity', [names.get(spec.output)!], [outputName], 'output');
  }
  for (const node of spec.nodes) {
    const translate = TRANSLATORS[node.op.kind] as ((e: Emit<OpSpec['kind']>) => void) | undefined;
    if (!translate) throw new ExportError(`${node.path}: op kind "${node.op.kind}" has no ONNX mapping (the exporter knows ${ONNX_OP_KINDS.join(', ')}).`);
    const ins = node.inputs.map((id) => {
      const n = names.get(id);
      if (!n) throw new ExportError(`${node.path}: reads value ${id}, which no earlier op writes.`);
      return n;
    });
    const outs = node.outputs.map((id, i) => (id === spec.output ? outputName : b.fresh(node.outputs.length > 1 ? `${node.path}.${i}` : node.path)));
    translate({ b, node, op: node.op, ins, outs, inShapes: node.inputs.map((id) => spec.shapes[id]), outShapes: node.outputs.map((id) => spec.shapes[id]), batchOf: names.get(spec.inputs[0].id)! });
    node.outputs.forEach((id, i) => names.set(id, outs[i]));
  }
  if (!names.has(spec.output)) throw new ExportError(`ONNX export: no op writes the output value ${spec.output}.`);
  const graph = onnx.GraphProto.create({
    name: opts.name ?? 'webgpu-train',
    node: b.nodes,
    initializer: b.initializers,
    input: inputs,
    output: [valueInfo(outputName, spec.shapes[spec.output])],
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'webgpu-train',
    graph,
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The model's parameters and buffers, read from the GPU, by name. */
export async function readTensors(model: Model): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const t of [...model.params(), ...model.buffers()]) out.set(t.name, (await t.value.read()) as Float32Array);
  return out;
}

/**
 * A built model as ONNX bytes (inference semantics, dynamic batch; see onnxFromGraph). Works in
 * Node and in the browser.
 */
export async function exportOnnx(model: Model, opts: OnnxExportOptions = {}): Promise<Uint8Array> {
  return onnxFromGraph(model.spec(), await readTensors(model), opts);
}

/** Whether bytes look like an ONNX model (a ModelProto with a graph), to name the mix-up when one is given for safetensors. */
export function looksLikeOnnx(bytes: Uint8Array): boolean {
  try {
    const m = onnx.ModelProto.decode(bytes);
    return Boolean(m.graph) && Number(m.irVersion) > 0;
  } catch {
    return false;
  }
}
