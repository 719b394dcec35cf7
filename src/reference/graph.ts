// CPU reference training of any model graph, from its plain-data description (src/ops/graph.ts):
// every op's forward and backward with the reference kernels, gradients summed where a value or a
// parameter is used more than once (each contribution computed alone, then added: llm.c's `+=`),
// a loss, and an optimizer step. Tests train the same graph from the same weights on the GPU and
// here and compare step by step; finite differences check the gradients it computes.
import type { GraphSpec, NodeSpec, OpSpec } from '../ops/graph.ts';
import { dropoutStepSeed } from '../ops/step.ts';
import { activationBackward, activationForward } from './activation.ts';
import { attentionBackward, attentionForward, type AttentionSizes } from './attention.ts';
import { batchNormBackward, batchNormForwardEval, batchNormForwardTrain } from './batchnorm.ts';
import { clipByGlobalNorm } from './clip.ts';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward } from './conv2d.ts';
import { layerNormBackward, layerNormForward, layerNormParamGrad } from './layernorm.ts';
import { dropoutBackward, dropoutForward } from './dropout.ts';
import { addForward, mulBackward, mulForward, scaleForward } from './elementwise.ts';
import type { HostTensor } from './host.ts';
import { bceLogits, mse, softmaxCrossEntropy } from './loss.ts';
import { batchedMatmul, batchedMatmulBackward, biasGrad, matmul } from './matmul.ts';
import { adamUpdate, sgdUpdate } from './optim.ts';
import { permute, permuteBackward } from './permute.ts';
import { avgPool2dBackward, avgPool2dForward, globalAvgPoolBackward, globalAvgPoolForward, maxPool2dBackward, maxPool2dForward } from './pool.ts';
import { broadcastAxes, reduceAxes } from './reduce.ts';
import { sliceFrom, sliceInto } from './slice.ts';
import { softmaxBackward, softmaxForward } from './softmax.ts';

type Floats = Float32Array | Float64Array;

/** The optimizer of a reference training step, with the GPU optimizers' settings. */
export type RefOptimizer = { kind: 'sgd'; lr: number; momentum: number; nesterov?: boolean; weightDecay?: number } | { kind: 'adam' | 'adamw'; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };

export type RefLoss = 'softmax_cross_entropy' | 'mse' | 'bce_logits';

/** Training settings beyond the loss and the optimizer. */
export interface RefTrainOptions {
  /** Softmax cross-entropy's label smoothing. */
  labelSmoothing?: number;
  /** Clip the gradients to this global L2 norm before the update. */
  clipNorm?: number;
}

/** A trainable tensor of the reference: value, gradient of the last backward pass, optimizer state. */
export interface RefGraphParam {
  name: string;
  shape: number[];
  value: Floats;
  grad: Floats;
  decay: boolean;
  state: [Floats, Floats];
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** What a node's forward pass keeps for its backward pass. */
interface Saved {
  mask?: Floats;
  argmax?: HostTensor;
  mean?: HostTensor;
  invstd?: HostTensor;
  /** Attention's softmax output, [B, heads, T, T]. */
  weights?: HostTensor;
}

/** Rows of a tensor normalised over its last dimension (layer norm), and that dimension. */
const rowsOf = (t: HostTensor): [number, number] => [t.data.length / t.shape.at(-1)!, t.shape.at(-1)!];

export class RefGraph {
  readonly params = new Map<string, RefGraphParam>();
  readonly buffers = new Map<string, Floats>();
  private readonly make: (n: number) => Floats;

  /**
   * `params` and `buffers` by name, with the model's values. `float64` computes in double
   * precision (for finite differences); otherwise in float32, like the GPU.
   */
  constructor(
    readonly spec: GraphSpec,
    params: Map<string, ArrayLike<number>>,
    buffers: Map<string, ArrayLike<number>> = new Map(),
    opts: { float64?: boolean } = {},
  ) {
    this.make = opts.float64 ? (n) => new Float64Array(n) : (n) => new Float32Array(n);
    for (const p of spec.params) {
      const v = params.get(p.name);
      if (!v) throw new Error(`RefGraph: no value given for parameter ${p.name}.`);
      if (v.length !== prod(p.shape)) throw new Error(`RefGraph: parameter ${p.name} has ${v.length} values for shape [${p.shape.join(', ')}].`);
      const n = v.length;
      const value = this.make(n);
      value.set(v);
      this.params.set(p.name, { name: p.name, shape: [...p.shape], value, grad: this.make(n), decay: p.decay, state: [this.make(n), this.make(n)] });
    }
    for (const b of spec.buffers) {
      const v = buffers.get(b.name);
      if (!v) throw new Error(`RefGraph: no value given for buffer ${b.name}.`);
      const t = this.make(v.length);
      t.set(v);
      this.buffers.set(b.name, t);
    }
  }

