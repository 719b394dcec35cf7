// Model presets by name, as the CLI and the demo offer them. Each returns a fresh, unbuilt model
// for a number of outputs (build it for the data's per-sample input shape).
import type { Activation as ActivationKind } from '../ops/activation.ts';
import { Activation, Flatten } from './activations.ts';
import { cnn, cnnCifar } from './cnn-presets.ts';
import { Dense } from './dense.ts';
import { Dropout } from './dropout.ts';
import type { Layer } from './layer.ts';
import type { Model } from './model.ts';
import { ResNet } from './resnet.ts';
import { Sequential } from './sequential.ts';
import { VisionTransformer, type VitOptions } from './transformer.ts';

export interface PresetOptions {
  /** Hidden layer widths for the MLP (default [256, 128]). */
  hidden?: number[];
  activation?: ActivationKind;
  /** Dropout after each hidden layer (0 = none). */
  dropout?: number;
  /** resnet: 6n + 2 weighted layers; vit: transformer blocks. */
  depth?: number;
  /** vit: token width. */
  width?: number;
  /** vit: attention heads. */
  heads?: number;
  /** vit: patch size. */
  patch?: number;
  /** vit: MLP width per token width. */
  mlpRatio?: number;
  /** vit: 'cls' token or 'mean' over tokens. */
  pool?: VitOptions['pool'];
}

type Preset = (outputs: number, opts: PresetOptions) => Model;

/** Multi-layer perceptron: Flatten, then Dense + activation (+ Dropout) per hidden width, then Dense(outputs). */
export function mlp(outputs: number, opts: PresetOptions = {}): Sequential {
  const hidden = opts.hidden ?? [256, 128];
  const act = opts.activation ?? 'relu';
  const layers: Layer[] = [new Flatten()];
  for (const h of hidden) {
    // He initialisation suits ReLU-like activations; Glorot suits the saturating ones.
    const init = act === 'relu' || act === 'leaky_relu' || act === 'gelu' ? 'he_uniform' : 'glorot_uniform';
    layers.push(new Dense(h, { kernelInitializer: init }), new Activation(act));
    if (opts.dropout) layers.push(new Dropout(opts.dropout));
  }
  layers.push(new Dense(outputs));
  return new Sequential(layers);
}

const presets = new Map<string, Preset>([
  ['mlp', mlp],
  ['cnn', cnn],
  ['cnn-cifar', cnnCifar],
  ['resnet', (outputs, o) => new ResNet(outputs, { depth: o.depth })],
  ['vit', (outputs, o) => new VisionTransformer(outputs, { depth: o.depth, width: o.width, heads: o.heads, patch: o.patch, mlpRatio: o.mlpRatio, pool: o.pool })],
]);

export function presetNames(): string[] {
  return [...presets.keys()];
}

export function makePreset(name: string, outputs: number, opts: PresetOptions = {}): Model {
  const p = presets.get(name);
  if (!p) throw new Error(`Unknown model preset "${name}" (known: ${presetNames().join(', ')}).`);
  return p(outputs, opts);
}
