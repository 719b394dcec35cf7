// Planning a model's graph for one batch size: the tensors between ops, where each gradient goes
// (written by its first contribution, added to by the rest), every op's dispatches in flat
// forward and backward lists, and memory shared between tensors whose lifetimes do not overlap.
// The result is replayed every step as one submission: no allocation, no readback.
import type { BufferArg, Dispatch, Engine } from '../gpu/engine.ts';
import { GPUBufferUsageFlags } from '../gpu/buffers.ts';
import type { Shape, Tensor } from '../gpu/tensor.ts';
import { scaleForward } from '../kernels/elementwise.ts';
import { GraphError, type Graph, type Node, type Value } from './graph.ts';
import type { GradOut, OpIO, OpPlan, Param } from './op.ts';

/** Dispatch counts and activation memory of a plan: what summaries and benchmarks report. */
export interface PlanStats {
  batch: number;
  dispatches: { forward: number; forwardEval: number; backward: number };
  /** Bytes of every planned tensor (activations, gradients, scratch) if each had its own buffer. */
  plannedBytes: number;
  /** Bytes of the buffers they share after lifetime planning. */
  reusedBytes: number;
  tensors: number;
  buffers: number;
}

/** Where one node's forward dispatches sit in a plan's training `forward` list. */
export interface ForwardSpan {
  node: Node;
  /** The node's outputs ([batch, ...shape] each), written once forward[start, end) has run. */
  outputs: Tensor[];
  start: number;
  end: number;
}

/** Everything one batch size needs: activations, gradients and the dispatches that connect them. */
export interface ModelPlan {
  batch: number;
  /** One per model input, [batch, ...inputShape], written by the data pipeline. */
  inputs: Tensor[];
  /** inputs[0]. */
  input: Tensor;
  /** [batch, ...outputShape]: the model's output (logits, predictions, or probabilities). */
  output: Tensor;
  /**
   * What the loss reads: the output, or, when the model ends with a Softmax and the loss is
   * softmax cross-entropy, the logits before it (the softmax is then absorbed by the loss).
   */
  lossInput: Tensor;
  /** Gradient of the loss with respect to lossInput, written by the loss kernel. */
  dOutput: Tensor;
  /** With `inputGradient`: the gradient with respect to each model input, [batch, ...inputShape]; else empty. */
  dInputs: Tensor[];
  /** The tensors of the values asked for with `keep`, readable after the passes. */
  kept: Map<Value, Tensor>;
  /** For each kept value, what its producing op offers to inspect (OpPlan.inspect), kept readable too. */
  inspected: Map<Value, Record<string, Tensor>>;
  forward: Dispatch[];
  forwardEval: Dispatch[];
  backward: Dispatch[];
  /**
   * Each node's place in `forward`, in order (a Softmax absorbed by the loss, which does not run
   * in training, has none). A dispatch inserted at a span's `end` (after the node's own, before
   * the next node's) may read the node's outputs without a change to the memory plan: they stay
   * live until the node's consumers have run, so no other tensor holds their memory then.
   */
  forwardSpans: ForwardSpan[];
  /** Checks before a training step is recorded (e.g. a batch too small for batch norm). */
  beforeStep(step: number): void;
  stats: PlanStats;
  dispose(): void;
}

/** A planned tensor's uses, as positions in the training and evaluation dispatch sequences. */
interface Lifetime {
  tensor: Tensor;
  train: [number, number] | null;
  eval: [number, number] | null;
}

const FAR = Number.MAX_SAFE_INTEGER;

function widen(span: [number, number] | null, at: number): [number, number] {
  return span ? [Math.min(span[0], at), Math.max(span[1], at)] : [at, at];
}

function overlaps(a: [number, number] | null, b: [number, number] | null): boolean {
  return a !== null && b !== null && a[0] <= b[1] && b[0] <= a[1];
}

/**
 * Plan `graph` (nodes in `order`, topologically sorted) for `batch` samples. `params` are the
 * model's parameters: each must receive a gradient. `stepValues` is the per-step uniform.
 */
export interface PlanOptions {
  /**
   * The loss applies softmax itself (softmax cross-entropy): a Softmax ending the model is then
   * absorbed by the loss in training (the loss reads the logits before it); evaluation still
   * computes the probabilities, which predictions read.
   */
  softmaxInLoss?: boolean;
  /**
   * Plan the gradient of the evaluation forward with respect to the model's inputs (saliency
   * maps): `forward` is then the evaluation forward (running statistics, no dropout), `backward`
   * its backward pass (ops whose evaluation differs from training are told so by
   * OpIO.evalBackward), and `dInputs` receives the gradients. The caller writes dOutput, e.g. a
   * one-hot of a class for the gradient of that output. Parameter gradients may be written along
   * the way; a training step writes them anew. Such a plan refuses to train.
   */
  inputGradient?: boolean;
  /**
   * Values whose tensors stay readable after the passes (no other tensor shares their memory),
   * with what their producing ops offer to inspect (a fused attention's weights).
   */
  keep?: Value[];
}

