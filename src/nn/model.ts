// A model: a module whose forward is traced into a graph when it is built (for per-sample input
// shapes), then planned once per batch size into flat forward and backward dispatch lists that
// a trainer replays every step. Write one by extending Model and writing `forward` (PyTorch
// style), or use Sequential for a chain of layers.
import type { BufferArg, Engine } from '../gpu/engine.ts';
import { GPUBufferUsageFlags } from '../gpu/buffers.ts';
import { checkShape, shapeSize, shapeStr, type Shape } from '../gpu/tensor.ts';
import { Rng } from '../util/random.ts';
import type { GraphSpec } from '../ops/graph.ts';
import { Graph, GraphError, withTrace, type Node, type TraceContext, type Value } from './graph.ts';
import { Module } from './module.ts';
import type { Param } from './op.ts';
import { endsWithSoftmax, planGraph, type ModelPlan, type PlanOptions } from './planner.ts';

export type { ModelPlan, PlanOptions, PlanStats } from './planner.ts';

export interface BuildOptions {
  /** Seed for weight initialisation and dropout masks. Default 0. */
  seed?: number;
}

/** Bytes of the per-step values uniform (shaders/_step.wgsl, plus room for an optimizer's values). */
export const STEP_VALUES_BYTES = 32;

export abstract class Model extends Module {
  engine: Engine | null = null;
  graph: Graph | null = null;
  /** Nodes in execution order, after fusion. */
  nodes: Node[] = [];
  inputShapes: Shape[] = [];
  outputShape: Shape = [];
  seed = 0;
  private stepBuffer: GPUBuffer | null = null;
  private plans = new Map<string, ModelPlan>();
  private planning = new Map<string, Promise<ModelPlan>>();

  get built(): boolean {
    return this.engine !== null;
  }

  /** The (first) input's per-sample shape. */
  get inputShape(): Shape {
    return this.inputShapes[0] ?? [];
  }

  /** Per-sample input size (product of inputShape). */
  get inputSize(): number {
    return shapeSize(this.inputShape);
  }

  /**
   * The per-step values uniform (step, flags, learning rate, optimizer values; shaders/_step.wgsl),
   * bound by the kernels that read them and written once per step by the trainer.
   */
  get stepValues(): BufferArg {
    if (!this.stepBuffer) throw new Error('Build the model before using it.');
    return { buffer: this.stepBuffer, byteLength: STEP_VALUES_BYTES, label: 'step values' };
  }

  /**
   * Trace `forward` for per-sample input shapes (e.g. [1, 28, 28]; one shape per input for a model
   * with several): layers allocate and initialise their parameters, the graph is checked (shapes,
   * unused values, unused inputs) and fused. Throws naming the op by module path.
   */
  async build(e: Engine, inputShape: Shape | Shape[], opts: BuildOptions = {}): Promise<this> {
    if (this.engine) throw new Error('Model is already built.');
    const shapes: Shape[] = Array.isArray(inputShape[0]) ? (inputShape as Shape[]) : [inputShape as Shape];
    shapes.forEach((s, i) => checkShape(s, `Model input ${i}`));
    this.seed = opts.seed ?? 0;
    for (const [path, m] of this.modules('')) {
      m.path = path;
      m.installTracing();
    }
    const graph = new Graph();
    const ctx: TraceContext = { graph, engine: e, rng: new Rng(this.seed), paths: [], counters: new Map() };
    try {
      const inputs = shapes.map((s, i) => graph.input(s, shapes.length > 1 ? `input${i}` : 'input'));
      const out = withTrace(ctx, () => this.forward(...inputs));
      graph.outputs = [out];
      graph.validate();
      this.nameParams(graph);
      this.nodes = fuse(graph, graph.topologicalOrder());
    } catch (err) {
      this.disposeNodes(graph);
      throw err;
    }
    this.graph = graph;
    this.inputShapes = shapes.map((s) => [...s]);
    this.outputShape = [...graph.outputs[0].shape];
    this.stepBuffer = e.pool.acquire(STEP_VALUES_BYTES, GPUBufferUsageFlags.uniform, 'step values');
    this.engine = e;
    return this;
  }

