// model.py from a model's graph: a torch.nn.Module whose state_dict names and shapes are the
// engine's, so that `model.load_state_dict(tensors, strict=True)` takes our weights as they are.
// Layers whose parameters follow PyTorch's layout (a Dense's `P.weight` [out, in] and `P.bias`,
// a convolution's, a batch norm's four tensors) become nn.Linear / nn.Conv2d / BatchNorm2d at
// path P; any other parameter is an nn.Parameter at its own name, used through torch.nn.functional.
// Every op kind has one emitter below; a kind without one is refused by module path and kind.
import type { ActivationSpec, GraphSpec, NodeSpec, OpSpec } from '../ops/graph.ts';
import { ExportError } from './onnx.ts';

/** Python source of a number (a float keeps a decimal point or an exponent). */
export function pyNumber(v: number): string {
  if (!Number.isFinite(v)) throw new ExportError(`PyTorch export: ${v} is not a finite number.`);
  const s = String(v);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

const PY_KEYWORDS = new Set('False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield'.split(' '));
const isIdentifier = (s: string) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) && !PY_KEYWORDS.has(s);
/** Names nn.Module itself uses: a submodule or parameter so named cannot be set on a module. */
const MODULE_ATTRS = new Set(
  'training forward train eval to cuda cpu half float double type apply parameters buffers children modules named_parameters named_buffers named_children named_modules state_dict load_state_dict zero_grad register_buffer register_parameter add_module get_submodule get_parameter requires_grad_ extra_repr dump_patches call_super_init'.split(
    ' ',
  ),
);

/** A leaf layer module: its constructor call and the attributes that make a use of it the same layer. */
interface Leaf {
  path: string;
  ctor: string;
  /** Attribute names (last name components) the layer owns. */
  owns: Set<string>;
}

/** Where a name's module lives and what constructs it. */
interface TreeNode {
  path: string;
  leaf: Leaf | null;
  children: Map<string, TreeNode>;
  /** Raw parameters and buffers held directly: [attribute, shape, kind]. */
  raw: [string, number[], 'param' | 'buffer'][];
}

const split = (name: string): [string, string] => {
  const i = name.lastIndexOf('.');
  return i < 0 ? ['', name] : [name.slice(0, i), name.slice(i + 1)];
};

const shapeOf = (spec: GraphSpec, name: string): number[] => {
  const t = spec.params.find((p) => p.name === name) ?? spec.buffers.find((b) => b.name === name);
  if (!t) throw new ExportError(`PyTorch export: tensor ${name} is read by an op but is not a parameter or buffer of the model.`);
  return t.shape;
};

const tuple = (v: readonly number[]) => `(${v.join(', ')}${v.length === 1 ? ',' : ''})`;

/** The layer module an op would be, when its parameters follow PyTorch's layout; else null. */
function leafFor(spec: GraphSpec, op: OpSpec): Leaf | null {
  switch (op.kind) {
    case 'dense': {
      const [path, last] = split(op.weight);
      if (last !== 'weight' || (op.bias && op.bias !== `${path}.bias`) || !path) return null;
      const [out, inp] = shapeOf(spec, op.weight);
      return { path, ctor: `nn.Linear(${inp}, ${out}, bias=${op.bias ? 'True' : 'False'})`, owns: new Set(op.bias ? ['weight', 'bias'] : ['weight']) };
    }
    case 'conv2d': {
      const [path, last] = split(op.weight);
      if (last !== 'weight' || (op.bias && op.bias !== `${path}.bias`) || !path) return null;
      const [oc, ic, kh, kw] = shapeOf(spec, op.weight);
      return {
        path,
        ctor: `nn.Conv2d(${ic}, ${oc}, kernel_size=${tuple([kh, kw])}, stride=${tuple(op.stride)}, padding=${tuple(op.padding)}, bias=${op.bias ? 'True' : 'False'})`,
        owns: new Set(op.bias ? ['weight', 'bias'] : ['weight']),
      };
    }
    case 'batchnorm2d': {
      const [path, last] = split(op.weight);
      const names = [op.bias, op.runningMean, op.runningVar];
      if (last !== 'weight' || !path || names.join() !== ['bias', 'running_mean', 'running_var'].map((s) => `${path}.${s}`).join()) return null;
      const [c] = shapeOf(spec, op.weight);
      return { path, ctor: `BatchNorm2d(${c}, eps=${pyNumber(op.eps)}, momentum=${pyNumber(op.momentum)})`, owns: new Set(['weight', 'bias', 'running_mean', 'running_var']) };
    }
    case 'layernorm': {
      const [path, last] = split(op.weight);
      if (last !== 'weight' || !path || op.bias !== `${path}.bias`) return null;
      const [d] = shapeOf(spec, op.weight);
      return { path, ctor: `nn.LayerNorm(${d}, eps=${pyNumber(op.eps)})`, owns: new Set(['weight', 'bias']) };
    }
    default:
      return null;
  }
}

