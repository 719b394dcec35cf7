// Checkpoints in the safetensors format. Weights are named like a PyTorch state_dict
// (`layers.{i}.weight` [out, in], `layers.{i}.bias`), optimizer state `optim.<param>.<slot>`, and
// the metadata holds what a resumed run needs: the model config, loss and optimizer, the training
// state (epoch, step, data seed; within an epoch also the batch and the data it was cut from) and how the dataset was normalised (so `predict` can do the same).
// Bytes in and out only; writing files (atomically) is the caller's job (see atomic.ts).
import type { Engine } from '../gpu/engine.ts';
import type { Dataset } from '../data/dataset.ts';
import type { Model } from '../nn/model.ts';
import { layerFromConfig, type LayerConfig } from '../nn/registry.ts';
import { makePreset, type PresetOptions } from '../nn/presets.ts';
import { Sequential } from '../nn/sequential.ts';
import type { OptimizerConfig } from '../optim/optimizer.ts';
import type { LossKind } from './loss.ts';
import type { TrainState } from './step.ts';
import { DivergenceError } from './divergence.ts';
import { Trainer } from './trainer.ts';
import { CheckpointError, checkAgainst, decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors.ts';

export const CHECKPOINT_FORMAT = 'webgpu-train/1';

/** What a checkpoint says about the data the model was trained on. */
export interface DatasetInfo {
  name: string;
  task: Dataset['task'];
  inputShape: number[];
  numClasses: number;
  classNames?: string[];
  normalization: Dataset['normalization'];
  targetNormalization?: Dataset['targetNormalization'];
  /** A table's feature columns, which `predict --input new.csv` matches new rows against by name. */
  featureNames?: string[];
  /** A table's target column (whose units regression errors are in). */
  targetName?: string;
}

/** How a run was set up beyond the model, loss and optimizer: what an export needs to continue it elsewhere. */
export interface RunRecord {
  /** The dataset as given to the trainer (a name, a directory or a table file). */
  dataset: string;
  batchSize: number;
  /** Total epochs the run was set to reach. */
  epochs: number;
  /** Image augmentation: crop of the image padded by `pad`, horizontal flip; null for none. */
  augment: { pad: number; flip: boolean } | null;
  /** How a table was read. */
  csv?: { skipRows?: number; delimiter?: string; header?: boolean; ignoreColumns?: string[] };
  /** How an image folder was split (its size and channels are the model's input shape). */
  images?: { valSplit?: number; splitSeed?: number };
}

export interface CheckpointMeta {
  format: string;
  /**
   * The model's config: a Sequential's layers, a preset's name, outputs and options, or the class
   * of a model that cannot be rebuilt.
   */
  model: { inputShape: number[]; seed: number; layers?: LayerConfig[]; preset?: string; outputs?: number; options?: PresetOptions; class?: string };
  loss: LossKind | null;
  optimizer: OptimizerConfig | null;
  /** Label smoothing and gradient clipping of the trainer (absent in older checkpoints: none). */
  training?: { labelSmoothing: number; clipNorm: number | null } | null;
  state: TrainState;
  dataset: DatasetInfo | null;
  /** Batch size, epochs, augmentation and data source of the run (absent in older checkpoints). */
  run?: RunRecord;
}

export interface Checkpoint {
  meta: CheckpointMeta;
  tensors: Map<string, NamedTensor>;
}

export function datasetInfo(d: Dataset): DatasetInfo {
  return {
    name: d.name,
    task: d.task,
    inputShape: [...d.inputShape],
    numClasses: d.numClasses,
    classNames: d.classNames,
    normalization: d.normalization,
    targetNormalization: d.targetNormalization,
    ...(d.featureNames ? { featureNames: d.featureNames } : {}),
    ...(d.targetName !== undefined ? { targetName: d.targetName } : {}),
  };
}

export interface CheckpointOptions {
  /**
   * Refuse (DivergenceError) to encode a tensor holding NaN or Inf: a step can turn the weights
   * non-finite before any loss read shows it, and such a checkpoint must not replace a good one.
   */
  requireFinite?: boolean;
  /** The run's batch size, epochs, augmentation and data source, stored as metadata "run". */
  run?: RunRecord;
}

/** Read every parameter, buffer and optimizer state from the GPU and encode them with the metadata. */
export async function checkpointBytes(source: Trainer | Model, dataset?: DatasetInfo | null, opts: CheckpointOptions = {}): Promise<Uint8Array> {
  const trainer = source instanceof Trainer ? source : null;
  const model = trainer?.model ?? (source as Model);
  const named: [string, { value: { shape: readonly number[]; read(): Promise<Float32Array> } }][] = [
    ...model.params().map((p) => [p.name, p] as [string, typeof p]),
    ...model.buffers().map((b) => [b.name, b] as [string, typeof b]),
    ...(trainer?.optimizer.state() ?? []).map((s) => [s.name, s] as [string, typeof s]),
  ];
  const tensors: [string, NamedTensor][] = [];
  for (const [name, t] of named) {
    const data = await t.value.read();
    if (opts.requireFinite) {
      const bad = data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) {
        const step = trainer?.state.step ?? 0;
        throw new DivergenceError(step, NaN, `${name} holds ${data[bad]} (at index ${bad}) after step ${step}, so no checkpoint was written`);
      }
    }
    tensors.push([name, { shape: [...t.value.shape], data }]);
  }
  const config = model.config();
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    model: { inputShape: [...model.inputShape], seed: model.seed, ...(config ?? { class: model.constructor.name }) },
    loss: trainer?.lossKind ?? null,
    optimizer: trainer ? { ...trainer.optimizer.config } : null,
    training: trainer ? { ...trainer.settings } : null,
    state: trainer ? { ...trainer.state } : { epoch: 0, step: 0, dataSeed: model.seed },
    dataset: dataset ?? null,
    ...(opts.run ? { run: opts.run } : {}),
  };
  const metadata: Record<string, string> = {};
  // Every entry but the format tag is JSON (parseMeta parses them back), strings such as the loss included.
  for (const [k, v] of Object.entries(meta)) metadata[k] = k === 'format' ? String(v) : JSON.stringify(v);
  return encodeSafetensors(tensors, metadata);
}