  private tensor(shape: readonly number[], data?: Floats): HostTensor {
    return { shape: [...shape], data: data ?? this.make(prod(shape)) };
  }

  private param(name: string, shape?: readonly number[]): HostTensor {
    const p = this.params.get(name);
    if (!p) throw new Error(`RefGraph: unknown parameter ${name}.`);
    return { shape: shape ? [...shape] : p.shape, data: p.value };
  }

  private paramGrad(name: string): Floats {
    return this.params.get(name)!.grad;
  }

  private buffer(name: string, shape: readonly number[]): HostTensor {
    const b = this.buffers.get(name);
    if (!b) throw new Error(`RefGraph: unknown buffer ${name}.`);
    return { shape: [...shape], data: b };
  }

  /**
   * The forward pass for `batch` samples (one array per model input). `train`: batch statistics and
   * dropout at `step`. Returns every value (with the batch dimension) and what backward needs.
   */
  forward(inputs: ArrayLike<number>[], batch: number, train: boolean, step = 0): { values: Map<number, HostTensor>; saved: Map<NodeSpec, Saved> } {
    const values = new Map<number, HostTensor>();
    const saved = new Map<NodeSpec, Saved>();
    this.spec.inputs.forEach((inp, i) => {
      const t = this.tensor([batch, ...inp.shape]);
      if (inputs[i].length !== t.data.length) throw new Error(`RefGraph: input ${i} has ${inputs[i].length} values; [${t.shape.join(', ')}] needs ${t.data.length}.`);
      t.data.set(inputs[i]);
      values.set(inp.id, t);
    });
    for (const n of this.spec.nodes) {
      const xs = n.inputs.map((id) => values.get(id)!);
      const ys = n.outputs.map((id) => this.tensor([batch, ...this.spec.shapes[id]]));
      const s: Saved = {};
      this.forwardNode(n.op, xs, ys, s, train, step);
      saved.set(n, s);
      n.outputs.forEach((id, i) => values.set(id, ys[i]));
    }
    return { values, saved };
  }

