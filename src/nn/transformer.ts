// Transformer layers and a small vision transformer (Dosovitskiy et al., "An Image is Worth 16x16
// Words"): layer normalisation over the last dimension, multi-head self-attention over
// [tokens, width] per sample, a pre-norm block (x + attn(ln(x)), then x + mlp(ln(x)) with GELU),
// a patch embedding (a convolution whose stride is its size, flattened to tokens), a learned
// position embedding, and a class token or the mean over tokens for the classifier.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Shape } from '../gpu/tensor.ts';
import { layerNormBackward, layerNormForward, layerNormParamGrad } from '../kernels/layernorm.ts';
import type { OpSpec } from '../ops/graph.ts';
import { Conv2d } from './conv.ts';
import { Dense } from './dense.ts';
import { add, attention, broadcast, concat, gelu, mean, permute, reshape, slice } from './functional.ts';
import { GraphError, type Value } from './graph.ts';
import { Layer, LayerShapeError } from './layer.ts';
import { Model } from './model.ts';
import { Module } from './module.ts';
import type { OpIO, OpPlan, Param } from './op.ts';

/** LayerNorm over the last dimension (PyTorch's nn.LayerNorm(D)): weight (gamma) and bias (beta) [D]. */
export class LayerNorm extends Layer {
  readonly kind = 'LayerNorm';
  readonly accumulates = true;
  gamma: Param | null = null;
  beta: Param | null = null;

  constructor(readonly eps = 1e-5) {
    super();
    if (!(eps > 0 && Number.isFinite(eps))) throw new Error(`LayerNorm: eps must be a positive number, got ${eps}.`);
  }

  build(e: Engine, inputShape: Shape): Shape {
    if (inputShape.length < 1) throw new LayerShapeError(this.name, inputShape, 'it normalises over the last dimension, and there is none.');
    const D = inputShape[inputShape.length - 1];
    // Norm scales and shifts are not decayed.
    this.gamma = { name: 'weight', value: e.tensor([D], new Float32Array(D).fill(1), `${this.at}.weight`), grad: e.zeros([D], `${this.at}.dweight`), decay: false };
    this.beta = { name: 'bias', value: e.zeros([D], `${this.at}.bias`), grad: e.zeros([D], `${this.at}.dbias`), decay: false };
    return [...inputShape];
  }

  ownParams(): Param[] {
    return [this.gamma, this.beta].filter((p): p is Param => p !== null);
  }

  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const D = this.inputShape[this.inputShape.length - 1];
    const rows = io.x.size / D;
    const mean = io.scratch([rows], `${io.path}.mean`); // per row, saved for backward
    const rstd = io.scratch([rows], `${io.path}.rstd`); // 1 / sqrt(biased variance + eps), per row
    const forward = [await layerNormForward(e, io.x, this.gamma!.value, this.beta!.value, io.y, mean, rstd, { eps: this.eps })];
    const backward: Dispatch[] = [];
    if (io.dy) {
      if (io.dx) backward.push(await layerNormBackward(e, io.x, io.dy, this.gamma!.value, mean, rstd, io.dx.tensor, { accumulate: io.dx.accumulate }));
      const gg = io.grad(this.gamma!);
      const gb = io.grad(this.beta!);
      if (gg.accumulate !== gb.accumulate) throw new Error(`Layer ${this.name}: its two parameter gradients must both be written or both be added to.`);
      backward.push(await layerNormParamGrad(e, io.x, io.dy, mean, rstd, gg.tensor, gb.tensor, { accumulate: gg.accumulate }));
    }
    return { forward, backward, dispose: () => [...forward, ...backward].forEach((d) => d.dispose()) };
  }

  spec(): OpSpec {
    return { kind: 'layernorm', weight: this.gamma!.name, bias: this.beta!.name, eps: this.eps };
  }

  config(): Record<string, unknown> {
    return { eps: this.eps };
  }
}

/** Multi-head self-attention over tokens [T, D] per sample (timm's layout: one qkv projection). */
export class Attention extends Module {
  qkv: Dense;
  proj: Dense;

  constructor(
    readonly width: number,
    readonly heads: number,
  ) {
    super();
    if (!Number.isInteger(heads) || heads < 1 || width % heads !== 0) throw new GraphError(`Attention: width ${width} is not a multiple of ${heads} heads.`);
    this.qkv = new Dense(3 * width);
    this.proj = new Dense(width);
  }

  forward(x: Value): Value {
    // q, k and v side by side in one [T, 3D] projection; the heads are read out of it in place.
    return this.proj.forward(attention(this.qkv.forward(x), this.heads));
  }
}

