// The two larger networks every library trains (ResNet-20 and a small ViT), as plain data: their
// configurations, their parameters by our module-path names with shapes in our layout, seeded
// initial weights and batches, and the layout changes the peers need. bench/resnet.ts and
// bench/vit.ts write each network in each library's own API from these.
import { Rng } from '../src/util/random.ts';
import { transpose, uniform } from './workloads.ts';

/** How a benchmarked network is trained: the same in every library. */
export interface NetSpec {
  /** Prefix of the benchmark rows (`resnet20-train-step`, ...). */
  benchmark: string;
  /** Our preset and its options (`makePreset(preset, classes, options)`). */
  preset: 'resnet' | 'vit';
  options: Record<string, unknown>;
  /** Per-sample input [C, H, W]. */
  inputShape: [number, number, number];
  classes: number;
  batch: number;
  /** Plain SGD, no momentum. */
  lr: number;
  seed: number;
}

/**
 * ResNet-20 (He et al., CIFAR style): a 3x3 stem, three stages of three basic blocks with 16, 32
 * and 64 channels, BatchNorm on batch statistics, global average pooling, Dense(10); 3x32x32
 * inputs, batch 32. `memoryBatch`: the batch of the memory row (ours only).
 */
export const RESNET = {
  benchmark: 'resnet20',
  preset: 'resnet',
  options: { depth: 20 },
  inputShape: [3, 32, 32],
  classes: 10,
  batch: 32,
  lr: 0.01,
  seed: 2020,
  widths: [16, 32, 64],
  blocksPerStage: 3,
  memoryBatch: 128,
} as const satisfies NetSpec & Record<string, unknown>;

/**
 * A ViT on MNIST-shaped digits, wider and deeper than the preset's defaults: 1x28x28, patch 4 (49
 * tokens), width 96, depth 6, 4 heads, MLP ratio 2, mean over tokens; batch 64.
 */
export const VIT = {
  benchmark: 'vit',
  preset: 'vit',
  options: { patch: 4, width: 96, depth: 6, heads: 4, mlpRatio: 2, pool: 'mean' },
  inputShape: [1, 28, 28],
  classes: 10,
  batch: 64,
  lr: 0.01,
  seed: 6464,
  patch: 4,
  width: 96,
  depth: 6,
  heads: 4,
  mlpRatio: 2,
} as const satisfies NetSpec & Record<string, unknown>;

/** How one parameter starts. */
export type Init = 'he' | 'glorot' | 'ones' | 'zeros' | 'pos';

/** A parameter by our name (module path), with its shape in our layout: conv [OC, IC, KH, KW], Dense [out, in]. */
export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
  /** Weights whose layout differs between libraries. */
  layout?: 'conv' | 'dense';
}

/** ResNet-20's parameters, in our model's declaration order. */
export function resnetParams(): ParamSpec[] {
  const out: ParamSpec[] = [];
  const conv = (name: string, oc: number, ic: number, k: number) => out.push({ name, shape: [oc, ic, k, k], init: 'he', layout: 'conv' });
  const bn = (path: string, c: number) => out.push({ name: `${path}.weight`, shape: [c], init: 'ones' }, { name: `${path}.bias`, shape: [c], init: 'zeros' });
  const [w0] = RESNET.widths;
  conv('stem.weight', w0, RESNET.inputShape[0], 3);
  bn('bn', w0);
  let c: number = w0;
  let i = 0;
  for (const w of RESNET.widths) {
    for (let j = 0; j < RESNET.blocksPerStage; j++, i++) {
      conv(`blocks.${i}.conv1.weight`, w, c, 3);
      bn(`blocks.${i}.bn1`, w);
      conv(`blocks.${i}.conv2.weight`, w, w, 3);
      bn(`blocks.${i}.bn2`, w);
      if (c !== w) {
        conv(`blocks.${i}.shortcut.0.weight`, w, c, 1);
        bn(`blocks.${i}.shortcut.1`, w);
      }
      c = w;
    }
  }
  out.push({ name: 'head.weight', shape: [RESNET.classes, c], init: 'glorot', layout: 'dense' }, { name: 'head.bias', shape: [RESNET.classes], init: 'zeros' });
  return out;
}

/** The blocks of ResNet-20 in order: their index, channels in and out, and stride. */
export function resnetBlocks(): { i: number; cin: number; cout: number; stride: number }[] {
  const out: { i: number; cin: number; cout: number; stride: number }[] = [];
  let c: number = RESNET.widths[0];
  RESNET.widths.forEach((w, stage) => {
    for (let j = 0; j < RESNET.blocksPerStage; j++) {
      out.push({ i: out.length, cin: c, cout: w, stride: stage > 0 && j === 0 ? 2 : 1 });
      c = w;
    }
  });
  return out;
}

