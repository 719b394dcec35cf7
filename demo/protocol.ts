// What the page and the training worker say to each other. The worker (worker.ts) owns the GPU
// engine, the dataset, the model and the training loop; the page (main.ts) calls the worker's API
// through Comlink (each call a message, each result a promise) and receives events (progress,
// epoch ends, device loss) through one callback it hands over at start. Only plain data crosses:
// numbers, strings, typed arrays (transferred where large), and the File objects the visitor picked.
import type { EpochEvent, StepEvent } from '../src/train/trainer.ts';
import type { StatsSnapshot } from '../src/train/stats-series.ts';

export interface AdapterInfo {
  name: string;
  description: string;
  isSoftware: boolean;
  runtime: string;
  limits: Record<string, number>;
}

/** What the page shows of a dataset; the samples stay in the worker. */
export interface DatasetSummary {
  name: string;
  train: number;
  test: number;
  inputShape: number[];
  numClasses: number;
  classNames: string[] | null;
  source: string | null;
  /** Pixels stored as uint8 scaled by 1/255 (images), else standardised features. */
  scale255: boolean;
}

export interface ModelConfig {
  preset: string;
  hidden: number[];
  optimizer: 'sgd' | 'adam' | 'adamw';
  lr: number;
  seed: number;
  /** resnet: 6n + 2 layers; vit: blocks. */
  depth?: number;
  /** vit */
  width?: number;
  heads?: number;
  patch?: number;
}

export interface ImageFolderSettings {
  imageSize: number;
  channels: 1 | 3 | 'auto';
  valSplit: number;
  seed: number;
}

/** One picked file of an image folder: its path below the folder (class/…/name) and the file. */
export interface PickedFile {
  path: string;
  file: File;
}

/** Test predictions with the pictures the page draws from them. */
export interface TestPictures {
  /** Predicted class and its probability, per test sample. */
  predicted: Int32Array;
  confidence: Float32Array;
  truth: Int32Array;
  /** The grid: test indices and their stored values (uint8 pixels or features), sample after sample. */
  grid: number[];
  gridValues: Uint8Array | Float32Array;
}

/** A saliency map (and for a ViT an attention map) of one test image, each [H, W] in [0, 1]. */
export interface Explanation {
  index: number;
  truth: number;
  predicted: number;
  confidence: number;
  /** The image's stored values [C, H, W]. */
  image: Uint8Array | Float32Array;
  saliency: Float32Array;
  /** Attention received by each image position in the last attention (mean over heads), upsampled; null without attention. */
  attention: Float32Array | null;
}

export interface Explanations {
  height: number;
  width: number;
  channels: number;
  /** Test images the model gets right, and wrong (a few of each, in test order). */
  right: Explanation[];
  wrong: Explanation[];
  /** Which attention the maps come from, e.g. `blocks.1.attn.scaled_softmax`. */
  attentionPath: string | null;
}

export type WorkerEvent =
  | { kind: 'step'; ev: StepEvent }
  /** An epoch ended: its figures, and the test predictions and explanations made right after it. */
  | { kind: 'epoch'; ev: EpochEvent; pictures: TestPictures | null; explanations: Explanations | null }
  | { kind: 'progress'; what: string; done: number; total: number }
  /** The device was lost; training went on from the state copied at `step` (null: nothing to resume). */
  | { kind: 'recovered'; message: string; step: number | null; adapter: AdapterInfo }
  /** The device was lost and could not be replaced. */
  | { kind: 'lost'; message: string }
  /** Per-layer statistics of a step (src/train/stats.ts): summaries and histogram counts of every parameter and its gradient. */
  | { kind: 'stats'; snapshot: StatsSnapshot }
  /** The matmul tuner's choices, to keep in the page's localStorage. */
  | { kind: 'tune'; key: string; value: string };

/** The worker's API (see worker.ts). */
export interface WorkerApi {
  start(tuneCache: string | null, onEvent: (e: WorkerEvent) => void): Promise<AdapterInfo>;
  loadBundledMnist(imagesUrl: string, labelsUrl: string): Promise<DatasetSummary>;
  loadIdx(files: File[]): Promise<DatasetSummary>;
  loadCifar(files: File[]): Promise<DatasetSummary>;
  /** An image folder: the summary, and the reader's report as lines (skipped files with reasons, notes). */
  loadImageFolder(root: string, files: PickedFile[], dirs: string[], settings: ImageFolderSettings): Promise<{ summary: DatasetSummary; report: string[]; skipped: number }>;
  build(cfg: ModelConfig): Promise<string>;
  /** Train more epochs; resolves when they are done or training stopped. */
  /** `statsEvery`: per-layer statistics every this many steps (0: none), sent as 'stats' events. */
  train(opts: { epochs: number; batchSize: number; seed: number; gridCount: number; explainPerKind: number; statsEvery: number }): Promise<void>;
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
  reset(): Promise<AdapterInfo>;
  hasModel(): boolean;
  summary(): string | null;
  firstWeights(): Promise<{ data: Float32Array; shape: number[] } | null>;
  testPictures(gridCount: number): Promise<TestPictures | null>;
  probabilities(x: Float32Array): Promise<Float32Array>;
  explain(perKind: number): Promise<Explanations | null>;
  save(): Promise<Uint8Array>;
  /** The model as ONNX (src/export/onnx.ts): inference semantics, inputs normalised as in training. */
  exportOnnx(): Promise<Uint8Array>;
  load(bytes: Uint8Array, label: string, fallback: ModelConfig): Promise<{ epoch: number; step: number; dataset: string | null; summary: string }>;
}
