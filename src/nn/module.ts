// Modules, PyTorch style: a module holds parameters and sub-modules (found from its properties)
// and says in `forward` what it computes, by calling sub-modules and functions on symbolic values.
// A model's forward is traced once when it is built; parameters are named by module path
// (`blocks.0.conv1.weight`, as in a PyTorch state_dict), which is also how errors name an op.
import type { Engine } from '../gpu/engine.ts';
import type { Shape } from '../gpu/tensor.ts';
import { initialize, type Initializer } from './init.ts';
import { trace, type Value } from './graph.ts';
import type { Param, StateTensor } from './op.ts';

export abstract class Module {
  /** Module path in its model (`blocks.0.conv1`); '' for the model itself. Set when the model is built. */
  path = '';
  private registered: { params: Param[]; buffers: StateTensor[] } = { params: [], buffers: [] };
  private traced = false;

  /** What this module computes, on symbolic values (shapes per sample). Called once per build. */
  abstract forward(...inputs: Value[]): Value;

  /** JSON-serialisable constructor arguments, to rebuild the module from a checkpoint; null when it cannot be. */
  config(): Record<string, unknown> | null {
    return null;
  }

  /** Sub-modules, named by property (`conv1`) or property and index (`blocks.0`), in declaration order. */
  children(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [key, v] of Object.entries(this)) {
      if (v instanceof Module) out.push([key, v]);
      else if (Array.isArray(v)) v.forEach((m, i) => m instanceof Module && out.push([`${key}.${i}`, m]));
    }
    return out;
  }

  /** This module and every module below it, with their paths, parents before children; each once. */
  modules(prefix = this.path): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const walk = (m: Module, path: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([path, m]);
      for (const [name, c] of m.children()) walk(c, path ? `${path}.${name}` : name);
    };
    walk(this, prefix);
    return out;
  }

  /** Parameters held by this module itself (not its children). */
  ownParams(): Param[] {
    return this.registered.params;
  }

  /** Saved non-trainable tensors held by this module itself. */
  ownBuffers(): StateTensor[] {
    return this.registered.buffers;
  }

  /** Every parameter of this module and its sub-modules, each once, in declaration order. */
  params(): Param[] {
    const seen = new Set<Param>();
    for (const [, m] of this.modules()) for (const p of m.ownParams()) seen.add(p);
    return [...seen];
  }

  /** Every saved non-trainable tensor (running statistics), each once. */
  buffers(): StateTensor[] {
    const seen = new Set<StateTensor>();
    for (const [, m] of this.modules()) for (const b of m.ownBuffers()) seen.add(b);
    return [...seen];
  }

  /** Number of trainable values. */
  get parameterCount(): number {
    return this.params().reduce((n, p) => n + p.value.size, 0);
  }

  /**
   * A parameter of this module, made (and initialised from the trace's seeded rng) during the
   * build; for modules whose parameters are not a layer's (a class token, a position embedding).
   */
  protected parameter(name: string, shape: Shape, init: Initializer | Float32Array, opts: { decay?: boolean; fanIn?: number; fanOut?: number } = {}): Param {
    const ctx = trace(`${this.path || this.constructor.name}: parameter "${name}"`);
    const e: Engine = ctx.engine;
    const n = shape.reduce((a, b) => a * b, 1);
    const data = init instanceof Float32Array ? init : initialize(init, n, opts.fanIn ?? shape.at(-1) ?? 1, opts.fanOut ?? shape[0] ?? 1, ctx.rng);
    const label = this.path ? `${this.path}.${name}` : name;
    const p: Param = { name, value: e.tensor(shape, data, label), grad: e.zeros(shape, `${label}.grad`), decay: opts.decay ?? true };
    this.registered.params.push(p);
    return p;
  }

  /**
   * Wrap `forward` so that ops created inside it are named under this module's path (and errors
   * say where they were made). Done once per module, when its model is built.
   */
  installTracing(): void {
    if (this.traced) return;
    this.traced = true;
    const inner = this.forward;
    const self = this;
    this.forward = function traced(...inputs: Value[]): Value {
      const ctx = trace(`${self.path || self.constructor.name}.forward`);
      ctx.paths.push(self.path);
      try {
        return inner.apply(self, inputs);
      } finally {
        ctx.paths.pop();
      }
    };
  }

  /** Free the GPU memory of every parameter and saved tensor. */
  dispose(): void {
    for (const p of this.params()) {
      p.value.dispose();
      p.grad.dispose();
    }
    for (const b of this.buffers()) b.value.dispose();
  }
}