function parseMeta(metadata: Record<string, string>, label: string): CheckpointMeta {
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(
      label,
      `is not a checkpoint of this engine (metadata "format" is ${JSON.stringify(metadata.format ?? null)}, expected "${CHECKPOINT_FORMAT}"). Plain safetensors weights can be loaded with loadWeights() into a model you build.`,
    );
  }
  const json = (k: string) => {
    try {
      return JSON.parse(metadata[k] ?? 'null');
    } catch {
      throw new CheckpointError(label, `metadata "${k}" is not valid JSON.`);
    }
  };
  const model = json('model');
  if (!model || !Array.isArray(model.inputShape)) throw new CheckpointError(label, 'metadata "model" has no inputShape.');
  const run = json('run');
  return { format: metadata.format, model, loss: json('loss'), optimizer: json('optimizer'), training: json('training'), state: json('state') ?? { epoch: 0, step: 0, dataSeed: 0 }, dataset: json('dataset'), ...(run ? { run } : {}) };
}

/** Decode and validate a checkpoint file's bytes. */
export function readCheckpoint(bytes: Uint8Array, label: string): Checkpoint {
  const { tensors, metadata } = decodeSafetensors(bytes, label);
  return { meta: parseMeta(metadata, label), tensors };
}

/**
 * Upload weights (and buffers) from a checkpoint into a built model, after checking that every
 * name and shape matches; the optimizer's state too when a trainer is given and the file has it.
 */
export function loadWeights(model: Model, tensors: Map<string, NamedTensor>, label: string, trainer?: Trainer): void {
  const e: Engine = model.engine!;
  const targets = [...model.params(), ...model.buffers()].map((p) => ({ name: p.name, shape: [...p.value.shape], value: p.value }));
  const modelTensors = new Map([...tensors].filter(([k]) => !k.startsWith('optim.')));
  checkAgainst(targets, modelTensors, label);
  const optState = trainer?.optimizer.state() ?? [];
  const fileOpt = new Map([...tensors].filter(([k]) => k.startsWith('optim.')));
  if (optState.length && fileOpt.size)
    checkAgainst(
      optState.map((s) => ({ name: s.name, shape: [...s.value.shape] })),
      fileOpt,
      label,
    );
  for (const t of targets) e.write(t.value, tensors.get(t.name)!.data);
  if (fileOpt.size) for (const s of optState) e.write(s.value, fileOpt.get(s.name)!.data);
}

/** Rebuild a model from a checkpoint's config (a layer list) and load its weights: ready to predict. */
export async function modelFromCheckpoint(e: Engine, ckpt: Checkpoint, label: string): Promise<Model> {
  const model = await buildFromMeta(e, ckpt, label);
  try {
    loadWeights(model, ckpt.tensors, label);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/**
 * Rebuild a model and its trainer (loss, optimizer and its state, where training stood) from a
 * checkpoint: ready to evaluate or to resume training exactly.
 */
export async function trainerFromCheckpoint(e: Engine, ckpt: Checkpoint, label: string): Promise<Trainer> {
  const { meta } = ckpt;
  if (!meta.loss || !meta.optimizer) throw new CheckpointError(label, 'holds weights only (no loss and optimizer were saved with it): it can predict, but not evaluate or resume training.');
  const model = await buildFromMeta(e, ckpt, label);
  let trainer: Trainer | null = null;
  try {
    trainer = await Trainer.create(model, { loss: meta.loss, optimizer: meta.optimizer, labelSmoothing: meta.training?.labelSmoothing, clipNorm: meta.training?.clipNorm ?? undefined });
    loadWeights(model, ckpt.tensors, label, trainer);
  } catch (err) {
    trainer?.dispose();
    model.dispose();
    throw err;
  }
  trainer.state = { ...meta.state };
  return trainer;
}

async function buildFromMeta(e: Engine, ckpt: Checkpoint, label: string): Promise<Model> {
  const { meta } = ckpt;
  const { layers, preset, outputs, options } = meta.model;
  if (!Array.isArray(layers) && !preset) {
    const cls = meta.model.class ? `a model of class ${meta.model.class}` : 'a model';
    throw new CheckpointError(label, `was saved from ${cls} that a checkpoint cannot rebuild; build the model in code and load the weights with loadWeights().`);
  }
  let model: Model;
  try {
    model = Array.isArray(layers) ? new Sequential(layers.map(layerFromConfig)) : makePreset(preset!, outputs!, options ?? {});
  } catch (err) {
    throw new CheckpointError(label, `its model config cannot be rebuilt: ${(err as Error).message}`);
  }
  await model.build(e, meta.model.inputShape, { seed: meta.model.seed });
  return model;
}
