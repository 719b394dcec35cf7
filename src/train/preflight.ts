// Checks made before the first training step, so that a run that cannot finish fails in seconds
// rather than after an epoch: every output file can be written, and the model fits the adapter's
// per-buffer limits and the host's memory. The model check runs twice when it can: on the layer
// list of a Sequential before anything is allocated (a layer over the limit is refused by name,
// not by a failed allocation), and on the traced graph of any built model before it is planned
// (activations and gradients per batch).
import { randomBytes } from 'node:crypto';
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { constants as bufferConstants } from 'node:buffer';
import { totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { shapeSize, windowPositions, type Shape } from '../ops/shape.ts';
import { Activation, Flatten, Softmax } from '../nn/activations.ts';
import { BatchNorm2d } from '../nn/batchnorm.ts';
import { Conv2d } from '../nn/conv.ts';
import { Dense } from '../nn/dense.ts';
import { Dropout } from '../nn/dropout.ts';
import type { Model } from '../nn/model.ts';
import type { Module } from '../nn/module.ts';
import { AvgPool2d, GlobalAvgPool, MaxPool2d } from '../nn/pool.ts';
import { Sequential } from '../nn/sequential.ts';

/** A run that cannot work, found before training: one line saying what, by how much, and what would. */
export class PreflightError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PreflightError';
  }
}

/** One op of a model as the checks see it: its name, its parameters and its output per sample. */
export interface LayerFootprint {
  /** `layers.3 (Dense 200000→200000)`: the module path and what the layer is. */
  name: string;
  params: { name: string; shape: number[] }[];
  /** Per-sample output shape. */
  output: number[];
}

export interface Footprint {
  inputShape: number[];
  layers: LayerFootprint[];
}

const BYTES = 4; // every tensor is f32

/**
 * The footprint of an unbuilt Sequential from its layers' settings alone: nothing is allocated.
 * Null when a layer is of a kind this cannot follow (a custom layer), or does not take its input
 * (building the model then reports that, naming the layer).
 */
export function sequentialFootprint(model: Model, inputShape: Shape): Footprint | null {
  if (!(model instanceof Sequential)) return null;
  let shape: number[] = [...inputShape];
  const layers: LayerFootprint[] = [];
  for (const [i, m] of model.layers.entries()) {
    const l = layerFootprint(`layers.${i}`, m, shape);
    if (!l) return null;
    layers.push(l);
    shape = l.output;
  }
  return { inputShape: [...inputShape], layers };
}

/** One layer's parameters and output for an input of `x` per sample, by the rules its build follows. */
function layerFootprint(path: string, m: Module, x: number[]): LayerFootprint | null {
  const same = (kind: string) => ({ name: `${path} (${kind})`, params: [], output: [...x] });
  if (m instanceof Dense) {
    if (x.length !== 1 && x.length !== 2) return null;
    const nIn = x[x.length - 1];
    const params = [{ name: `${path}.weight`, shape: [m.units, nIn] }];
    if (m.opts.useBias !== false) params.push({ name: `${path}.bias`, shape: [m.units] });
    return { name: `${path} (Dense ${nIn}→${m.units})`, params, output: [...x.slice(0, -1), m.units] };
  }
  if (m instanceof Conv2d) {
    if (x.length !== 3) return null;
    const [c, h, w] = x;
    const [kh, kw] = m.kernel;
    const oh = windowPositions(h, kh, m.stride[0], m.padding[0]);
    const ow = windowPositions(w, kw, m.stride[1], m.padding[1]);
    if (!oh || !ow) return null;
    const params = [{ name: `${path}.weight`, shape: [m.outChannels, c, kh, kw] }];
    if (m.opts.bias !== false) params.push({ name: `${path}.bias`, shape: [m.outChannels] });
    return { name: `${path} (Conv2d ${c}→${m.outChannels}, ${kh}×${kw})`, params, output: [m.outChannels, oh, ow] };
  }
  if (m instanceof MaxPool2d || m instanceof AvgPool2d) {
    if (x.length !== 3) return null;
    const oh = windowPositions(x[1], m.kernel[0], m.stride[0], m.padding[0]);
    const ow = windowPositions(x[2], m.kernel[1], m.stride[1], m.padding[1]);
    if (!oh || !ow) return null;
    return { name: `${path} (${m.kind})`, params: [], output: [x[0], oh, ow] };
  }
  if (m instanceof BatchNorm2d) {
    if (x.length !== 3) return null;
    return { name: `${path} (BatchNorm2d ${x[0]})`, params: [`weight`, `bias`].map((p) => ({ name: `${path}.${p}`, shape: [x[0]] })), output: [...x] };
  }
  if (m instanceof GlobalAvgPool) return x.length === 3 ? { name: `${path} (GlobalAvgPool)`, params: [], output: [x[0]] } : null;
  if (m instanceof Flatten) return { name: `${path} (Flatten)`, params: [], output: [shapeSize(x)] };
  if (m instanceof Activation || m instanceof Softmax || m instanceof Dropout) return same(m.kind);
  return null;
}

