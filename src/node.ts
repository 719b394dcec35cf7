/// <reference types="@webgpu/types" preserve="true" />
// The package's Node entry, "webgpu-train/node": what needs the file system. Dataset files and
// the named datasets, checkpoint files written atomically (and kept by step), the checks a long run
// makes before its first step, and the PyTorch export (its Python files ship in the package). The
// engine, models and training come from the main entry, "webgpu-train".
import './gpu/node-host.ts';

export {
  loadDataset,
  loadMnistDigits,
  loadIdxDir,
  loadCifar10Dir,
  loadCsvFile,
  readDataFile,
  resolveDataset,
  fashionMnistDir,
  NAMED_DATASETS,
  FASHION_MNIST_DEFAULT_DIR,
  FASHION_MNIST_CLASSES,
  type LoadOptions,
} from './data/node.ts';
export { readImageFolder, loadImageFolder } from './data/image-folder-node.ts';
export { writeFileAtomic, readFileChecked } from './train/atomic.ts';
export { CheckpointFiles } from './train/checkpoint-files.ts';
export {
  checkOutputs,
  checkFootprint,
  graphFootprint,
  sequentialFootprint,
  hostMemoryBytes,
  formatBytes,
  PreflightError,
  type Footprint,
  type LayerFootprint,
  type FitTarget,
  type OutputFile,
} from './train/preflight.ts';
export { exportPytorch, type PytorchExportOptions, type PytorchTrainingSettings } from './export/pytorch.ts';
