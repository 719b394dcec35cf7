// Checkpoints in the safetensors format. Weights are named like a PyTorch state_dict
// (`layers.{i}.weight` [out, in], `layers.{i}.bias`), optimizer state `optim.<param>.<slot>`, and
// the metadata holds what a resumed run needs: the model config, loss and optimizer, the training
// state (epoch, step, data seed) and how the dataset was normalised (so `predict` can do the same).
// Bytes in and out only; writing files (atomically) is the caller's job (see atomic.ts).
import type { Engine } from '../gpu/engine.ts';
import type { Dataset } from '../data/dataset.ts';
import { layerFromConfig, layerToConfig, type LayerConfig } from '../nn/registry.ts';
import type { OptimizerConfig } from '../optim/optimizer.ts';
import type { LossKind } from './loss.ts';
import { Sequential, type TrainState } from './model.ts';
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
}

export interface CheckpointMeta {
  format: string;
  model: { inputShape: number[]; seed: number; layers: LayerConfig[] };
  loss: LossKind | null;
  optimizer: OptimizerConfig | null;
  state: TrainState;
  dataset: DatasetInfo | null;
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
  };
}

/** Read every parameter, buffer and optimizer state from the GPU and encode them with the metadata. */
export async function checkpointBytes(model: Sequential, dataset?: DatasetInfo | null): Promise<Uint8Array> {
  const named: [string, { value: { shape: readonly number[]; read(): Promise<Float32Array> } }][] = [
    ...model.params().map((p) => [p.name, p] as [string, typeof p]),
    ...model.buffers().map((b) => [b.name, b] as [string, typeof b]),
    ...(model.optimizer?.state() ?? []).map((s) => [s.name, s] as [string, typeof s]),
  ];
  const tensors: [string, NamedTensor][] = [];
  for (const [name, t] of named) tensors.push([name, { shape: [...t.value.shape], data: await t.value.read() }]);
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    model: { inputShape: [...model.inputShape], seed: model.seed, layers: model.layers.map(layerToConfig) },
    loss: model.lossKind,
    optimizer: model.optimizer ? { ...model.optimizer.config } : null,
    state: { ...model.state },
    dataset: dataset ?? null,
  };
  const metadata: Record<string, string> = {};
  // Every entry but the format tag is JSON (parseMeta parses them back), strings such as the loss included.
  for (const [k, v] of Object.entries(meta)) metadata[k] = k === 'format' ? String(v) : JSON.stringify(v);
  return encodeSafetensors(tensors, metadata);
}

function parseMeta(metadata: Record<string, string>, label: string): CheckpointMeta {
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(label, `is not a checkpoint of this engine (metadata "format" is ${JSON.stringify(metadata.format ?? null)}, expected "${CHECKPOINT_FORMAT}"). Plain safetensors weights can be loaded with loadWeights() into a model you build.`);
  }
  const json = (k: string) => {
    try {
      return JSON.parse(metadata[k] ?? 'null');
    } catch {
      throw new CheckpointError(label, `metadata "${k}" is not valid JSON.`);
    }
  };
  const model = json('model');
  if (!model || !Array.isArray(model.layers) || !Array.isArray(model.inputShape)) throw new CheckpointError(label, 'metadata "model" has no layers or inputShape.');
  return { format: metadata.format, model, loss: json('loss'), optimizer: json('optimizer'), state: json('state') ?? { epoch: 0, step: 0, dataSeed: 0 }, dataset: json('dataset') };
}

/** Decode and validate a checkpoint file's bytes. */
export function readCheckpoint(bytes: Uint8Array, label: string): Checkpoint {
  const { tensors, metadata } = decodeSafetensors(bytes, label);
  return { meta: parseMeta(metadata, label), tensors };
}

/**
 * Upload weights (and buffers) from a checkpoint into a built model, after checking that every
 * name and shape matches; optimizer state too when the model is compiled and the file has it.
 */
export function loadWeights(model: Sequential, tensors: Map<string, NamedTensor>, label: string): void {
  const e: Engine = model.engine!;
  const targets = [...model.params(), ...model.buffers()].map((p) => ({ name: p.name, shape: [...p.value.shape], value: p.value }));
  const modelTensors = new Map([...tensors].filter(([k]) => !k.startsWith('optim.')));
  checkAgainst(targets, modelTensors, label);
  const optState = model.optimizer?.state() ?? [];
  const fileOpt = new Map([...tensors].filter(([k]) => k.startsWith('optim.')));
  if (optState.length && fileOpt.size) checkAgainst(optState.map((s) => ({ name: s.name, shape: [...s.value.shape] })), fileOpt, label);
  for (const t of targets) e.write(t.value, tensors.get(t.name)!.data);
  if (fileOpt.size) for (const s of optState) e.write(s.value, fileOpt.get(s.name)!.data);
}

/** Rebuild, compile and load a model from a checkpoint, ready to evaluate, predict or resume training. */
export async function modelFromCheckpoint(e: Engine, ckpt: Checkpoint, label: string): Promise<Sequential> {
  const { meta } = ckpt;
  let model: Sequential;
  try {
    model = new Sequential(meta.model.layers.map(layerFromConfig));
  } catch (err) {
    throw new CheckpointError(label, `its model config cannot be rebuilt: ${(err as Error).message}`);
  }
  await model.build(e, meta.model.inputShape, { seed: meta.model.seed });
  try {
    if (meta.loss && meta.optimizer) await model.compile({ loss: meta.loss, optimizer: meta.optimizer });
    loadWeights(model, ckpt.tensors, label);
  } catch (err) {
    model.dispose();
    throw err;
  }
  model.state = { ...meta.state };
  return model;
}