/** Pre-norm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x)), the MLP with a GELU. */
export class TransformerBlock extends Module {
  ln1 = new LayerNorm();
  attn: Attention;
  ln2 = new LayerNorm();
  fc1: Dense;
  fc2: Dense;

  constructor(width: number, heads: number, mlpRatio: number) {
    super();
    this.attn = new Attention(width, heads);
    this.fc1 = new Dense(Math.round(width * mlpRatio));
    this.fc2 = new Dense(width);
  }

  forward(x: Value): Value {
    const h = add(x, this.attn.forward(this.ln1.forward(x)));
    return add(h, this.fc2.forward(gelu(this.fc1.forward(this.ln2.forward(h)))));
  }
}

export interface VitOptions {
  /** Patch size (pixels per side); must divide the image. Default 4. */
  patch?: number;
  /** Token width; default 64. */
  width?: number;
  /** Transformer blocks; default 4. */
  depth?: number;
  /** Attention heads (must divide the width); default 4. */
  heads?: number;
  /** MLP hidden width per token width; default 2. */
  mlpRatio?: number;
  /** 'cls': a learned class token feeds the classifier; 'mean': the mean over tokens does. Default 'mean'. */
  pool?: 'cls' | 'mean';
}

/** A small vision transformer for images [C, H, W] (28x28 or 32x32 with patch 4). */
export class VisionTransformer extends Model {
  patches: Conv2d;
  blocks: TransformerBlock[] = [];
  norm = new LayerNorm();
  head: Dense;
  pos: Param | null = null;
  cls: Param | null = null;
  readonly options: Required<VitOptions>;

  constructor(
    readonly outputs: number,
    opts: VitOptions = {},
  ) {
    super();
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as VitOptions;
    const o: Required<VitOptions> = { patch: 4, width: 64, depth: 4, heads: 4, mlpRatio: 2, pool: 'mean', ...given };
    this.options = o;
    for (const [k, v] of Object.entries({ patch: o.patch, width: o.width, depth: o.depth, heads: o.heads })) {
      if (!Number.isInteger(v) || v < 1) throw new GraphError(`vit: --${k} ${v} must be a positive integer.`);
    }
    if (o.width % o.heads !== 0) throw new GraphError(`vit: --width ${o.width} is not a multiple of --heads ${o.heads} (try a width of ${o.heads * Math.max(1, Math.round(o.width / o.heads))}).`);
    if (!(o.mlpRatio > 0)) throw new GraphError(`vit: the MLP ratio ${o.mlpRatio} must be positive.`);
    if (o.pool !== 'cls' && o.pool !== 'mean') throw new GraphError(`vit: pool ${JSON.stringify(o.pool)} must be 'cls' or 'mean'.`);
    this.patches = new Conv2d(o.width, { kernel: o.patch, stride: o.patch });
    for (let i = 0; i < o.depth; i++) this.blocks.push(new TransformerBlock(o.width, o.heads, o.mlpRatio));
    this.head = new Dense(outputs);
  }

  forward(x: Value): Value {
    const { patch, width, pool } = this.options;
    const [, h, w] = x.shape;
    if (x.shape.length !== 3 || h % patch !== 0 || w % patch !== 0) {
      const fits = [2, 4, 7, 8].filter((p) => x.shape.length === 3 && h % p === 0 && w % p === 0);
      throw new GraphError(`vit: --patch ${patch} does not divide the image [${x.shape.join(', ')}]${fits.length ? ` (patch sizes that do: ${fits.join(', ')})` : ''}.`);
    }
    const n = (h / patch) * (w / patch);
    // [D, h/p, w/p] -> [D, n] -> tokens [n, D]
    let t = permute(reshape(this.patches.forward(x), [width, n]), [1, 0]);
    if (pool === 'cls') {
      this.cls ??= this.parameter('cls', [1, width], 'normal_002', { decay: false });
      t = concat([broadcast(this.cls), t], 0);
    }
    this.pos ??= this.parameter('pos', [t.shape[0], width], 'normal_002', { decay: false });
    t = add(t, this.pos);
    for (const b of this.blocks) t = b.forward(t);
    t = this.norm.forward(t);
    const feature = pool === 'cls' ? reshape(slice(t, 0, 0, 1), [width]) : mean(t, 0);
    return this.head.forward(feature);
  }

  config(): Record<string, unknown> {
    return { preset: 'vit', outputs: this.outputs, options: { ...this.options } };
  }
}