/** The ViT's parameters, in our model's declaration order. */
export function vitParams(): ParamSpec[] {
  const { patch: p, width: D, depth, mlpRatio } = VIT;
  const [C, H, W] = VIT.inputShape;
  const tokens = (H / p) * (W / p);
  const hidden = Math.round(D * mlpRatio);
  const out: ParamSpec[] = [{ name: 'pos', shape: [tokens, D], init: 'pos' }];
  const dense = (path: string, nOut: number, nIn: number) => out.push({ name: `${path}.weight`, shape: [nOut, nIn], init: 'glorot', layout: 'dense' }, { name: `${path}.bias`, shape: [nOut], init: 'zeros' });
  const ln = (path: string) => out.push({ name: `${path}.weight`, shape: [D], init: 'ones' }, { name: `${path}.bias`, shape: [D], init: 'zeros' });
  out.push({ name: 'patches.weight', shape: [D, C, p, p], init: 'he', layout: 'conv' }, { name: 'patches.bias', shape: [D], init: 'zeros' });
  for (let i = 0; i < depth; i++) {
    ln(`blocks.${i}.ln1`);
    dense(`blocks.${i}.attn.qkv`, 3 * D, D);
    dense(`blocks.${i}.attn.proj`, D, D);
    ln(`blocks.${i}.ln2`);
    dense(`blocks.${i}.fc1`, hidden, D);
    dense(`blocks.${i}.fc2`, D, hidden);
  }
  ln('norm');
  dense('head', VIT.classes, D);
  return out;
}

/**
 * Seeded initial weights by name, in our layout. Convolutions: He uniform (fan in IC*KH*KW);
 * Dense: Glorot uniform; norms' scales 1 and shifts 0; biases 0; the position embedding uniform
 * with standard deviation 0.02. Parameter i draws from seed + i.
 */
export function initialWeights(specs: ParamSpec[], seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  specs.forEach((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const fanIn = s.shape.slice(1).reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (s.init === 'he') data = uniform(n, seed + i, -Math.sqrt(6 / fanIn), Math.sqrt(6 / fanIn));
    else if (s.init === 'glorot') data = uniform(n, seed + i, -Math.sqrt(6 / (s.shape[0] + s.shape[1])), Math.sqrt(6 / (s.shape[0] + s.shape[1])));
    else if (s.init === 'pos') data = uniform(n, seed + i, -0.02 * Math.sqrt(3), 0.02 * Math.sqrt(3));
    else data = new Float32Array(n).fill(s.init === 'ones' ? 1 : 0);
    out.set(s.name, data);
  });
  return out;
}

/** One synthetic batch: pixels in [0, 1) as [batch, C, H, W] (NCHW), labels in [0, classes). */
export function netBatch(spec: NetSpec, batch = spec.batch): { x: Float32Array; labels: Int32Array } {
  const [C, H, W] = spec.inputShape;
  const x = uniform(batch * C * H * W, spec.seed + 1001, 0, 1);
  const r = new Rng(spec.seed + 1002);
  return { x, labels: Int32Array.from({ length: batch }, () => r.int(spec.classes)) };
}

// ---- layouts ----------------------------------------------------------------------------------

/** [N, C, H, W] to [N, H, W, C] (TF.js images). */
export function nchwToNhwc(x: Float32Array, [n, c, h, w]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let ci = 0; ci < c; ci++) for (let y = 0; y < h; y++) for (let xi = 0; xi < w; xi++) out[((b * h + y) * w + xi) * c + ci] = x[((b * c + ci) * h + y) * w + xi];
  return out;
}

/** Conv weights [OC, IC, KH, KW] (ours, jax-js) to [KH, KW, IC, OC] (TF.js). */
export function oihwToHwio(wt: Float32Array, [oc, ic, kh, kw]: number[]): Float32Array {
  const out = new Float32Array(wt.length);
  for (let o = 0; o < oc; o++) for (let i = 0; i < ic; i++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) out[((y * kw + x) * ic + i) * oc + o] = wt[((o * ic + i) * kh + y) * kw + x];
  return out;
}

/** The peers' weights from ours: conv kernels as `convLayout` says, Dense weights as [in, out], the rest as they are. */
export function peerWeights(specs: ParamSpec[], weights: Map<string, Float32Array>, convLayout: 'OIHW' | 'HWIO'): Map<string, { data: Float32Array; shape: number[] }> {
  const out = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const s of specs) {
    const w = weights.get(s.name)!;
    if (s.layout === 'conv' && convLayout === 'HWIO') out.set(s.name, { data: oihwToHwio(w, s.shape), shape: [s.shape[2], s.shape[3], s.shape[1], s.shape[0]] });
    else if (s.layout === 'dense') out.set(s.name, { data: transpose(w, s.shape[0], s.shape[1]), shape: [s.shape[1], s.shape[0]] });
    else out.set(s.name, { data: w, shape: [...s.shape] });
  }
  return out;
}