  private forwardNode(op: OpSpec, xs: HostTensor[], ys: HostTensor[], s: Saved, train: boolean, step: number): void {
    const [x] = xs;
    const [y] = ys;
    switch (op.kind) {
      case 'dense': {
        const w = this.param(op.weight);
        const [units, nIn] = w.shape;
        const rows = x.data.length / nIn;
        matmul(x.data, w.data, y.data, rows, units, nIn, { transB: true, bias: op.bias ? this.param(op.bias).data : undefined });
        if (op.activation) activationForward(op.activation.kind, y.data as Float32Array, y.data as Float32Array, op.activation.alpha);
        return;
      }
      case 'conv2d':
        conv2dForward(x, this.param(op.weight), op.bias ? this.param(op.bias) : null, y, { stride: op.stride, padding: op.padding, relu: op.relu });
        return;
      case 'batchnorm2d': {
        const C = x.shape[1];
        const [g, b, rm, rv] = [this.param(op.weight), this.param(op.bias), this.buffer(op.runningMean, [C]), this.buffer(op.runningVar, [C])];
        if (train) {
          s.mean = this.tensor([C]);
          s.invstd = this.tensor([C]);
          batchNormForwardTrain(x, g, b, y, s.mean, s.invstd, rm, rv, { eps: op.eps, momentum: op.momentum, relu: op.relu });
        } else batchNormForwardEval(x, g, b, rm, rv, y, { eps: op.eps, relu: op.relu });
        return;
      }
      case 'activation':
        activationForward(op.activation.kind, x.data as Float32Array, y.data as Float32Array, op.activation.alpha);
        return;
      case 'maxpool2d':
        s.argmax = this.tensor(y.shape);
        maxPool2dForward(x, y, s.argmax, op);
        return;
      case 'avgpool2d':
        avgPool2dForward(x, y, op);
        return;
      case 'globalavgpool':
        globalAvgPoolForward(x, { shape: [x.shape[0], x.shape[1]], data: y.data });
        return;
      case 'reshape':
        y.data.set(x.data);
        return;
      case 'dropout': {
        s.mask = this.make(x.data.length);
        dropoutForward(x.data as Float32Array, y.data as Float32Array, s.mask as Float32Array, { p: train ? op.p : 0, seed: dropoutStepSeed(op.seedBase, step) });
        return;
      }
      case 'softmax':
        softmaxForward(x.data, y.data, x.shape.at(-1)!);
        return;
      case 'scaled_softmax':
        softmaxForward(
          x.data.map((v) => op.factor * v),
          y.data,
          x.shape.at(-1)!,
        );
        return;
      case 'layernorm': {
        const [rows, D] = rowsOf(x);
        s.mean = this.tensor([rows]);
        s.invstd = this.tensor([rows]);
        layerNormForward({ shape: [rows, D], data: x.data }, this.param(op.weight), this.param(op.bias), { shape: [rows, D], data: y.data }, s.mean, s.invstd, { eps: op.eps });
        return;
      }
      case 'param': {
        const p = this.param(op.param);
        for (let i = 0; i < y.data.length; i++) y.data[i] = p.data[i % p.data.length];
        return;
      }
      case 'slice':
        sliceFrom(x, y, op.axis + 1, op.start);
        return;
      case 'add':
        addForward(xs[0], xs[1], y);
        return;
      case 'mul':
        mulForward(xs[0], xs[1], y);
        return;
      case 'scale':
        scaleForward(x, y, op.factor);
        return;
      case 'add_param':
        addForward(x, this.param(op.param), y);
        return;
      case 'mul_param':
        mulForward(x, this.param(op.param), y);
        return;
      case 'matmul':
        batchedMatmul(as3(xs[0]), as3(xs[1]), as3(y), op);
        return;
      case 'attention': {
        const z = attentionSizes(x, op);
        s.weights = this.tensor([z.batch, op.heads, z.tokens, z.tokens]);
        attentionForward(x.data, y.data, s.weights.data, z);
        return;
      }
      case 'permute':
        permute(x, y, [0, ...op.dims.map((d) => d + 1)]);
        return;
      case 'concat': {
        let start = 0;
        for (const t of xs) {
          sliceInto(t, y, op.axis + 1, start);
          start += t.shape[op.axis + 1];
        }
        return;
      }
      case 'split': {
        let start = 0;
        ys.forEach((t, i) => {
          sliceFrom(x, t, op.axis + 1, start);
          start += op.sizes[i];
        });
        return;
      }
      case 'reduce': {
        const g = reduceGeometry(x.shape, op.axis + 1, op.count);
        reduceAxes(x, y, { ...g, scale: op.mean ? 1 / g.reduce : 1 });
        return;
      }
    }
  }

  /**
   * Gradients of the loss for the output gradient `dOut`: every parameter's grad is overwritten
   * with the sum of its contributions; returns every value's gradient (summed over its consumers).
   */
  backward(values: Map<number, HostTensor>, saved: Map<NodeSpec, Saved>, dOut: HostTensor): Map<number, HostTensor> {
    const grads = new Map<number, HostTensor>([[this.spec.output, dOut]]);
    for (const p of this.params.values()) p.grad.fill(0);
    const addInto = (id: number, g: HostTensor) => {
      const t = grads.get(id);
      if (!t) grads.set(id, g);
      else for (let i = 0; i < t.data.length; i++) t.data[i] += g.data[i];
    };
    for (const n of [...this.spec.nodes].reverse()) {
      const dys = n.outputs.map((id) => grads.get(id));
      if (dys.some((d) => !d)) continue; // no gradient reaches this node
      const xs = n.inputs.map((id) => values.get(id)!);
      const ys = n.outputs.map((id) => values.get(id)!);
      const dxs = xs.map((x) => this.tensor(x.shape));
      this.backwardNode(n.op, xs, ys, dys as HostTensor[], dxs, saved.get(n)!);
      n.inputs.forEach((id, i) => addInto(id, dxs[i]));
    }
    return grads;
  }

