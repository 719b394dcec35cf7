// What the CLI's commands share: an engine destroyed at the end (also on failure) so the process
// exits by itself, checkpoints opened with what they say about their data, the CSV layout
// options, and the checks that a dataset fits a checkpoint.
import type { CsvReadOptions } from '../data/csv-table.ts';
import type { Dataset } from '../data/dataset.ts';
import type { ImageFolderOptions } from '../data/image-folder.ts';
import { NAMED_DATASETS } from '../data/node.ts';
import { Engine } from '../gpu/engine.ts';
import { readFileChecked } from '../train/atomic.ts';
import type { Model } from '../nn/model.ts';
import { modelFromCheckpoint, readCheckpoint, trainerFromCheckpoint, type Checkpoint, type DatasetInfo } from '../train/checkpoint.ts';
import type { Trainer } from '../train/trainer.ts';
import { UsageError } from './options.ts';
import type { DataTerms } from './results.ts';

export async function withEngine<T>(fn: (e: Engine) => Promise<T>): Promise<T> {
  const e = await Engine.create();
  try {
    return await fn(e);
  } finally {
    e.destroy();
  }
}

export interface OpenedCheckpoint {
  model: Model;
  /** The model's trainer (loss, optimizer state, where training stood), when opened to train or evaluate. */
  trainer: Trainer | null;
  /** what the checkpoint says about its data; null for one saved without it */
  info: DatasetInfo | null;
  /** the model's kind and target terms: from the data info, else from its loss */
  terms: DataTerms & { featureNames?: string[] };
}

/** Open a checkpoint: its model, and with `train` its trainer too (which needs the saved loss and optimizer). */
export async function openCheckpoint(e: Engine, file: string, opts: { train?: boolean } = {}): Promise<OpenedCheckpoint> {
  return openParsedCheckpoint(e, readCheckpoint(await readFileChecked(file), file), file, opts);
}

/** openCheckpoint for a checkpoint already read (and checked against the data before anything is built). */
export async function openParsedCheckpoint(e: Engine, ckpt: Checkpoint, file: string, opts: { train?: boolean } = {}): Promise<OpenedCheckpoint> {
  const trainer = opts.train ? await trainerFromCheckpoint(e, ckpt, file) : null;
  const model = trainer?.model ?? (await modelFromCheckpoint(e, ckpt, file));
  const info = ckpt.meta.dataset;
  const outputs = model.outputShape.reduce((a, b) => a * b, 1);
  const terms = info ? { ...info } : { name: file, task: ckpt.meta.loss === 'mse' ? ('regression' as const) : ('classification' as const), numClasses: outputs };
  return { model, trainer, info, terms };
}

/** CSV layout options as the CLI parses them (commander's --no-header gives header: false). */
export interface CsvCliOptions extends ImageCliOptions {
  skipRows?: number;
  delimiter?: string;
  header?: boolean;
  ignoreColumns?: string[];
}

/** The CSV reading options of a command. */
export function csvOptions(o: CsvCliOptions): CsvReadOptions & { ignoreColumns?: string[] } {
  return { skipRows: o.skipRows, delimiter: o.delimiter, header: o.header, ignoreColumns: o.ignoreColumns };
}

/** Image-folder options as the CLI parses them. */
export interface ImageCliOptions {
  imageSize?: [number, number];
  channels?: 1 | 3 | 'auto';
  valSplit?: number;
  splitSeed?: number;
}

/**
 * How to read `spec` if it is an image folder; a checkpoint's image input shape [C, H, W] gives
 * the size and channels not given. Refuses image options for a named dataset or a table.
 */
export function imageOptions(spec: string, o: ImageCliOptions, info?: { inputShape: number[] } | null): ImageFolderOptions {
  const given = (['imageSize', 'channels', 'valSplit', 'splitSeed'] as const).filter((k) => o[k] !== undefined);
  if (given.length && ((NAMED_DATASETS as readonly string[]).includes(spec) || isTableFile(spec))) {
    const flag = { imageSize: '--image-size', channels: '--channels', valSplit: '--val-split', splitSeed: '--split-seed' }[given[0]];
    throw new UsageError(`${flag} applies to image folders; "${spec}" is not one.`);
  }
  const shape = info?.inputShape.length === 3 ? info.inputShape : null;
  return {
    imageSize: o.imageSize ?? (shape ? [shape[1], shape[2]] : undefined),
    channels: o.channels ?? (shape && (shape[0] === 1 || shape[0] === 3) ? (shape[0] as 1 | 3) : 'auto'),
    valSplit: o.valSplit,
    seed: o.splitSeed,
  };
}

/** Whether a dataset spec is a table file. */
export const isTableFile = (spec: string) => /\.(csv|tsv)$/i.test(spec);

export function checkDataMatches(data: Dataset, info: DatasetInfo | null, file: string): void {
  if (!info) return;
  if (info.inputShape.join('x') !== data.inputShape.join('x') || info.numClasses !== data.numClasses) {
    throw new UsageError(
      `checkpoint ${file} was trained on "${info.name}" (samples [${info.inputShape.join(', ')}], ${info.numClasses} outputs); dataset "${data.name}" has samples [${data.inputShape.join(', ')}] and ${data.numClasses} outputs.`,
    );
  }
}
