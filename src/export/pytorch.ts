// PyTorch export: the files that take a model, its weights, its optimizer state and its training
// settings to PyTorch, where train.py continues training (one process, or many under
// DistributedDataParallel) and writes a checkpoint this engine reads back. Files as bytes by name;
// writing them (into a fresh directory, all or nothing) is the caller's job. Node only: the
// Python sources are read from src/export/python/.
import { readFileSync } from 'node:fs';
import type { Model } from '../nn/model.ts';
import { endsWithSoftmax } from '../nn/planner.ts';
import { withDefaults } from '../optim/optimizer.ts';
import { checkpointBytes, readCheckpoint, type CheckpointMeta, type DatasetInfo } from '../train/checkpoint.ts';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../train/safetensors.ts';
import { Trainer } from '../train/trainer.ts';
import { ExportError } from './onnx.ts';
import { pytorchModelSource } from './pytorch-model.ts';

/** How training continues in PyTorch: what settings.json holds (train.py's flags override some). */
export interface PytorchTrainingSettings {
  /** Dataset path or name for train.py (`--data` overrides). */
  dataset: string | null;
  /** How to read a CSV table (as `wgtrain train` read it). */
  csv?: { skipRows?: number; delimiter?: string; header?: boolean; ignoreColumns?: string[] };
  /** Global batch size. */
  batchSize: number;
  /** Total epochs to reach. */
  epochs: number;
  /** Image augmentation: crop of the image padded by `pad`, horizontal flip. */
  augment: { pad: number; flip: boolean } | null;
  /** Label smoothing of the cross-entropy (default: the trainer's). */
  labelSmoothing: number;
  /** Gradients clipped to this global norm before each step (default: the trainer's); null for none. */
  clipNorm: number | null;
}

export interface PytorchExportOptions {
  /** What the checkpoint says about its data (normalisation, classes, a table's columns). */
  dataset?: DatasetInfo | null;
  /** Training settings; defaults: no dataset, batch 64, the trainer's epoch + 10 epochs, no augmentation. */
  training?: Partial<PytorchTrainingSettings>;
  /** Extra files to include (e.g. the dataset as IDX files under data/). */
  extraFiles?: Map<string, Uint8Array>;
}

const python = (name: string) => readFileSync(new URL(`./python/${name}`, import.meta.url));
const text = (s: string) => new TextEncoder().encode(s);

function readme(meta: CheckpointMeta, settings: PytorchTrainingSettings & Record<string, unknown>): string {
  return `# A webgpu-train model in PyTorch

- \`model.py\`: the model as a \`torch.nn.Module\`; its \`state_dict\` names and shapes are the engine's.
- \`weights.safetensors\`: the weights (the state_dict): \`model.load_state_dict(safetensors.torch.load_file("weights.safetensors"))\`,
  or with torch alone \`wgtrain_io.read_safetensors("weights.safetensors")[0]\`.
- \`optimizer.safetensors\`: the optimizer's state (${meta.optimizer?.kind ?? 'none'}; \`optim.<param>.<slot>\`) and the checkpoint's metadata.
- \`settings.json\`: optimizer, schedule, loss, batch size ${settings.batchSize}, augmentation, seed, dataset.
- \`train.py\`: continues training from epoch ${meta.state.epoch}, step ${meta.state.step}; writes an engine checkpoint.

    python3 train.py --nproc 2 --epochs ${settings.epochs}          # 2 processes (DistributedDataParallel, gloo on CPUs)
    torchrun --nproc_per_node 4 train.py --epochs ${settings.epochs}  # under torchrun (nccl on GPUs)
    wgtrain evaluate --checkpoint checkpoint.safetensors       # back in the engine
`;
}

/**
 * The files of a PyTorch export of a trainer (weights, optimizer state, training settings) or of a
 * model alone (weights only; train.py then starts a fresh optimizer from `training`'s settings, which
 * must then name one): model.py, train.py, wgtrain_io.py, weights.safetensors, optimizer.safetensors,
 * settings.json, README.md. Throws ExportError naming an op with no PyTorch mapping.
 */
export async function exportPytorch(source: Trainer | Model, opts: PytorchExportOptions = {}): Promise<Map<string, Uint8Array>> {
  const trainer = source instanceof Trainer ? source : null;
  const model = trainer?.model ?? (source as Model);
  if (!model.graph) throw new ExportError('PyTorch export: build the model first.');
  const spec = model.spec();
  const modelPy = pytorchModelSource(spec, { lossSkipsFinalSoftmax: endsWithSoftmax(model.graph) });
  // The engine's own checkpoint, split in two: the state_dict alone (loadable strictly), and the
  // optimizer state with the metadata (model config, loss, optimizer, training state, dataset).
  const bytes = await checkpointBytes(trainer ?? model, opts.dataset ?? null);
  const ckpt = decodeSafetensors(bytes, 'checkpoint');
  const meta = readCheckpoint(bytes, 'checkpoint').meta;
  const weights: [string, NamedTensor][] = [...spec.params, ...spec.buffers].map((t) => [t.name, ckpt.tensors.get(t.name)!]);
  const optim = [...ckpt.tensors].filter(([name]) => name.startsWith('optim.'));
  const state = meta.state;
  const t = opts.training ?? {};
  const settings = {
    dataset: t.dataset ?? null,
    ...(t.csv ? { csv: t.csv } : {}),
    batchSize: t.batchSize ?? 64,
    epochs: t.epochs ?? state.epoch + 10,
    augment: t.augment ?? null,
    labelSmoothing: t.labelSmoothing ?? trainer?.settings.labelSmoothing ?? 0,
    clipNorm: t.clipNorm ?? trainer?.settings.clipNorm ?? null,
    seed: state.dataSeed,
    loss: meta.loss,
    optimizer: meta.optimizer ? withDefaults(meta.optimizer) : null,
    noDecay: spec.params.filter((p) => !p.decay).map((p) => p.name),
  };
  const files = new Map<string, Uint8Array>([
    ['model.py', text(modelPy)],
    ['train.py', python('train.py')],
    ['wgtrain_io.py', python('wgtrain_io.py')],
    ['weights.safetensors', encodeSafetensors(weights)],
    ['optimizer.safetensors', encodeSafetensors(optim, ckpt.metadata)],
    ['settings.json', text(`${JSON.stringify(settings, null, 2)}\n`)],
    ['README.md', text(readme(meta, settings))],
  ]);
  for (const [name, bytes] of opts.extraFiles ?? []) files.set(name, bytes);
  return files;
}