  /** Computes dxs (fresh zeroed tensors) and adds the node's parameter gradients. */
  private backwardNode(op: OpSpec, xs: HostTensor[], ys: HostTensor[], dys: HostTensor[], dxs: HostTensor[], s: Saved): void {
    const [x] = xs;
    const [y] = ys;
    const [dy] = dys;
    const [dx] = dxs;
    const addGrad = (name: string, g: ArrayLike<number>) => {
      const t = this.paramGrad(name);
      for (let i = 0; i < t.length; i++) t[i] += g[i];
    };
    switch (op.kind) {
      case 'dense': {
        const w = this.param(op.weight);
        const [units, nIn] = w.shape;
        const rows = x.data.length / nIn;
        let dz = dy.data;
        if (op.activation) {
          dz = this.make(dy.data.length);
          // A fused activation is ReLU-like: its derivative is read off the output.
          activationBackward(op.activation.kind, y.data, dy.data, dz, op.activation.alpha);
        }
        matmul(dz, w.data, dx.data, rows, nIn, units);
        const dw = this.make(w.data.length);
        matmul(dz, x.data, dw, units, nIn, rows, { transA: true });
        addGrad(op.weight, dw);
        if (op.bias) {
          const db = this.make(units);
          biasGrad(dz, db, rows, units);
          addGrad(op.bias, db);
        }
        return;
      }
      case 'conv2d': {
        const w = this.param(op.weight);
        let dz = dy;
        if (op.relu) dz = { shape: dy.shape, data: dy.data.map((v, i) => (y.data[i] > 0 ? v : 0)) };
        const geometry = { stride: op.stride, padding: op.padding };
        conv2dBackwardInput(dz, w, dx, geometry);
        const dw = this.tensor(w.shape);
        const db = op.bias ? this.tensor([w.shape[0]]) : null;
        conv2dBackwardWeight(x, dz, dw, db, geometry);
        addGrad(op.weight, dw.data);
        if (op.bias && db) addGrad(op.bias, db.data);
        return;
      }
      case 'batchnorm2d': {
        const C = x.shape[1];
        const dg = this.tensor([C]);
        const db = this.tensor([C]);
        batchNormBackward(x, dy, this.param(op.weight), s.mean!, s.invstd!, dx, dg, db, { reluOutput: op.relu ? y : undefined });
        addGrad(op.weight, dg.data);
        addGrad(op.bias, db.data);
        return;
      }
      case 'activation':
        activationBackward(op.activation.kind, x.data, dy.data, dx.data, op.activation.alpha);
        return;
      case 'maxpool2d':
        maxPool2dBackward(dy, s.argmax!, dx, op);
        return;
      case 'avgpool2d':
        avgPool2dBackward(dy, dx, op);
        return;
      case 'globalavgpool':
        globalAvgPoolBackward({ shape: [x.shape[0], x.shape[1]], data: dy.data }, dx);
        return;
      case 'reshape':
        dx.data.set(dy.data);
        return;
      case 'dropout':
        dropoutBackward(dy.data, s.mask!, dx.data);
        return;
      case 'softmax':
        softmaxBackward(y.data, dy.data, dx.data, y.shape.at(-1)!);
        return;
      case 'scaled_softmax':
        softmaxBackward(y.data, dy.data, dx.data, y.shape.at(-1)!);
        for (let i = 0; i < dx.data.length; i++) dx.data[i] *= op.factor;
        return;
      case 'layernorm': {
        const [rows, D] = rowsOf(x);
        const as2 = (t: HostTensor): HostTensor => ({ shape: [rows, D], data: t.data });
        layerNormBackward(as2(x), as2(dy), this.param(op.weight), s.mean!, s.invstd!, as2(dx));
        const dg = this.tensor([D]);
        const db = this.tensor([D]);
        layerNormParamGrad(as2(x), as2(dy), s.mean!, s.invstd!, dg, db);
        addGrad(op.weight, dg.data);
        addGrad(op.bias, db.data);
        return;
      }
      case 'param': {
        const g = this.make(this.param(op.param).data.length);
        for (let i = 0; i < dy.data.length; i++) g[i % g.length] += dy.data[i];
        addGrad(op.param, g);
        return;
      }
      case 'slice':
        // dx is fresh zeros: only the slice's part gets the gradient.
        sliceInto(dy, dx, op.axis + 1, op.start);
        return;
      case 'add':
        dxs[0].data.set(dy.data);
        dxs[1].data.set(dy.data);
        return;
      case 'mul':
        mulBackward(xs[0], xs[1], dy, dxs[0], dxs[1]);
        return;
      case 'scale':
        scaleForward(dy, dx, op.factor);
        return;
      case 'add_param': {
        dx.data.set(dy.data);
        const p = this.param(op.param);
        const g = this.make(p.data.length);
        for (let i = 0; i < dy.data.length; i++) g[i % g.length] += dy.data[i];
        addGrad(op.param, g);
        return;
      }
      case 'mul_param': {
        const p = this.param(op.param);
        const g = this.tensor(p.shape);
        mulBackward(x, p, dy, dx, g);
        addGrad(op.param, g.data);
        return;
      }
      case 'matmul':
        batchedMatmulBackward(as3(xs[0]), as3(xs[1]), as3(dy), as3(dxs[0]), as3(dxs[1]), op);
        return;
      case 'attention':
        attentionBackward(x.data, s.weights!.data, dy.data, dx.data, attentionSizes(x, op));
        return;
      case 'permute':
        permuteBackward(dy, dx, [0, ...op.dims.map((d) => d + 1)]);
        return;
      case 'concat': {
        let start = 0;
        xs.forEach((t, i) => {
          sliceFrom(dy, dxs[i], op.axis + 1, start);
          start += t.shape[op.axis + 1];
        });
        return;
      }
      case 'split': {
        let start = 0;
        dys.forEach((d, i) => {
          sliceInto(d, dx, op.axis + 1, start);
          start += op.sizes[i];
        });
        return;
      }
      case 'reduce': {
        const g = reduceGeometry(x.shape, op.axis + 1, op.count);
        broadcastAxes(dy, dx, { ...g, scale: op.mean ? 1 / g.reduce : 1 });
        return;
      }
    }
  }