/** The footprint of a built model of any kind, from its traced graph (parameters shared by ops counted once). */
export function graphFootprint(model: Model): Footprint {
  if (!model.graph) throw new Error('graphFootprint: build the model first.');
  const counted = new Set<object>();
  const layers = model.nodes.map((n) => {
    const params = n.op.params().filter((p) => !counted.has(p) && counted.add(p));
    return { name: `${n.path} (${n.op.kind})`, params: params.map((p) => ({ name: p.name, shape: [...p.value.shape] })), output: [...n.outputs[0].shape] };
  });
  return { inputShape: [...model.inputShape], layers };
}

/** Where the model will run and what it will hold: what `checkFootprint` compares against. */
export interface FitTarget {
  /** Samples per training step and per evaluation batch (the larger decides activations). */
  batch: number;
  evalBatch: number;
  /** Optimizer state tensors per parameter (Adam 2, SGD with momentum 1). */
  optimizerSlots: number;
  /** The adapter's limits (`maxBufferSize`, `maxStorageBufferBindingSize`). */
  limits: Record<string, number>;
  /** A software adapter keeps its "GPU" memory in host memory. */
  software: boolean;
  /** Host memory available to this process, in bytes (see hostMemoryBytes). */
  hostBytes: number;
  /** Whether checkpoints are encoded (each a host copy of weights and optimizer state). */
  checkpoints: boolean;
}

/**
 * Refuse a model that cannot be trained here, naming the first layer at fault, its size and the
 * limit: a parameter (or its gradient or optimizer state, which have its shape) or an activation
 * over the adapter's per-buffer limit, a checkpoint over what Node can hold in one buffer, or a
 * total over the host's memory. Figures are lower bounds: the planner shares activation memory,
 * so only the largest activation is counted in the total.
 */
export function checkFootprint(fp: Footprint, t: FitTarget): void {
  const perBuffer = Math.min(t.limits.maxBufferSize ?? Infinity, t.limits.maxStorageBufferBindingSize ?? Infinity);
  const limitName = (t.limits.maxStorageBufferBindingSize ?? Infinity) <= (t.limits.maxBufferSize ?? Infinity) ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
  const allows = `this adapter allows ${formatBytes(perBuffer)} per buffer (${limitName})`;
  let paramBytes = 0;
  for (const l of fp.layers) {
    for (const p of l.params) {
      const bytes = shapeSize(p.shape) * BYTES;
      paramBytes += bytes;
      if (bytes > perBuffer) {
        const what = p.name.endsWith('.bias') ? 'bias' : 'weights';
        throw new PreflightError(`${l.name}: ${formatBytes(bytes)} of ${what} (${p.name} [${p.shape.join(', ')}]); ${allows}, at most ${Math.floor(perBuffer / BYTES).toLocaleString('en-US')} values per tensor: make the layer smaller.`);
      }
    }
  }
  const batch = Math.max(t.batch, t.evalBatch);
  const tensors = [{ name: `the input batch`, shape: fp.inputShape }, ...fp.layers.map((l) => ({ name: l.name, shape: l.output }))];
  let largest = 0;
  for (const a of tensors) {
    const perSample = shapeSize(a.shape) * BYTES;
    largest = Math.max(largest, perSample * batch);
    if (perSample * batch > perBuffer) {
      const fits = Math.floor(perBuffer / perSample);
      const which = batch === t.batch ? `a training batch of ${batch}` : `an evaluation batch of ${batch}`;
      const fix =
        fits >= 1 ? (batch === t.batch ? `a batch size of at most ${fits} fits` : `evaluation batches are min(${t.evalBatch}, test samples), so a smaller model or input is needed`) : 'even one sample does not fit: make the layer smaller';
      throw new PreflightError(`${a.name}: its output for ${which} [${batch}, ${a.shape.join(', ')}] is ${formatBytes(perSample * batch)}; ${allows}: ${fix}.`);
    }
  }
  const checkpointBytes = paramBytes * (1 + t.optimizerSlots);
  if (t.checkpoints && checkpointBytes > bufferConstants.MAX_LENGTH) {
    throw new PreflightError(`the model's checkpoint (weights and optimizer state) would be ${formatBytes(checkpointBytes)}, over the ${formatBytes(bufferConstants.MAX_LENGTH)} Node can hold in one buffer: make the model smaller.`);
  }
  // Weights, their gradients and optimizer state, and at least the largest activation and its gradient.
  const device = paramBytes * (2 + t.optimizerSlots) + 2 * largest;
  // A checkpoint in memory while the next is read back and encoded: three copies at the peak.
  const copies = t.checkpoints ? 3 * checkpointBytes : 0;
  const host = (t.software ? device : 0) + copies;
  if (host > t.hostBytes) {
    const parts = [
      t.software ? `${formatBytes(device)} of parameters, gradients, optimizer state and activations, which a software adapter keeps in host memory` : '',
      copies ? `${formatBytes(copies)} for checkpoints (three copies of weights and optimizer state at the peak)` : '',
    ].filter(Boolean);
    throw new PreflightError(`the model needs at least ${formatBytes(host)} of host memory (${parts.join(', plus ')}), and this machine has ${formatBytes(t.hostBytes)}: make the model smaller.`);
  }
}

