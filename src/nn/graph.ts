// The model as a graph: values (the tensors between ops, per sample: the batch dimension is
// implicit and comes first) and nodes (ops with any number of inputs). A model's graph is traced
// once, when the model is built: its `forward` runs on symbolic values, and every layer or
// function it calls appends a node. Planning then turns the graph into flat dispatch lists.
import type { Engine } from '../gpu/engine.ts';
import { shapeStr, type Shape } from '../ops/shape.ts';
import type { Rng } from '../util/random.ts';
import type { Op } from './op.ts';

/** A tensor of the graph: its per-sample shape, the node that computes it, and the nodes that read it. */
export class Value {
  readonly consumers: Node[] = [];

  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly shape: Shape,
    /** The node computing this value; null for a model input. */
    public producer: Node | null,
    /** How messages name it: the producing op's path, or the input's name. */
    readonly name: string,
  ) {}

  toString(): string {
    return `${this.name} ${shapeStr(this.shape)}`;
  }
}

/** Where an activation fused into its producer came from (kept for summaries). */
export interface FusedConsumer {
  path: string;
  kind: string;
}

/** One op applied to input values, giving output values. */
export class Node {
  /** An activation absorbed by this node's op (see Op.absorb), applied by its forward kernel. */
  epilogue: Epilogue | null = null;
  /** The consumers fused into this node, for summaries. */
  readonly fused: FusedConsumer[] = [];

  constructor(
    readonly id: number,
    readonly op: Op,
    readonly inputs: Value[],
    readonly outputs: Value[],
    /** Module path of the op, e.g. `blocks.0.conv1` or `blocks.0.add`: what errors and summaries show. */
    readonly path: string,
  ) {}

  /** `blocks.0.conv1 (Conv2d)`: how messages name the node. */
  get label(): string {
    return `${this.path} (${this.op.kind})`;
  }
}

/** An activation applied in a producer's epilogue. */
export interface Epilogue {
  activation: 'relu' | 'leaky_relu';
  alpha: number;
}

/** Thrown when a model's graph is malformed: names the op (by module path) or value at fault. */
export class GraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphError';
  }
}

export class Graph {
  readonly inputs: Value[] = [];
  readonly nodes: Node[] = [];
  outputs: Value[] = [];
  private nextValue = 0;
  private nextNode = 0;

  /** A model input of per-sample shape `shape`. */
  input(shape: Shape, name: string): Value {
    const v = new Value(this, this.nextValue++, [...shape], null, name);
    this.inputs.push(v);
    return v;
  }

  /** Append a node applying `op` to `inputs`; returns its outputs, one per shape. */
  node(op: Op, inputs: Value[], outputShapes: Shape[], path: string): Value[] {
    for (const [i, v] of inputs.entries()) {
      if (!(v instanceof Value)) throw new GraphError(`${path} (${op.kind}): input ${i} is not a value of the model being built (got ${describeThing(v)}).`);
      if (v.graph !== this) throw new GraphError(`${path} (${op.kind}): input ${i} (${v}) belongs to another model's graph; values cannot move between models.`);
    }
    const n = new Node(this.nextNode++, op, [...inputs], [], path);
    outputShapes.forEach((s, i) => n.outputs.push(new Value(this, this.nextValue++, [...s], n, outputShapes.length > 1 ? `${path}[${i}]` : path)));
    for (const v of inputs) v.consumers.push(n);
    this.nodes.push(n);
    return n.outputs;
  }

  /** Nodes in an order where every node comes after the producers of its inputs; throws on a cycle. */
  topologicalOrder(): Node[] {
    const state = new Map<Node, 'visiting' | 'done'>();
    const order: Node[] = [];
    const visit = (n: Node, trail: Node[]) => {
      const s = state.get(n);
      if (s === 'done') return;
      if (s === 'visiting') {
        const cycle = [...trail.slice(trail.indexOf(n)), n].map((m) => m.label).join(' -> ');
        throw new GraphError(`The model's graph has a cycle: ${cycle}.`);
      }
      state.set(n, 'visiting');
      for (const v of n.inputs) if (v.producer) visit(v.producer, [...trail, n]);
      state.set(n, 'done');
      order.push(n);
    };
    for (const n of this.nodes) visit(n, []);
    return order;
  }

  /**
   * Refuse what cannot be trained: a value computed but never used, an input that nothing reads,
   * an output computed from an input that is not the model's. Messages name the op or value.
   */
  validate(): void {
    if (!this.outputs.length) throw new GraphError('The model has no output: forward() must return a value.');
    const outputs = new Set(this.outputs);
    for (const [i, v] of this.outputs.entries()) {
      if (!(v instanceof Value) || v.graph !== this) throw new GraphError(`Output ${i} of forward() is not a value of this model's graph (got ${describeThing(v)}).`);
    }
    for (const n of this.nodes) {
      for (const v of n.outputs) {
        if (!v.consumers.length && !outputs.has(v)) {
          throw new GraphError(`${n.label} computes ${v} but nothing uses it: use it, or do not compute it.`);
        }
      }
    }
    for (const v of this.inputs) {
      if (!v.consumers.length && !outputs.has(v)) throw new GraphError(`Model input "${v.name}" ${shapeStr(v.shape)} is never used: the output does not depend on it.`);
    }
    this.topologicalOrder();
  }
}

function describeThing(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return typeof v;
}

// ---- tracing ------------------------------------------------------------------------------------

/** What ops need while a model's forward is traced: the graph, the engine for parameters, a seeded rng. */
export interface TraceContext {
  graph: Graph;
  engine: Engine;
  rng: Rng;
  /** Module paths entered, innermost last. */
  paths: string[];
  /** How many ops of each name each module path created so far (for unique op paths). */
  counters: Map<string, number>;
}

let current: TraceContext | null = null;

/** The trace in progress; throws outside a model's build. */
export function trace(what: string): TraceContext {
  if (!current) throw new GraphError(`${what} can only be used inside a model's forward(), while the model is built (model.build(engine, inputShape)).`);
  return current;
}

/** Run `fn` with `ctx` as the current trace (nested builds are refused). */
export function withTrace<T>(ctx: TraceContext, fn: () => T): T {
  if (current) throw new GraphError('A model cannot be built while another model is being built (build models one after the other).');
  current = ctx;
  try {
    return fn();
  } finally {
    current = null;
  }
}

/**
 * A unique path for an op named `name` created by functional code in the module at the top of
 * the trace: `blocks.0.add`, then `blocks.0.add_1`, ...
 */
export function opPath(ctx: TraceContext, name: string): string {
  const parent = ctx.paths.at(-1) ?? '';
  const key = `${parent}|${name}`;
  const n = ctx.counters.get(key) ?? 0;
  ctx.counters.set(key, n + 1);
  const local = n ? `${name}_${n}` : name;
  return parent ? `${parent}.${local}` : local;
}
