// Sequential: a chain of modules, each reading the previous one's output. It is a Model like any
// other (its forward is traced into a chain graph), so it plans, fuses and trains through the same
// code path as models with skip connections. Its layers are named `layers.{i}`, as checkpoints of
// this engine have always named them.
import type { Value } from './graph.ts';
import type { Layer } from './layer.ts';
import { Model } from './model.ts';
import type { Module } from './module.ts';
import { layerToConfig, type LayerConfig } from './registry.ts';

export class Sequential extends Model {
  readonly layers: Module[];

  constructor(layers: Module[]) {
    super();
    if (!layers.length) throw new Error('A model needs at least one layer.');
    this.layers = [...layers];
  }

  forward(x: Value): Value {
    for (const l of this.layers) x = l.forward(x);
    return x;
  }

  /** The layer list for a checkpoint, when every layer is a registered layer kind (null otherwise). */
  config(): { layers: LayerConfig[] } | null {
    const configs: LayerConfig[] = [];
    for (const l of this.layers) {
      if (!('kind' in l) || typeof (l as Layer).config !== 'function') return null;
      configs.push(layerToConfig(l as Layer));
    }
    return { layers: configs };
  }
}