/** Host memory this process can use: the machine's, or the cgroup's limit when lower. */
export function hostMemoryBytes(): number {
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  // No limit reads as 0 or as a huge number, depending on the platform.
  return constrained && constrained < totalmem() ? constrained : totalmem();
}

/** `1.0 GiB (1,073,741,824 bytes)`. */
export function formatBytes(bytes: number): string {
  const units: [number, string][] = [
    [2 ** 40, 'TiB'],
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  const exact = `${bytes.toLocaleString('en-US')} bytes`;
  for (const [size, unit] of units) if (bytes >= size) return `${(bytes / size).toFixed(1)} ${unit} (${exact})`;
  return exact;
}

/** An output file of a run and the option that named it (for messages). */
export interface OutputFile {
  option: string;
  path: string;
}

/**
 * Check that every output file can be written, by writing (and removing) a probe file in its
 * directory, the way an atomic write will: a missing directory is made only with `mkdir` (a typo
 * in a path should not silently grow a new tree), a path that is a directory or lies under a
 * file is refused, and two options naming one file are refused. Nothing the user had is touched.
 * Returns the directories it made.
 */
export async function checkOutputs(files: OutputFile[], opts: { mkdir?: boolean } = {}): Promise<string[]> {
  const seen = new Map<string, string>();
  for (const f of files) {
    const full = resolve(f.path);
    const other = seen.get(full);
    if (other) throw new PreflightError(`${other} and ${f.option} both name ${f.path}: give each its own file.`);
    seen.set(full, f.option);
  }
  const made: string[] = [];
  for (const f of files) {
    const at = `${f.option} ${f.path}`;
    const target = await statOrNull(f.path, at);
    if (target?.isDirectory()) throw new PreflightError(`${at}: is a directory; name a file in it.`);
    const dir = dirname(resolve(f.path));
    const d = await statOrNull(dir, at);
    if (!d) {
      if (!opts.mkdir) throw new PreflightError(`${at}: the directory ${dirname(f.path)} does not exist; create it, or pass --mkdir to have it made.`);
      try {
        await mkdir(dir, { recursive: true });
      } catch (err) {
        throw new PreflightError(`${at}: cannot make the directory ${dirname(f.path)} (${errText(err)}).`);
      }
      made.push(dir);
    } else if (!d.isDirectory()) {
      throw new PreflightError(`${at}: ${dirname(f.path)} is a file, not a directory.`);
    }
    await probeWrite(dir, at);
  }
  return made;
}

async function statOrNull(path: string, at: string) {
  try {
    return await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') throw new PreflightError(`${at}: ${await fileAncestor(path)} is a file, not a directory.`);
    throw new PreflightError(`${at}: cannot look at ${path} (${errText(err)}).`);
  }
}

/** The nearest ancestor of `path` that exists: a file, when stat said ENOTDIR. */
async function fileAncestor(path: string): Promise<string> {
  for (let p = dirname(path); p !== dirname(p); p = dirname(p)) {
    const s = await stat(p).catch(() => null);
    if (s) return p;
  }
  return path;
}

/** Create and remove a file in `dir`: the only test of writability that holds for root, ACLs and read-only mounts alike. */
async function probeWrite(dir: string, at: string): Promise<void> {
  const probe = resolve(dir, `.wgtrain-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const h = await open(probe, 'wx');
    await h.close();
  } catch (err) {
    throw new PreflightError(`${at}: cannot write in ${dir} (${errText(err)}).`);
  }
  await unlink(probe).catch(() => {});
}

const errText = (err: unknown) => {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '')}` : e.message;
};
