// Layers by kind name, to rebuild a model from the config saved in a checkpoint.
import { Activation, Flatten, Softmax } from './activations.ts';
import { BatchNorm2d, type BatchNorm2dOptions } from './batchnorm.ts';
import { Conv2d, type Conv2dOptions } from './conv.ts';
import { Dense, type DenseOptions } from './dense.ts';
import { Dropout } from './dropout.ts';
import type { Layer } from './layer.ts';
import { AvgPool2d, GlobalAvgPool, MaxPool2d, type AvgPool2dOptions, type Pool2dOptions } from './pool.ts';

/** What a checkpoint stores per layer. */
export interface LayerConfig {
  kind: string;
  config: Record<string, unknown>;
}

type Factory = (c: Record<string, unknown>) => Layer;

const factories = new Map<string, Factory>([
  [
    'Dense',
    (c) => {
      const { units, ...opts } = c;
      return new Dense(units as number, opts as DenseOptions);
    },
  ],
  ['ReLU', () => new Activation('relu')],
  ['LeakyReLU', (c) => new Activation('leaky_relu', (c.alpha as number) ?? 0.01)],
  ['Sigmoid', () => new Activation('sigmoid')],
  ['Tanh', () => new Activation('tanh')],
  ['GELU', () => new Activation('gelu')],
  ['Softmax', () => new Softmax()],
  ['Flatten', () => new Flatten()],
  ['Dropout', (c) => new Dropout(c.p as number)],
  [
    'Conv2d',
    (c) => {
      const { outChannels, ...opts } = c;
      return new Conv2d(outChannels as number, opts as Conv2dOptions);
    },
  ],
  ['MaxPool2d', (c) => new MaxPool2d(c as Pool2dOptions)],
  ['AvgPool2d', (c) => new AvgPool2d(c as AvgPool2dOptions)],
  ['GlobalAvgPool', () => new GlobalAvgPool()],
  ['BatchNorm2d', (c) => new BatchNorm2d(c as BatchNorm2dOptions)],
]);

export function layerToConfig(l: Layer): LayerConfig {
  return { kind: l.kind, config: l.config() };
}

export function layerFromConfig(c: LayerConfig): Layer {
  const f = factories.get(c.kind);
  if (!f) throw new Error(`Unknown layer kind "${c.kind}" (known: ${[...factories.keys()].join(', ')}).`);
  return f(c.config ?? {});
}