/** Whether a model's graph ends with a Softmax that a softmax cross-entropy loss can absorb. */
export function endsWithSoftmax(graph: Graph): boolean {
  const out = graph.outputs[0];
  return out.producer?.op.kind === 'Softmax' && out.consumers.length === 0;
}

export async function planGraph(e: Engine, graph: Graph, order: Node[], params: Param[], batch: number, stepValues: BufferArg, opts: PlanOptions = {}): Promise<ModelPlan> {
  const planned: Tensor[] = [];
  const make = (shape: Shape, label: string) => {
    const t = e.planned([batch, ...shape], label);
    planned.push(t);
    return t;
  };
  const full = (v: Value): number[] => [batch, ...v.shape];

  // Forward values: views where the op only reshapes.
  const value = new Map<Value, Tensor>();
  for (const v of graph.inputs) value.set(v, make(v.shape, v.name));
  for (const n of order) {
    for (const v of n.outputs) value.set(v, n.op.isView ? value.get(n.inputs[0])!.view(full(v), v.name) : make(v.shape, v.name));
  }
  const output = graph.outputs[0];
  // A softmax absorbed by the loss runs in evaluation only; the loss reads its input.
  const absorbed = opts.softmaxInLoss && endsWithSoftmax(graph) ? output.producer! : null;
  const lossValue = absorbed ? absorbed.inputs[0] : output;

  // Which values need a gradient: those computed from a parameter (or from an input, when its gradient is asked for).
  const requires = new Set<Value>(opts.inputGradient ? graph.inputs : []);
  const needsBackward = (n: Node) => n !== absorbed && (n.op.params().length > 0 || n.inputs.some((v) => requires.has(v)));
  for (const n of order) if (needsBackward(n)) n.outputs.forEach((v) => requires.add(v));
  if (!requires.has(lossValue)) throw new GraphError(`The model's output ${output} does not depend on any parameter: there is nothing to train.`);

  // Gradient contributions per value (one per consuming input edge, plus the loss for the output)
  // and per parameter (one per node using it).
  const contributions = new Map<Value, number>();
  const uses = new Map<Param, number>();
  for (const n of order) {
    if (!needsBackward(n)) continue;
    for (const v of n.inputs) if (requires.has(v)) contributions.set(v, (contributions.get(v) ?? 0) + 1);
    for (const p of n.op.params()) uses.set(p, (uses.get(p) ?? 0) + 1);
  }
  for (const p of params) {
    if (!uses.has(p)) throw new GraphError(`Parameter ${p.name} ${JSON.stringify(p.value.shape)} receives no gradient: no op of the model's forward uses it. Use it, or do not create it.`);
  }

  // Sinks, assigned in backward order: the first contribution writes, later ones add.
  const grad = new Map<Value, Tensor>();
  const dOutput = make(lossValue.shape, `d${lossValue.name}`);
  grad.set(lossValue, dOutput);
  const done = new Map<Value, number>([[lossValue, 1]]);
  contributions.set(lossValue, (contributions.get(lossValue) ?? 0) + 1);
  const paramDone = new Map<Param, number>();
  interface NodeSinks {
    dxs: (GradOut | null)[];
    params: Map<Param, GradOut>;
    /** Dispatches the planner adds after the op's backward: scratch added into the real sink. */
    after: { from: Tensor; to: Tensor; accumulate: boolean }[];
  }
  const sinks = new Map<Node, NodeSinks>();
  const reverse = [...order].reverse();
  for (const n of reverse) {
    if (!needsBackward(n)) continue;
    const dy = grad.get(n.outputs[0]);
    if (!dy) throw new GraphError(`${n.label}: its output's gradient was not planned before its backward pass (internal planning error).`);
    const s: NodeSinks = { dxs: [], params: new Map(), after: [] };
    n.inputs.forEach((v, i) => {
      if (!requires.has(v)) return void s.dxs.push(null);
      const first = (done.get(v) ?? 0) === 0;
      done.set(v, (done.get(v) ?? 0) + 1);
      const only = contributions.get(v) === 1;
      const identity = (n.op.isView && i === 0) || (n.op.passthrough?.(i) ?? false);
      if (identity && only) {
        // The gradient is exactly dy and nothing else adds to it: share dy's memory.
        grad.set(v, dy.view(full(v), `d${v.name}`));
        return void s.dxs.push(null);
      }
      if (!grad.has(v)) grad.set(v, make(v.shape, `d${v.name}`));
      const target = grad.get(v)!;
      if (n.op.isView && i === 0) {
        s.after.push({ from: dy.view(full(v), `${dy.label} as ${v.name}`), to: target, accumulate: !first });
        return void s.dxs.push(null);
      }
      if (!first && !n.op.accumulates) {
        const tmp = make(v.shape, `${n.path}.d${i}`);
        s.after.push({ from: tmp, to: target, accumulate: true });
        return void s.dxs.push({ tensor: tmp, accumulate: false });
      }
      s.dxs.push({ tensor: target, accumulate: !first });
    });
    for (const p of n.op.params()) {
      const first = (paramDone.get(p) ?? 0) === 0;
      paramDone.set(p, (paramDone.get(p) ?? 0) + 1);
      if (!first && !n.op.accumulates) {
        const tmp = e.planned(p.grad.shape, `${n.path}.d${p.name}`);
        planned.push(tmp);
        s.after.push({ from: tmp, to: p.grad, accumulate: true });
        s.params.set(p, { tensor: tmp, accumulate: false });
      } else s.params.set(p, { tensor: p.grad, accumulate: !first });
    }
    sinks.set(n, s);
  }

  // Plan every op in forward order.
  const opPlans = new Map<Node, { plan: OpPlan; after: Dispatch[] }>();
  const disposeAll = () => {
    for (const { plan, after } of opPlans.values()) {
      plan.dispose();
      after.forEach((d) => d.dispose());
    }
  };
  try {
    for (const n of order) {
      const s = sinks.get(n);
      const inputs = n.inputs.map((v) => value.get(v)!);
      const outputs = n.outputs.map((v) => value.get(v)!);
      const dys = n.outputs.map((v) => (s ? (grad.get(v) ?? null) : null));
      const dxs = s?.dxs ?? n.inputs.map(() => null);
      const io: OpIO = {
        batch,
        path: n.path,
        inputs,
        x: inputs[0],
        outputs,
        y: outputs[0],
        dys,
        dy: dys[0],
        dxs,
        dx: dxs[0] ?? null,
        grad: (p) => {
          const g = s?.params.get(p);
          if (!g) throw new GraphError(`${n.label}: asked for the gradient of ${p.name}, which it does not declare among its parameters.`);
          return g;
        },
        scratch: (shape, label) => {
          const t = e.planned(shape, label);
          planned.push(t);
          return t;
        },
        epilogue: n.epilogue,
        stepValues,
        evalBackward: opts.inputGradient ?? false,
      };
      const plan = await n.op.plan(e, io);
      const after: Dispatch[] = [];
      opPlans.set(n, { plan, after });
      for (const a of s?.after ?? []) after.push(await scaleForward(e, a.from, a.to, 1, { accumulate: a.accumulate }));
    }
  } catch (err) {
    disposeAll();
    throw err;
  }

  const forward = order.flatMap((n) => {
    if (n === absorbed) return [];
    const p = opPlans.get(n)!.plan;
    return opts.inputGradient ? (p.forwardEval ?? p.forward) : p.forward;
  });
  const forwardEval = order.flatMap((n) => {
    const p = opPlans.get(n)!.plan;
    return p.forwardEval ?? p.forward;
  });
  const backward = reverse.flatMap((n) => (sinks.has(n) ? [...opPlans.get(n)!.plan.backward, ...opPlans.get(n)!.after] : []));
  const forwardSpans: ForwardSpan[] = [];
  for (const n of order) {
    if (n === absorbed) continue;
    const start = forwardSpans.at(-1)?.end ?? 0;
    forwardSpans.push({ node: n, outputs: n.outputs.map((v) => value.get(v)!), start, end: start + opPlans.get(n)!.plan.forward.length });
  }

  const dInputs = opts.inputGradient ? graph.inputs.map((v) => grad.get(v)!) : [];
  const kept = new Map(
    (opts.keep ?? []).map((v) => {
      const t = value.get(v);
      if (!t) throw new GraphError(`keep: ${v} is not a value of this model's graph after fusion.`);
      return [v, t] as [Value, Tensor];
    }),
  );
  const inspected = new Map<Value, Record<string, Tensor>>();
  for (const v of kept.keys()) {
    const offered = v.producer ? opPlans.get(v.producer)?.plan.inspect : undefined;
    if (offered) inspected.set(v, offered);
  }
  const storages = assignMemory(e, planned, {
    forward,
    forwardEval,
    backward,
    inputs: graph.inputs.map((v) => value.get(v)!),
    outputs: [value.get(output)!, value.get(lossValue)!, ...dInputs, ...kept.values(), ...[...inspected.values()].flatMap((r) => Object.values(r))],
    dOutput,
  });
  const plannedBytes = planned.reduce((s, t) => s + t.byteLength, 0);
  const stats: PlanStats = {
    batch,
    dispatches: { forward: forward.length, forwardEval: forwardEval.length, backward: backward.length },
    plannedBytes,
    reusedBytes: storages.reduce((s, b) => s + b.size, 0),
    tensors: planned.length,
    buffers: storages.length,
  };
  const inputs = graph.inputs.map((v) => value.get(v)!);
  return {
    batch,
    inputs,
    input: inputs[0],
    output: value.get(output)!,
    lossInput: value.get(lossValue)!,
    dOutput,
    dInputs,
    kept,
    inspected,
    forward,
    forwardEval,
    backward,
    forwardSpans,
    beforeStep: (step) => {
      if (opts.inputGradient) throw new Error('This plan computes input gradients of the evaluation forward (inputGradient); it cannot train.');
      for (const { plan } of opPlans.values()) plan.beforeStep?.(step);
    },
    stats,
    dispose: () => {
      disposeAll();
      for (const b of storages) e.releaseBuffer(b);
    },
  };
}

