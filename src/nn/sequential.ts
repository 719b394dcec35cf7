// A network of layers in sequence: builds them in order (checking shapes, naming each layer),
// fuses a ReLU-like activation into the Dense layer before it (a ReLU into a Conv2d before it),
// and plans the whole forward and backward pass for a batch size as flat dispatch lists that the
// trainer replays every step.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import { shapeSize, shapeStr, type Shape, type Tensor } from '../gpu/tensor.ts';
import { Rng } from '../util/random.ts';
import { Activation, Flatten } from './activations.ts';
import { Conv2d } from './conv.ts';
import { Dense } from './dense.ts';
import { Layer, type Buffer, type LayerPlan, type Param } from './layer.ts';

/** Everything one batch size needs: activations, gradients and the dispatches that connect them. */
export interface NetworkPlan {
  batch: number;
  /** [batch, ...inputShape], written by the data pipeline. */
  input: Tensor;
  /** [batch, ...outputShape], the logits/predictions. */
  output: Tensor;
  /** Gradient of the loss w.r.t. output, written by the loss kernel. */
  dOutput: Tensor;
  forward: Dispatch[];
  forwardEval: Dispatch[];
  backward: Dispatch[];
  beforeStep(step: number): void;
  dispose(): void;
}

export interface BuildOptions {
  /** Seed for weight initialisation and dropout masks. Default 0. */
  seed?: number;
}

export class Network {
  engine: Engine | null = null;
  inputShape: Shape = [];
  outputShape: Shape = [];
  seed = 0;
  private plans = new Map<number, NetworkPlan>();

  constructor(readonly layers: Layer[]) {
    if (!layers.length) throw new Error('A model needs at least one layer.');
  }

  get built(): boolean {
    return this.engine !== null;
  }

  /** Build every layer for a per-sample input shape (e.g. [1, 28, 28]). Throws naming the layer and shapes. */
  async build(e: Engine, inputShape: Shape, opts: BuildOptions = {}): Promise<this> {
    if (this.engine) throw new Error('Model is already built.');
    this.seed = opts.seed ?? 0;
    const rng = new Rng(this.seed);
    let shape: Shape = [...inputShape];
    this.inputShape = shape;
    try {
      this.layers.forEach((layer, i) => {
        layer.name = `${i}:${layer.kind}`;
        shape = layer.build(e, shape, rng);
      });
    } catch (err) {
      for (const l of this.layers) l.dispose();
      throw err;
    }
    this.outputShape = shape;
    this.fuseActivations();
    this.engine = e;
    return this;
  }

  private fuseActivations(): void {
    for (let i = 0; i + 1 < this.layers.length; i++) {
      const a = this.layers[i];
      const b = this.layers[i + 1];
      if (a instanceof Dense && !a.opts.activation && b instanceof Activation && (b.activation === 'relu' || b.activation === 'leaky_relu')) {
        a.fusedActivation = { activation: b.activation, alpha: b.alpha };
        b.fused = true;
      } else if (a instanceof Conv2d && !a.opts.activation && b instanceof Activation && b.activation === 'relu') {
        a.fusedRelu = true;
        b.fused = true;
      }
    }
  }

  /** Parameters named `layers.{i}.{name}` (PyTorch state_dict style). */
  params(): Param[] {
    return this.layers.flatMap((l, i) => l.params().map((p) => ({ ...p, name: `layers.${i}.${p.name}` })));
  }

  buffers(): Buffer[] {
    return this.layers.flatMap((l, i) => l.buffers().map((b) => ({ ...b, name: `layers.${i}.${b.name}` })));
  }

  get parameterCount(): number {
    return this.params().reduce((n, p) => n + p.value.size, 0);
  }

  private isPassthrough(l: Layer): boolean {
    return l instanceof Flatten || (l instanceof Activation && l.fused);
  }

