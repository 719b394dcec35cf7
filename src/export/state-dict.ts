// Import: a PyTorch state_dict saved as safetensors (`safetensors.torch.save_file(model.state_dict(),
// FILE)`, or weights.safetensors of an export) loaded into a built model whose names and shapes
// match, so that weights trained elsewhere can be fine-tuned here. Every mismatch is named.
import type { Model } from '../nn/model.ts';
import { CheckpointError, checkAgainst, decodeSafetensors, type NamedTensor } from '../train/safetensors.ts';
import { looksLikeOnnx } from './onnx.ts';

export interface StateDictLoad {
  /** Tensors of the file that were set aside: an engine checkpoint's optimizer state, PyTorch's batch-norm counters. */
  ignored: string[];
  /** Tensors stored in another dtype than float32 (converted on reading), with their dtype. */
  converted: string[];
}

/**
 * Load a state_dict's tensors into a built model. Names and shapes must match the model's
 * parameters and buffers exactly; the error lists every tensor missing, unexpected or of another
 * shape. Set aside (and reported): `optim.*` (an engine checkpoint's optimizer state) and
 * `<module>.num_batches_tracked` beside a batch norm's running statistics (PyTorch's step counter,
 * which the engine's fixed momentum does not use).
 */
export function loadStateDict(model: Model, bytes: Uint8Array, label: string): StateDictLoad {
  const e = model.engine;
  if (!e) throw new Error('Build the model before loading a state_dict into it.');
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(bytes, label);
  } catch (err) {
    // Only bytes that are not safetensors are asked whether they are ONNX, to say so plainly.
    if (looksLikeOnnx(bytes)) throw new CheckpointError(label, 'is an ONNX model, not safetensors: give a state_dict saved with safetensors.torch.save_file(model.state_dict(), FILE).');
    throw err;
  }
  const { tensors, dtypes } = decoded;
  const targets = [...model.params(), ...model.buffers()].map((t) => ({ name: t.name, shape: [...t.value.shape], value: t.value }));
  const names = new Set(targets.map((t) => t.name));
  const kept = new Map<string, NamedTensor>();
  const ignored: string[] = [];
  for (const [name, t] of tensors) {
    const counter = name.endsWith('.num_batches_tracked') && names.has(name.replace(/num_batches_tracked$/, 'running_mean'));
    if (name.startsWith('optim.') || counter) ignored.push(name);
    else kept.set(name, t);
  }
  checkAgainst(targets, kept, label);
  for (const t of targets) e.write(t.value, kept.get(t.name)!.data);
  const converted = [...kept.keys()].filter((n) => dtypes.get(n) !== 'F32').map((n) => `${n} (${dtypes.get(n)})`);
  return { ignored, converted };
}