class ModuleTree {
  readonly root: TreeNode = { path: '', leaf: null, children: new Map(), raw: [] };
  /** Which nodes call their layer module (else they use the functional form). */
  readonly calls = new Set<NodeSpec>();

  constructor(readonly spec: GraphSpec) {
    const leaves = new Map<string, Leaf>();
    const covered = new Set<string>();
    for (const n of spec.nodes) {
      const leaf = leafFor(spec, n.op);
      if (!leaf) continue;
      const had = leaves.get(leaf.path);
      if (!had) {
        leaves.set(leaf.path, leaf);
        for (const a of leaf.owns) covered.add(`${leaf.path}.${a}`);
        this.calls.add(n);
      } else if (had.ctor === leaf.ctor) this.calls.add(n);
      // A second use with other attributes (another stride, say) reads the same tensors functionally.
    }
    for (const leaf of leaves.values()) this.at(leaf.path).leaf = leaf;
    const buffers = new Set(spec.buffers.map((b) => b.name));
    for (const t of [...spec.params, ...spec.buffers]) {
      if (covered.has(t.name)) continue;
      const [owner, attr] = split(t.name);
      this.at(owner).raw.push([attr, t.shape, buffers.has(t.name) ? 'buffer' : 'param']);
    }
  }

  /** The tree node at a module path (made, with its ancestors, on first use). */
  at(path: string): TreeNode {
    let node = this.root;
    if (!path) return node;
    for (const part of path.split('.')) {
      if (!part) throw new ExportError(`PyTorch export: "${path}" is not a module path.`);
      let next = node.children.get(part);
      if (!next) {
        next = { path: node.path ? `${node.path}.${part}` : part, leaf: null, children: new Map(), raw: [] };
        node.children.set(part, next);
      }
      node = next;
    }
    return node;
  }

  /** Python expression of a module path. Groups index by name; layers and the model use attributes. */
  expr(path: string): string {
    let e = 'self';
    let node = this.root;
    for (const part of path ? path.split('.') : []) {
      const child = node.children.get(part)!;
      e = node !== this.root && !node.leaf ? `${e}[${JSON.stringify(part)}]` : isIdentifier(part) ? `${e}.${part}` : `getattr(${e}, ${JSON.stringify(part)})`;
      node = child;
    }
    return e;
  }

  /** Python expression of a parameter or buffer by its name. */
  tensor(name: string): string {
    const [owner, attr] = split(name);
    const base = this.expr(owner);
    return isIdentifier(attr) ? `${base}.${attr}` : `getattr(${base}, ${JSON.stringify(attr)})`;
  }

  /** The __init__ statements that build the tree. */
  initLines(): string[] {
    const lines: string[] = [];
    const visit = (node: TreeNode) => {
      for (const [part, child] of node.children) {
        const where = child.path;
        if (MODULE_ATTRS.has(part)) throw new ExportError(`PyTorch export: module path ${where} ends in "${part}", a name nn.Module itself uses.`);
        const ctor = child.leaf ? child.leaf.ctor : 'Modules()';
        if (node === this.root && isIdentifier(part)) lines.push(`self.${part} = ${ctor}`);
        else lines.push(`${this.expr(node.path)}.add_module(${JSON.stringify(part)}, ${ctor})`);
        visit(child);
      }
      for (const [attr, shape, kind] of node.raw) {
        const where = node.path ? `${node.path}.${attr}` : attr;
        if (MODULE_ATTRS.has(attr)) throw new ExportError(`PyTorch export: tensor ${where} is named "${attr}", a name nn.Module itself uses.`);
        if (node.leaf?.owns.has(attr) || node.children.has(attr)) throw new ExportError(`PyTorch export: tensor ${where} clashes with a module or a layer's own tensor of that name.`);
        const value = `torch.zeros(${shape.join(', ')})`;
        const call = kind === 'param' ? `register_parameter(${JSON.stringify(attr)}, nn.Parameter(${value}))` : `register_buffer(${JSON.stringify(attr)}, ${value})`;
        lines.push(`${this.expr(node.path)}.${call}`);
      }
    };
    visit(this.root);
    return lines;
  }
}