  /** The plan for a batch size: made once (compiling kernels on first use), then cached. */
  async plan(batch: number): Promise<NetworkPlan> {
    const e = this.engine;
    if (!e) throw new Error('Build the model before using it.');
    const cached = this.plans.get(batch);
    if (cached) return cached;
    const L = this.layers.length;
    const owned: Tensor[] = [];
    const alloc = (shape: Shape, label: string) => {
      const t = e.tensor(shape, undefined, label);
      owned.push(t);
      return t;
    };
    const acts: Tensor[] = [alloc([batch, ...this.inputShape], 'input')];
    for (let i = 0; i < L; i++) {
      const l = this.layers[i];
      const shape = [batch, ...l.outputShape];
      acts.push(this.isPassthrough(l) ? acts[i].view(shape, `${l.name}.y`) : alloc(shape, `${l.name}.y`));
    }
    // dx is only needed where some earlier layer has parameters.
    const needDx = this.layers.map((_, i) => this.layers.slice(0, i).some((l) => l.params().length > 0));
    const grads: (Tensor | null)[] = new Array(L + 1).fill(null);
    grads[L] = alloc([batch, ...this.outputShape], 'doutput');
    for (let i = L - 1; i >= 0; i--) {
      if (!needDx[i]) continue;
      const l = this.layers[i];
      const shape = [batch, ...l.inputShape];
      grads[i] = this.isPassthrough(l) ? grads[i + 1]!.view(shape, `${l.name}.dx`) : alloc(shape, `${l.name}.dx`);
    }
    const layerPlans: LayerPlan[] = [];
    try {
      for (let i = 0; i < L; i++) {
        layerPlans.push(await this.layers[i].plan(e, { batch, x: acts[i], y: acts[i + 1], dy: grads[i + 1]!, dx: grads[i] }));
      }
    } catch (err) {
      layerPlans.forEach((p) => p.dispose());
      owned.forEach((t) => t.dispose());
      throw err;
    }
    const plan: NetworkPlan = {
      batch,
      input: acts[0],
      output: acts[L],
      dOutput: grads[L]!,
      forward: layerPlans.flatMap((p) => p.forward),
      forwardEval: layerPlans.flatMap((p) => p.forwardEval ?? p.forward),
      backward: [...layerPlans].reverse().flatMap((p) => p.backward),
      beforeStep: (step) => layerPlans.forEach((p) => p.beforeStep?.(step)),
      dispose: () => {
        layerPlans.forEach((p) => p.dispose());
        owned.forEach((t) => t.dispose());
      },
    };
    this.plans.set(batch, plan);
    return plan;
  }

  /** Free the per-batch-size plans (activations and dispatches); parameters stay. */
  clearPlans(): void {
    for (const p of this.plans.values()) p.dispose();
    this.plans.clear();
  }

  /**
   * A table of layers, output shapes and parameter counts, with GPU bytes held. With convolutions,
   * a last column says which algorithm each uses (direct or im2col + matmul: picked per shape).
   */
  summary(): string {
    const convs = this.layers.some((l) => l instanceof Conv2d);
    const rows = [['Layer', 'Output shape', 'Params', ...(convs ? ['Algorithm'] : [])]];
    rows.push(['input', shapeStr(this.inputShape), '0', ...(convs ? [''] : [])]);
    for (const l of this.layers) {
      const n = l.params().reduce((s, p) => s + p.value.size, 0);
      const row = [l.name + (l instanceof Activation && l.fused ? ' (fused)' : ''), shapeStr(l.outputShape), String(n)];
      if (convs) row.push(l instanceof Conv2d ? (l.algorithm ?? '') : '');
      rows.push(row);
    }
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    const line = (r: string[]) => r.map((v, c) => (c === 2 ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join('  ').trimEnd();
    const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
    const total = this.parameterCount;
    out.push(`Total parameters: ${total.toLocaleString('en-US')} (${((total * 4) / 1024 / 1024).toFixed(2)} MiB f32)`);
    if (this.engine) out.push(`GPU memory held: ${(this.engine.bytesHeld / 1024 / 1024).toFixed(2)} MiB`);
    return out.join('\n');
  }

  /** Per-sample input size (product of inputShape). */
  get inputSize(): number {
    return shapeSize(this.inputShape);
  }

  /** Free everything this network holds on the GPU. */
  dispose(): void {
    this.clearPlans();
    for (const l of this.layers) l.dispose();
  }
}
