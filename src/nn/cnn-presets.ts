// Convolutional model presets, offered by name through src/nn/presets.ts: `cnn` for 28x28
// grayscale images (MNIST, Fashion-MNIST) and `cnn-cifar` for 32x32 colour images (CIFAR-10).
// Channel counts are chosen so that training stays affordable on a software adapter (SwiftShader
// on 2 CPU cores), where the convolutions dominate a step's time.
import { Activation, Flatten } from './activations.ts';
import { BatchNorm2d } from './batchnorm.ts';
import { Conv2d } from './conv.ts';
import { Dense } from './dense.ts';
import { Dropout } from './dropout.ts';
import type { Layer } from './layer.ts';
import { GlobalAvgPool, MaxPool2d } from './pool.ts';
import { Sequential } from './sequential.ts';

/** Options the CNN presets read (the MLP's `hidden` and `activation` do not apply). */
export interface CnnPresetOptions {
  /**
   * Rate of the dropout before the classifier when > 0; 0 or absent keeps the preset's own rate
   * (the CLI always passes its --dropout, whose default is 0).
   */
  dropout?: number;
}

/** Dropout before the classifier of `cnn`: 0.5 as in the classic MNIST CNNs. */
export const CNN_DROPOUT = 0.5;

/**
 * Conv(3x3, pad 1) - ReLU - MaxPool(2) - BatchNorm: one block, halving H and W. The ReLU is fused
 * into the convolution (no pass of its own) and the normalisation runs on the pooled tensor, a
 * quarter of the conv output, so the step spends less time in normalisation and ReLU passes than
 * the usual Conv - BatchNorm - ReLU - MaxPool order (step profiles in bench/README.md). The next
 * convolution still sees normalised inputs, which is what speeds up training.
 */
function convBlock(channels: number): Layer[] {
  return [new Conv2d(channels, { kernel: 3, padding: 1 }), new Activation('relu'), new MaxPool2d({ kernel: 2 }), new BatchNorm2d()];
}

/**
 * Small CNN for [1, 28, 28] inputs: two blocks of Conv(3x3, pad 1) - ReLU - MaxPool(2) - BatchNorm
 * with 16 and 32 channels (28 -> 14 -> 7), then Flatten - Dense(128) - ReLU - Dropout(0.5) -
 * Dense(outputs). About 207k parameters, 1.2 M multiply-adds per image. The dropout is there because
 * the Dense(1568 -> 128) layer holds nearly all the weights, and without it the network overfits
 * MNIST's digits within a few epochs (the accuracies with and without it are in bench/README.md).
 */
export function cnn(outputs: number, opts: CnnPresetOptions = {}): Sequential {
  return new Sequential([...convBlock(16), ...convBlock(32), new Flatten(), new Dense(128, { kernelInitializer: 'he_uniform' }), new Activation('relu'), new Dropout(opts.dropout || CNN_DROPOUT), new Dense(outputs)]);
}

/**
 * Deeper CNN for [3, 32, 32] inputs: three blocks of Conv(3x3, pad 1) - ReLU - MaxPool(2) -
 * BatchNorm with 32, 64 and 128 channels (32 -> 16 -> 8 -> 4), then GlobalAvgPool (- Dropout) -
 * Dense(outputs). Global pooling instead of Flatten keeps the classifier at 128 x outputs weights.
 * About 95k parameters, 10 M multiply-adds per image.
 */
export function cnnCifar(outputs: number, opts: CnnPresetOptions = {}): Sequential {
  const layers: Layer[] = [...convBlock(32), ...convBlock(64), ...convBlock(128), new GlobalAvgPool()];
  if (opts.dropout) layers.push(new Dropout(opts.dropout));
  layers.push(new Dense(outputs));
  return new Sequential(layers);
}