/** Python expression applying an activation. */
function pyActivation(a: ActivationSpec, x: string): string {
  switch (a.kind) {
    case 'relu':
      return `F.relu(${x})`;
    case 'leaky_relu':
      return `F.leaky_relu(${x}, ${pyNumber(a.alpha)})`;
    case 'sigmoid':
      return `torch.sigmoid(${x})`;
    case 'tanh':
      return `torch.tanh(${x})`;
    case 'gelu':
      // The engine's GELU is the tanh approximation.
      return `F.gelu(${x}, approximate="tanh")`;
    default:
      throw new ExportError(`activation "${(a as ActivationSpec).kind}" has no PyTorch mapping.`);
  }
}

interface PyEmit<K extends OpSpec['kind']> {
  t: ModuleTree;
  node: NodeSpec;
  op: Extract<OpSpec, { kind: K }>;
  /** Input expressions. */
  ins: string[];
  inShapes: number[][];
  outShapes: number[][];
  /** Whether this node calls its layer module. */
  call: boolean;
  /** Whether this is the final Softmax that the training loss skips (it reads the logits). */
  lossSkips: boolean;
  /** The first model input, whose first dimension is the batch. */
  batchOf: string;
}

const batchShape = (x: string, shape: number[]) => `${x}.shape[0], ${shape.join(', ')}`;