  /** Mean loss of a batch and its gradient with respect to the output. */
  lossOf(out: HostTensor, targets: ArrayLike<number>, loss: RefLoss, opts: RefTrainOptions = {}): { loss: number; dOut: HostTensor } {
    const B = out.shape[0];
    const losses = this.make(B);
    const dOut = this.tensor(out.shape);
    const correct = this.make(B);
    if (loss === 'softmax_cross_entropy') softmaxCrossEntropy(out.data, targets, losses, dOut.data, correct, { labelSmoothing: opts.labelSmoothing });
    else if (loss === 'mse') mse(out.data, targets, losses, dOut.data);
    else bceLogits(out.data, targets, losses, dOut.data, correct);
    let sum = 0;
    for (const l of losses) sum += l;
    return { loss: sum / B, dOut };
  }

  /**
   * The loss of a batch in training mode at `step` and every parameter's gradient (in `params`);
   * nothing is updated (the running statistics of batch norm aside).
   */
  gradients(inputs: ArrayLike<number>[], targets: ArrayLike<number>, batch: number, loss: RefLoss, step = 0, opts: RefTrainOptions = {}): { loss: number; values: Map<number, HostTensor>; grads: Map<number, HostTensor> } {
    const { values, saved } = this.forward(inputs, batch, true, step);
    const l = this.lossOf(values.get(this.spec.output)!, targets, loss, opts);
    const grads = this.backward(values, saved, l.dOut);
    return { loss: l.loss, values, grads };
  }

  /** One training step: forward, loss, backward, optimizer update at `step` (0-based). Returns the mean loss. */
  trainStep(inputs: ArrayLike<number>[], targets: ArrayLike<number>, batch: number, loss: RefLoss, opt: RefOptimizer, step: number, opts: RefTrainOptions = {}): number {
    const l = this.gradients(inputs, targets, batch, loss, step, opts).loss;
    if (opts.clipNorm)
      clipByGlobalNorm(
        [...this.params.values()].map((p) => p.grad),
        opts.clipNorm,
      );
    for (const p of this.params.values()) {
      const wd = p.decay ? (opt.weightDecay ?? 0) : 0;
      const [w, g, s0, s1] = [p.value, p.grad, p.state[0], p.state[1]] as Float32Array[];
      if (opt.kind === 'sgd') sgdUpdate(w, g, s0, { lr: opt.lr, momentum: opt.momentum, nesterov: opt.nesterov ?? false, weightDecay: wd });
      else adamUpdate(w, g, s0, s1, { lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: wd, decoupled: opt.kind === 'adamw', step: step + 1 });
    }
    return l;
  }
}

/** The sizes of an attention node over qkv [B, T, 3D]. */
function attentionSizes(qkv: HostTensor, op: { heads: number; factor: number }): AttentionSizes {
  const [batch, tokens, d3] = qkv.shape;
  return { batch, tokens, width: d3 / 3, heads: op.heads, scale: op.factor };
}

/** A [..., r, c] tensor as [G, r, c]. */
function as3(t: HostTensor): HostTensor {
  const r = t.shape.at(-2)!;
  const c = t.shape.at(-1)!;
  return { shape: [t.data.length / (r * c), r, c], data: t.data };
}

/** x (batch first) viewed as [outer, reduce, inner] around axes [at, at + count). */
function reduceGeometry(shape: readonly number[], at: number, count: number): { outer: number; reduce: number; inner: number } {
  return { outer: prod(shape.slice(0, at)), reduce: prod(shape.slice(at, at + count)), inner: prod(shape.slice(at + count)) };
}
