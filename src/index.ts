/// <reference types="@webgpu/types" preserve="true" />
// The library's public API, as the package's main entry: everything that runs wherever WebGPU does.
// It imports no Node module, so browser bundlers take it as it is; Node loads index.node.ts, which
// adds Dawn as the GPU. What needs the file system (dataset files, checkpoint files, the PyTorch
// export) is in node.ts, the package's "webgpu-train/node" entry.
export { Engine, Dispatch, grid1d, type EngineOptions } from './gpu/engine.ts';
export type { AdapterReport, DeviceOptions } from './gpu/device.ts';
export { Tensor } from './gpu/tensor.ts';
export { Module } from './nn/module.ts';
export { Model, type BuildOptions, type ModelPlan, type PlanOptions, type PlanStats } from './nn/model.ts';
export { Sequential } from './nn/sequential.ts';
export { Value, GraphError } from './nn/graph.ts';
export {
  add,
  mul,
  scale,
  matmul,
  attention,
  reshape,
  permute,
  concat,
  split,
  slice,
  broadcast,
  sum,
  mean,
  softmax,
  scaledSoftmax,
  relu,
  leakyRelu,
  sigmoid,
  tanh,
  gelu,
} from './nn/functional.ts';
export type { Op, OpIO, OpPlan, Param, GradOut } from './nn/op.ts';
export { Layer, LayerShapeError } from './nn/layer.ts';
export { Dense } from './nn/dense.ts';
export { Activation, ReLU, Softmax, Flatten } from './nn/activations.ts';
export { Dropout } from './nn/dropout.ts';
export { Conv2d, type Conv2dOptions, type ConvAlgorithm } from './nn/conv.ts';
export { MaxPool2d, AvgPool2d, GlobalAvgPool, type Pool2dOptions, type AvgPool2dOptions } from './nn/pool.ts';
export { BatchNorm2d, type BatchNorm2dOptions } from './nn/batchnorm.ts';
export { LayerNorm, Attention, TransformerBlock, VisionTransformer, type VitOptions } from './nn/transformer.ts';
export { ResNet, BasicBlock, RESNET_DEPTHS, type ResNetOptions } from './nn/resnet.ts';
export { initialize, INITIALIZERS, type Initializer } from './nn/init.ts';
export { makePreset, presetNames, mlp, type PresetOptions } from './nn/presets.ts';
export { cnn, cnnCifar, type CnnPresetOptions } from './nn/cnn-presets.ts';
export { Optimizer, optimizerKinds, registerOptimizer, type OptimizerConfig, type OptimizerRule } from './optim/optimizer.ts';
export { stepDecay, cosineWithWarmup, type Schedule, type ScheduleConfig } from './optim/schedule.ts';
export { regressionMetrics, classificationMetrics, confusionMatrix, topKAccuracy, type ClassificationReport, type RegressionMetrics } from './train/metrics.ts';
export {
  Trainer,
  predict,
  DivergenceError,
  ResumeMismatchError,
  type CompileOptions,
  type FitOptions,
  type EpochEvent,
  type StepEvent,
  type CheckpointEvent,
  type EvalResult,
  type EvaluateOptions,
  type DivergenceOptions,
} from './train/trainer.ts';
export { TrainStep, type TrainState, type StepOptions } from './train/step.ts';
export { StatsRecorder, type StatsOptions } from './train/stats.ts';
export { StatsWatch, statsSeries, STATS_BANDS, type StatsSnapshot, type ParamStats, type ActivationStats, type TensorSummary, type Histogram, type StatsSeries, type StatsWarning } from './train/stats-series.ts';
export {
  checkpointBytes,
  readCheckpoint,
  modelFromCheckpoint,
  trainerFromCheckpoint,
  loadWeights,
  datasetInfo,
  type Checkpoint,
  type CheckpointMeta,
  type CheckpointOptions,
  type DatasetInfo,
} from './train/checkpoint.ts';
export { encodeSafetensors, decodeSafetensors, CheckpointError, type NamedTensor } from './train/safetensors.ts';
export { runTraining, type RunOptions, type RunResult, type RunOutcome, type CheckpointStore } from './train/run.ts';
// Data in memory: the shape every source is brought into, and the parsers, which the browser uses
// on picked files and Node's loaders on files read from disk.
export { DataError, sampleSize, type Dataset, type Split, type Normalization } from './data/dataset.ts';
export { parseIdx, parseIdxPair, idxDataset, encodeIdx, type NamedBytes, type IdxDatasetOptions } from './data/idx.ts';
export { parseCifarBatch, cifar10Dataset, CIFAR10_CLASSES } from './data/cifar.ts';
export { parseCsv, type CsvOptions } from './data/csv.ts';
export { mnistDigitsDataset } from './data/mnist.ts';
export { Batcher, type BatcherOptions } from './data/batcher.ts';
export type { AugmentOptions } from './data/augment.ts';
export { saliency, attentionMaps, attentionValues, type SaliencyResult, type AttentionResult } from './train/explain.ts';
export { ImageFolderReader, sortImageFolder, formatImageFolderReport, type ImageFolderOptions, type ImageFolderReport } from './data/image-folder.ts';
export { exportOnnx, onnxFromGraph, ExportError, ONNX_OPSET, type OnnxExportOptions } from './export/onnx.ts';
export { pytorchModelSource } from './export/pytorch-model.ts';
export { loadStateDict } from './export/state-dict.ts';