/** One emitter per op kind: the Python expression of the node's output (a tuple for split). */
const EMITTERS: { [K in OpSpec['kind']]?: (e: PyEmit<K>) => string } = {
  dense: ({ t, op, ins, call }) => {
    const y = call ? `${t.expr(split(op.weight)[0])}(${ins[0]})` : `F.linear(${ins[0]}, ${t.tensor(op.weight)}, ${op.bias ? t.tensor(op.bias) : 'None'})`;
    return op.activation ? pyActivation(op.activation, y) : y;
  },
  conv2d: ({ t, op, ins, call }) => {
    const y = call ? `${t.expr(split(op.weight)[0])}(${ins[0]})` : `F.conv2d(${ins[0]}, ${t.tensor(op.weight)}, ${op.bias ? t.tensor(op.bias) : 'None'}, stride=${tuple(op.stride)}, padding=${tuple(op.padding)})`;
    return op.relu ? `F.relu(${y})` : y;
  },
  batchnorm2d: ({ t, op, ins, call }) => {
    const y = call
      ? `${t.expr(split(op.weight)[0])}(${ins[0]})`
      : `F.batch_norm(${ins[0]}, ${t.tensor(op.runningMean)}, ${t.tensor(op.runningVar)}, ${t.tensor(op.weight)}, ${t.tensor(op.bias)}, self.training, ${pyNumber(op.momentum)}, ${pyNumber(op.eps)})`;
    return op.relu ? `F.relu(${y})` : y;
  },
  layernorm: ({ t, op, ins, call, inShapes }) => (call ? `${t.expr(split(op.weight)[0])}(${ins[0]})` : `F.layer_norm(${ins[0]}, (${inShapes[0].at(-1)},), ${t.tensor(op.weight)}, ${t.tensor(op.bias)}, ${pyNumber(op.eps)})`),
  scaled_softmax: ({ op, ins }) => `F.softmax(${ins[0]} * ${pyNumber(op.factor)}, dim=-1)`,
  attention: ({ op, ins }) => `attention(${ins[0]}, ${op.heads}, ${pyNumber(op.factor)})`,
  // A parameter as a value of every sample (a class token): repeated over the batch of the first input.
  param: ({ t, op, batchOf, outShapes }) => `${t.tensor(op.param)}.expand(${batchOf}.shape[0], ${outShapes[0].join(', ')})`,
  slice: ({ op, ins }) => `${ins[0]}.narrow(${op.axis + 1}, ${op.start}, ${op.length})`,
  activation: ({ op, ins }) => pyActivation(op.activation, ins[0]),
  maxpool2d: ({ op, ins }) => `F.max_pool2d(${ins[0]}, ${tuple(op.kernel)}, ${tuple(op.stride)}, ${tuple(op.padding)})`,
  avgpool2d: ({ op, ins }) => `F.avg_pool2d(${ins[0]}, ${tuple(op.kernel)}, ${tuple(op.stride)}, ${tuple(op.padding)}, count_include_pad=${op.countIncludePad ? 'True' : 'False'})`,
  globalavgpool: ({ ins }) => `${ins[0]}.mean(dim=(2, 3))`,
  reshape: ({ ins, outShapes }) => `${ins[0]}.reshape(${batchShape(ins[0], outShapes[0])})`,
  dropout: ({ op, ins }) => `F.dropout(${ins[0]}, ${pyNumber(op.p)}, self.training)`,
  softmax: ({ ins, lossSkips }) => (lossSkips ? `F.softmax(${ins[0]}, dim=-1) if softmax else ${ins[0]}` : `F.softmax(${ins[0]}, dim=-1)`),
  add: ({ ins }) => `${ins[0]} + ${ins[1]}`,
  mul: ({ ins }) => `${ins[0]} * ${ins[1]}`,
  scale: ({ op, ins }) => `${ins[0]} * ${pyNumber(op.factor)}`,
  add_param: ({ t, op, ins }) => `${ins[0]} + ${t.tensor(op.param)}`,
  mul_param: ({ t, op, ins }) => `${ins[0]} * ${t.tensor(op.param)}`,
  matmul: ({ op, ins }) => `torch.matmul(${ins[0]}${op.transA ? '.transpose(-1, -2)' : ''}, ${ins[1]}${op.transB ? '.transpose(-1, -2)' : ''})`,
  permute: ({ op, ins }) => `${ins[0]}.permute(0, ${op.dims.map((d) => d + 1).join(', ')})`,
  concat: ({ op, ins }) => `torch.cat([${ins.join(', ')}], dim=${op.axis + 1})`,
  split: ({ op, ins }) => `torch.split(${ins[0]}, [${op.sizes.join(', ')}], dim=${op.axis + 1})`,
  reduce: ({ op, ins, outShapes }) => {
    const axes = Array.from({ length: op.count }, (_, i) => op.axis + 1 + i);
    return `${ins[0]}.${op.mean ? 'mean' : 'sum'}(dim=${tuple(axes)}).reshape(${batchShape(ins[0], outShapes[0])})`;
  },
};

/** The op kinds the PyTorch exporter translates. */
export const PYTORCH_OP_KINDS = Object.keys(EMITTERS) as OpSpec['kind'][];

export interface ModelSourceOptions {
  /**
   * Whether the model's last op is a Softmax layer that the training loss absorbs (it reads the
   * logits before it): forward then takes `softmax=False` for training.
   */
  lossSkipsFinalSoftmax?: boolean;
}

/** model.py's attention: the engine's fused op (q, k, v side by side in qkv), in plain torch. */
const ATTENTION_PY = [
  'def attention(qkv, heads, factor):',
  '    """softmax(factor * q kᵀ) v per head, with q, k and v side by side in qkv [batch, tokens, 3 * width]."""',
  '    batch, tokens, width3 = qkv.shape',
  '    q, k, v = qkv.reshape(batch, tokens, 3, heads, width3 // (3 * heads)).permute(2, 0, 3, 1, 4)',
  '    weights = F.softmax(torch.matmul(q, k.transpose(-1, -2)) * factor, dim=-1)',
  '    return torch.matmul(weights, v).transpose(1, 2).reshape(batch, tokens, width3 // 3)',
  '',
  '',
];