/**
 * Give every planned tensor memory: tensors whose uses do not overlap (in the training step or in
 * evaluation) share a buffer. Returns the buffers, which the plan owns.
 */
function assignMemory(e: Engine, planned: Tensor[], seq: { forward: Dispatch[]; forwardEval: Dispatch[]; backward: Dispatch[]; inputs: Tensor[]; outputs: Tensor[]; dOutput: Tensor }): GPUBuffer[] {
  const life = new Map<Tensor, Lifetime>();
  for (const t of planned) life.set(t, { tensor: t, train: null, eval: null });
  const touch = (d: Dispatch, at: number, which: 'train' | 'eval') => {
    for (const { tensor } of d.tensors()) {
      const l = life.get(tensor.root);
      if (l) l[which] = widen(l[which], at);
    }
  };
  // Positions: forward, then the loss (between forward and backward), then backward.
  const loss = seq.forward.length;
  seq.forward.forEach((d, i) => touch(d, i, 'train'));
  seq.backward.forEach((d, i) => touch(d, loss + 1 + i, 'train'));
  seq.forwardEval.forEach((d, i) => touch(d, i, 'eval'));
  const evalLoss = seq.forwardEval.length;
  // Inputs are written before the step; the outputs (the model's, what the loss reads, input
  // gradients and kept values) are read by the loss or after the step (predictions, the last
  // logits, saliency), in whichever sequence computes them; the loss writes the gradient.
  for (const t of seq.inputs) {
    const l = life.get(t.root)!;
    l.train = widen(widen(l.train, -1), l.train?.[1] ?? -1);
    l.eval = widen(widen(l.eval, -1), l.eval?.[1] ?? -1);
  }
  for (const t of seq.outputs) {
    const l = life.get(t.root)!;
    if (l.train) l.train = widen(widen(l.train, loss), FAR);
    if (l.eval) l.eval = widen(widen(l.eval, evalLoss), FAR);
  }
  const dOut = life.get(seq.dOutput.root)!;
  dOut.train = widen(dOut.train, loss);
  dOut.eval = widen(dOut.eval, evalLoss);

  const order = [...life.values()].sort((a, b) => (a.train?.[0] ?? FAR) - (b.train?.[0] ?? FAR) || (a.eval?.[0] ?? FAR) - (b.eval?.[0] ?? FAR));
  const groups: { bytes: number; members: Lifetime[] }[] = [];
  for (const l of order) {
    if (!l.train && !l.eval) {
      // Never used by a dispatch: it still needs memory, of its own.
      groups.push({ bytes: l.tensor.byteLength, members: [l] });
      continue;
    }
    const free = groups.filter((g) => g.members.every((m) => !overlaps(m.train, l.train) && !overlaps(m.eval, l.eval)));
    // Best fit: the smallest group already big enough, else the biggest (which then grows).
    const fits = free.filter((g) => g.bytes >= l.tensor.byteLength).sort((a, b) => a.bytes - b.bytes);
    const g = fits[0] ?? free.sort((a, b) => b.bytes - a.bytes)[0];
    if (g) {
      g.members.push(l);
      g.bytes = Math.max(g.bytes, l.tensor.byteLength);
    } else groups.push({ bytes: l.tensor.byteLength, members: [l] });
  }
  const buffers: GPUBuffer[] = [];
  try {
    for (const g of groups) {
      const names = g.members.map((m) => m.tensor.label);
      const label = names.length > 3 ? `${names.slice(0, 3).join(', ')} +${names.length - 3}` : names.join(', ');
      const b = e.pool.acquire(g.bytes, GPUBufferUsageFlags.storage, label);
      buffers.push(b);
      for (const m of g.members) m.tensor.bind(b);
    }
  } catch (err) {
    buffers.forEach((b) => e.releaseBuffer(b));
    throw err;
  }
  return buffers;
}