  /** Name parameters and saved tensors by module path; refuse parameters the module tree does not hold. */
  private nameParams(graph: Graph): void {
    for (const [path, m] of this.modules('')) {
      for (const p of [...m.ownParams(), ...m.ownBuffers()]) {
        if (path && !p.name.startsWith(`${path}.`)) p.name = `${path}.${p.name}`;
      }
    }
    const held = new Set(this.params());
    const used = new Set<Param>();
    for (const n of graph.nodes) {
      for (const p of n.op.params()) {
        used.add(p);
        if (!held.has(p)) {
          throw new GraphError(`${n.label} has parameters but is not held by the model: a module with parameters must be a property of the model or of one of its modules (set it in the constructor, not inside forward).`);
        }
      }
    }
    for (const p of held) {
      if (!used.has(p)) throw new GraphError(`Parameter ${p.name} ${shapeStr(p.value.shape)} receives no gradient: no op of the model's forward uses it. Use it, or do not create it.`);
    }
  }

  /** Free parameters of modules that the model does not hold (made inside forward), after a failed build. */
  private disposeNodes(graph: Graph): void {
    const seen = new Set<Param>();
    for (const n of graph.nodes) {
      for (const p of n.op.params()) {
        if (seen.has(p)) continue;
        seen.add(p);
        p.value.dispose();
        p.grad.dispose();
      }
    }
    this.dispose();
  }

  /**
   * The plan for a batch size (and whether the loss absorbs a final Softmax): made once, compiling
   * kernels on first use, then cached.
   */
  async plan(batch: number, opts: PlanOptions = {}): Promise<ModelPlan> {
    const e = this.engine;
    if (!e || !this.graph) throw new Error('Build the model before using it.');
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`Model.plan: batch must be a positive integer, got ${batch}.`);
    const softmaxInLoss = Boolean(opts.softmaxInLoss) && endsWithSoftmax(this.graph);
    const key = `${batch}:${softmaxInLoss ? 'softmax-in-loss' : ''}${opts.inputGradient ? ':input-gradient' : ''}${opts.keep?.length ? `:keep=${opts.keep.map((v) => v.id).join(',')}` : ''}`;
    const cached = this.plans.get(key);
    if (cached) return cached;
    let pending = this.planning.get(key);
    if (!pending) {
      pending = planGraph(e, this.graph, this.nodes, this.params(), batch, this.stepValues, { ...opts, softmaxInLoss });
      this.planning.set(key, pending);
      pending.then(
        (p) => {
          this.plans.set(key, p);
          this.planning.delete(key);
        },
        () => this.planning.delete(key),
      );
    }
    return pending;
  }

  /**
   * The graph as plain data (ops with their attributes and parameter names, value shapes), after
   * fusion: what the CPU reference trains from and exporters translate. Throws naming an op that
   * cannot describe itself.
   */
  spec(): GraphSpec {
    const g = this.graph;
    if (!g) throw new Error('Build the model before spec().');
    const shapes: Record<number, number[]> = {};
    for (const v of g.inputs) shapes[v.id] = [...v.shape];
    const nodes = this.nodes.map((n) => {
      if (!n.op.spec) throw new GraphError(`${n.label} cannot be described as plain data (its op has no spec()).`);
      for (const v of n.outputs) shapes[v.id] = [...v.shape];
      return { path: n.path, op: n.op.spec(n), inputs: n.inputs.map((v) => v.id), outputs: n.outputs.map((v) => v.id) };
    });
    return {
      inputs: g.inputs.map((v) => ({ id: v.id, shape: [...v.shape] })),
      shapes,
      nodes,
      output: g.outputs[0].id,
      params: this.params().map((p) => ({ name: p.name, shape: [...p.value.shape], decay: p.decay })),
      buffers: this.buffers().map((b) => ({ name: b.name, shape: [...b.value.shape] })),
    };
  }

  /** Free the per-batch-size plans (activations and dispatches); parameters stay. */
  clearPlans(): void {
    for (const p of this.plans.values()) p.dispose();
    this.plans.clear();
  }

  /** Plans made so far (their dispatch counts and memory appear in the summary). */
  planned(): ModelPlan[] {
    return [...this.plans.values()];
  }

  /**
   * A table of the graph's ops (module path, kind, output shape, parameters, and the algorithm of
   * each convolution), then totals: parameters, and for each planned batch size the dispatches per
   * step and the activation memory with and without lifetime reuse.
   */
  summary(): string {
    if (!this.graph) throw new Error('Build the model before summary().');
    const convs = this.nodes.some((n) => 'algorithm' in n.op);
    const rows = [['Op', 'Kind', 'Output shape', 'Params', ...(convs ? ['Algorithm'] : [])]];
    for (const v of this.graph.inputs) rows.push([v.name, 'input', shapeStr(v.shape), '0', ...(convs ? [''] : [])]);
    const counted = new Set<Param>();
    for (const n of this.nodes) {
      const fresh = n.op.params().filter((p) => !counted.has(p));
      fresh.forEach((p) => counted.add(p));
      const count = fresh.reduce((s, p) => s + p.value.size, 0);
      const fused = n.fused.map((f) => `+${f.kind}`).join('');
      const row = [n.path, n.op.kind + fused, shapeStr(n.outputs[0].shape), String(count)];
      if (convs) row.push('algorithm' in n.op ? String((n.op as { algorithm: unknown }).algorithm ?? '') : '');
      rows.push(row);
    }
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    const line = (r: string[]) =>
      r
        .map((v, c) => (c === 3 ? v.padStart(widths[c]) : v.padEnd(widths[c])))
        .join('  ')
        .trimEnd();
    const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
    const total = this.parameterCount;
    out.push(`Total parameters: ${total.toLocaleString('en-US')} (${((total * 4) / 1024 / 1024).toFixed(2)} MiB f32)`);
    const mib = (b: number) => `${(b / 1024 / 1024).toFixed(2)} MiB`;
    for (const p of this.planned().sort((a, b) => a.batch - b.batch)) {
      const s = p.stats;
      out.push(
        `Batch ${s.batch}: ${s.dispatches.forward} forward + ${s.dispatches.backward} backward dispatches per step (${s.dispatches.forwardEval} to evaluate); ` +
          `activations and gradients ${mib(s.reusedBytes)} in ${s.buffers} buffers (${mib(s.plannedBytes)} in ${s.tensors} without lifetime reuse)`,
      );
    }
    if (this.engine) out.push(`GPU memory held: ${mib(this.engine.bytesHeld)}`);
    return out.join('\n');
  }

  /** Free everything this model holds on the GPU. */
  dispose(): void {
    this.clearPlans();
    super.dispose();
    if (this.stepBuffer && this.engine) this.engine.releaseBuffer(this.stepBuffer);
    this.stepBuffer = null;
  }
}