/** model.py for a graph: the Model class (see the file header) and the shapes it was built for. */
export function pytorchModelSource(spec: GraphSpec, opts: ModelSourceOptions = {}): string {
  const t = new ModuleTree(spec);
  const init = t.initLines();
  const inputNames = spec.inputs.length > 1 ? spec.inputs.map((_, i) => `input${i}`) : ['input'];
  const vars = new Map<number, string>(spec.inputs.map((inp, i) => [inp.id, inputNames[i]]));
  const last = spec.nodes.at(-1);
  const lossSkips = Boolean(opts.lossSkipsFinalSoftmax) && last?.op.kind === 'softmax' && last.outputs[0] === spec.output;
  const body: string[] = [];
  for (const node of spec.nodes) {
    const emit = EMITTERS[node.op.kind] as ((e: PyEmit<OpSpec['kind']>) => string) | undefined;
    if (!emit) throw new ExportError(`${node.path}: op kind "${node.op.kind}" has no PyTorch mapping (the exporter knows ${PYTORCH_OP_KINDS.join(', ')}).`);
    const ins = node.inputs.map((id) => {
      const v = vars.get(id);
      if (!v) throw new ExportError(`${node.path}: reads value ${id}, which no earlier op writes.`);
      return v;
    });
    let expr: string;
    try {
      expr = emit({
        t,
        node,
        op: node.op,
        ins,
        inShapes: node.inputs.map((id) => spec.shapes[id]),
        outShapes: node.outputs.map((id) => spec.shapes[id]),
        call: t.calls.has(node),
        lossSkips: lossSkips && node === last,
        batchOf: inputNames[0],
      });
    } catch (err) {
      if (err instanceof ExportError && !err.message.startsWith(node.path)) throw new ExportError(`${node.path}: ${err.message}`);
      throw err;
    }
    const outs = node.outputs.map((id) => `v${id}`);
    outs.forEach((v, i) => vars.set(node.outputs[i], v));
    const kind = node.op.kind === 'activation' ? `${node.op.activation.kind}` : node.op.kind;
    body.push(`${outs.join(', ')} = ${expr}  # ${node.path}: ${kind}`);
  }
  const result = vars.get(spec.output);
  if (!result) throw new ExportError(`PyTorch export: no op writes the output value ${spec.output}.`);
  const args = [...inputNames, ...(lossSkips ? ['softmax=True'] : [])].join(', ');
  const doc = lossSkips ? '        """The model\'s output; softmax=False returns the logits before the final Softmax (what the training loss reads)."""' : '        """The model\'s output for a batch (the batch dimension first)."""';
  return `${[
    '# Generated by webgpu-train (wgtrain export --format pytorch) from a model graph: the module tree',
    "# mirrors the engine's parameter names, so the engine's weights load with strict=True:",
    '#   model.load_state_dict(safetensors.torch.load_file("weights.safetensors"))',
    '# or, with torch alone: model.load_state_dict(wgtrain_io.read_safetensors("weights.safetensors")[0]).',
    'import torch',
    'import torch.nn as nn',
    'import torch.nn.functional as F',
    '',
    `INPUT_SHAPES = ${JSON.stringify(spec.inputs.map((i) => i.shape))}  # per sample, one per input`,
    `OUTPUT_SHAPE = ${JSON.stringify(spec.shapes[spec.output])}  # per sample`,
    `LOSS_SKIPS_FINAL_SOFTMAX = ${lossSkips ? 'True' : 'False'}`,
    '',
    '',
    'class Modules(nn.Module):',
    '    """A group of submodules at a module path (a block, a list of layers), indexed by name."""',
    '',
    '    def __getitem__(self, name):',
    '        return self._modules[name]',
    '',
    '',
    'class BatchNorm2d(nn.BatchNorm2d):',
    '    """nn.BatchNorm2d without the num_batches_tracked counter: the engine always sets a momentum, so the',
    '    counter has no use, and the state_dict holds the engine\'s four tensors."""',
    '',
    '    def __init__(self, *args, **kwargs):',
    '        super().__init__(*args, **kwargs)',
    '        self.num_batches_tracked = None',
    '',
    '    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):',
    "        # nn.BatchNorm2d would add the counter to a state_dict without one; a stock one's is dropped.",
    '        state_dict.pop(prefix + "num_batches_tracked", None)',
    '        nn.Module._load_from_state_dict(self, state_dict, prefix, *args, **kwargs)',
    '',
    '',
    ...(spec.nodes.some((n) => n.op.kind === 'attention') ? ATTENTION_PY : []),
    'class Model(nn.Module):',
    '    def __init__(self):',
    '        super().__init__()',
    ...init.map((l) => `        ${l}`),
    '',
    `    def forward(self, ${args}):`,
    doc,
    ...body.map((l) => `        ${l}`),
    `        return ${result}`,
  ].join('\n')}\n`;
}
