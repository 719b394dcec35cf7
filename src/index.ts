// The library's public API.
export { Engine, Dispatch, grid1d } from './gpu/engine.ts';
export type { AdapterReport } from './gpu/device.ts';
export { Tensor } from './gpu/tensor.ts';
export { Layer, LayerShapeError } from './nn/layer.ts';
export { Dense } from './nn/dense.ts';
export { Activation, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax, Flatten } from './nn/activations.ts';
export { Dropout } from './nn/dropout.ts';
export { initialize, INITIALIZERS } from './nn/init.ts';
export { makePreset, presetNames, mlp } from './nn/presets.ts';
export { Optimizer, type OptimizerConfig } from './optim/optimizer.ts';
export { stepDecay, cosineWithWarmup, type ScheduleConfig } from './optim/schedule.ts';
export { Sequential, DivergenceError, type FitOptions, type EpochEvent, type StepEvent, type TrainState } from './train/model.ts';
export { checkpointBytes, readCheckpoint, modelFromCheckpoint, loadWeights, datasetInfo } from './train/checkpoint.ts';
export { loadDataset } from './data/node.ts';
export type { Dataset, Split } from './data/dataset.ts';
