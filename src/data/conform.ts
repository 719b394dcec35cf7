// A table read again to evaluate a trained model must be seen the way training saw its own: the
// same feature columns, the training split's standardisation (not statistics of the file at
// hand), and each class name at the index the model learned for it. A file holding fewer classes
// would otherwise shift every label after the missing one.
import { DataError, type Dataset } from './dataset.ts';

/** What a trained model knows of its table (a checkpoint stores these). */
export type TrainingTerms = Pick<Dataset, 'task' | 'numClasses' | 'classNames' | 'normalization' | 'targetNormalization' | 'featureNames'>;

/**
 * `data` (a table) with the training feature order checked, the training normalisation, and
 * labels re-indexed to the training classes. Non-tabular data is returned as it is. Refuses,
 * naming them, columns that differ from training and classes training never saw.
 */
export function conformToTraining(data: Dataset, t: TrainingTerms, fileLabel: string): Dataset {
  if (!data.featureNames || t.normalization.kind !== 'standardize') return data;
  if (t.featureNames && t.featureNames.join('\u0000') !== data.featureNames.join('\u0000')) {
    const missing = t.featureNames.filter((f) => !data.featureNames!.includes(f));
    const extra = data.featureNames.filter((f) => !t.featureNames!.includes(f));
    const what =
      missing.length || extra.length
        ? `${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `not in training ${extra.join(', ')} (skip with --ignore-columns)` : ''}`
        : 'the same columns in another order';
    throw new DataError(fileLabel, `the feature columns differ from the model's: ${what}. The model was trained on ${t.featureNames.join(', ')}`);
  }
  const out: Dataset = { ...data, normalization: t.normalization, targetNormalization: t.targetNormalization };
  if (data.task !== 'classification' || t.task !== 'classification' || !t.classNames || !data.classNames) return out;
  const index = new Map(t.classNames.map((name, i) => [name, i]));
  const unknown = data.classNames.filter((name) => !index.has(name));
  if (unknown.length) {
    throw new DataError(fileLabel, `class${unknown.length > 1 ? 'es' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} never seen in training; the model knows ${t.classNames.join(', ')}`);
  }
  const map = data.classNames.map((name) => index.get(name)!);
  const relabel = (y: Dataset['train']['y']) => (t.numClasses <= 256 ? Uint8Array.from(y, (c) => map[c]) : Int32Array.from(y, (c) => map[c]));
  return {
    ...out,
    numClasses: t.numClasses,
    classNames: t.classNames,
    train: { ...data.train, y: relabel(data.train.y) },
    test: { ...data.test, y: relabel(data.test.y) },
  };
}