/**
 * Fusion, as a pass over the graph: each op is asked whether it can absorb the only reader of its
 * output (a ReLU after a Dense or a convolution goes into its kernel's epilogue). An absorbed node
 * leaves the graph; its readers read the absorbing node's output instead. Returns the new order.
 */
export function fuse(graph: Graph, order: Node[]): Node[] {
  const outputs = new Set(graph.outputs);
  const removed = new Set<Node>();
  for (const n of order) {
    if (removed.has(n) || n.outputs.length !== 1 || !n.op.absorb) continue;
    const out = n.outputs[0];
    if (out.consumers.length !== 1 || outputs.has(out)) continue;
    const c = out.consumers[0];
    if (c.inputs.length !== 1 || c.outputs.length !== 1) continue;
    const ep = n.op.absorb(n, c);
    if (!ep) continue;
    n.epilogue = ep;
    n.fused.push({ path: c.path, kind: c.op.kind });
    const cOut: Value = c.outputs[0];
    out.consumers.splice(0, out.consumers.length, ...cOut.consumers);
    for (const d of cOut.consumers) {
      for (let i = 0; i < d.inputs.length; i++) if (d.inputs[i] === cOut) d.inputs[i] = out;
    }
    graph.outputs = graph.outputs.map((v) => (v === cOut ? out : v));
    removed.add(c);
  }
  const kept = graph.nodes.filter((n) => !removed.has(n));
  graph.nodes.splice(0, graph.nodes.length, ...kept);
  return order.filter((n) => !removed.has(n));
}
