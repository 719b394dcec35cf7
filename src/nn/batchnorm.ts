// BatchNorm2d: per-channel batch normalisation of NCHW activations ([C, H, W] per sample, shape
// kept). Training normalises with the batch's mean and biased variance over (B, H, W) and updates
// the running averages (PyTorch semantics: running = (1 - momentum) * running + momentum * batch,
// unbiased variance for running_var); evaluation normalises with the running averages. Parameters
// and buffers carry PyTorch's names: weight (gamma), bias (beta), running_mean, running_var.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Shape } from '../gpu/tensor.ts';
import { reluBackward } from '../kernels/activation.ts';
import { batchNormBackward, batchNormForwardEval, batchNormForwardTrain } from '../kernels/batchnorm.ts';
import { scaleForward } from '../kernels/elementwise.ts';
import type { OpSpec } from '../ops/graph.ts';
import type { Epilogue, Node } from './graph.ts';
import { expectImage, Layer } from './layer.ts';
import type { OpIO, OpPlan, Param, StateTensor } from './op.ts';

/** BatchNorm2d's options, PyTorch's defaults. */
export interface BatchNorm2dOptions {
  /** Weight of each batch's statistics in the running averages; default 0.1 (PyTorch). */
  momentum?: number;
  /** Added to the variance before the square root; default 1e-5 (PyTorch). */
  eps?: number;
}

/** Batch normalisation over (B, H, W) per channel of [B, C, H, W]. */
export class BatchNorm2d extends Layer {
  readonly kind = 'BatchNorm2d';
  readonly accumulates = true;
  readonly momentum: number;
  readonly eps: number;
  gamma: Param | null = null; // [C]
  beta: Param | null = null; // [C]
  runningMean: StateTensor | null = null; // [C]
  runningVar: StateTensor | null = null; // [C]

  constructor(opts: BatchNorm2dOptions = {}) {
    super();
    this.momentum = opts.momentum ?? 0.1;
    this.eps = opts.eps ?? 1e-5;
    if (!(this.momentum >= 0 && this.momentum <= 1)) throw new Error(`BatchNorm2d: momentum must be in [0, 1], got ${opts.momentum}.`);
    if (!(this.eps >= 0 && Number.isFinite(this.eps))) throw new Error(`BatchNorm2d: eps must be a finite number >= 0, got ${opts.eps}.`);
  }

  build(e: Engine, inputShape: Shape): Shape {
    const [C] = expectImage(this.name, inputShape);
    const n = this.at;
    // Scales and shifts are not decayed: shrinking gamma towards 0 would fight the normalisation.
    this.gamma = { name: 'weight', value: e.tensor([C], new Float32Array(C).fill(1), `${n}.weight`), grad: e.zeros([C], `${n}.dweight`), decay: false };
    this.beta = { name: 'bias', value: e.zeros([C], `${n}.bias`), grad: e.zeros([C], `${n}.dbias`), decay: false };
    this.runningMean = { name: 'running_mean', value: e.zeros([C], `${n}.running_mean`) };
    this.runningVar = { name: 'running_var', value: e.tensor([C], new Float32Array(C).fill(1), `${n}.running_var`) };
    return [...inputShape];
  }

  ownParams(): Param[] {
    return [this.gamma, this.beta].filter((p): p is Param => p !== null);
  }

  ownBuffers(): StateTensor[] {
    return [this.runningMean, this.runningVar].filter((b): b is StateTensor => b !== null);
  }

  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    if (!this.gamma || !this.beta || !this.runningMean || !this.runningVar) throw new Error(`Layer ${this.name}: plan() before build().`);
    const C = this.inputShape[0];
    const relu = io.epilogue?.activation === 'relu';
    const forwardEval = [await batchNormForwardEval(e, io.x, this.gamma.value, this.beta.value, this.runningMean.value, this.runningVar.value, io.y, { eps: this.eps, relu })];
    if (io.evalBackward) return this.planEvalGradient(e, io, forwardEval);
    const perChannel = (io.x.size / io.batch / C) * io.batch;
    // A batch with one value per channel has no variance to normalise by (and an undefined
    // unbiased running variance): such a plan evaluates and predicts, but refuses to train.
    if (perChannel < 2) {
      const why = `Layer ${this.name}: cannot train on a batch of ${io.batch} samples of [${this.inputShape.join(', ')}]: batch normalisation needs at least 2 values per channel.`;
      return {
        forward: [],
        forwardEval,
        backward: [],
        beforeStep: () => {
          throw new Error(why);
        },
        dispose: () => forwardEval.forEach((d) => d.dispose()),
      };
    }
    // Saved for backward: the batch mean per channel, then 1 / sqrt(biased batch variance + eps).
    const saved = io.scratch([2, C], `${io.path}.saved`);
    const forward = [
      await batchNormForwardTrain(e, io.x, this.gamma.value, this.beta.value, io.y, saved, this.runningMean.value, this.runningVar.value, {
        eps: this.eps,
        momentum: this.momentum,
        relu,
      }),
    ];
    const backward: Dispatch[] = [];
    if (io.dy) {
      const gg = io.grad(this.gamma);
      const gb = io.grad(this.beta);
      // One kernel writes dx, dgamma and dbeta under one accumulate flag. A model input has no
      // dx to write: it gets a scratch. When dx and the parameters disagree (one written, the
      // other added to), dx goes through a scratch that the planner cannot add in: refuse.
      const dx = io.dx ?? { tensor: io.scratch(io.x.shape, `${io.path}.dx-unused`), accumulate: gg.accumulate };
      if (dx.accumulate !== gg.accumulate || gb.accumulate !== gg.accumulate) {
        throw new Error(`Layer ${this.name}: its input gradient and its parameter gradients must both be written or both be added to (a BatchNorm2d called twice on a value used elsewhere is not supported).`);
      }
      backward.push(await batchNormBackward(e, io.x, io.dy, this.gamma.value, saved, dx.tensor, gg.tensor, gb.tensor, { accumulate: gg.accumulate, reluOutput: relu ? io.y : undefined }));
    }
    return {
      forward,
      forwardEval,
      backward,
      dispose: () => {
        for (const d of [...forward, ...forwardEval, ...backward]) d.dispose();
      },
    };
  }

  /**
   * The evaluation forward and its backward (for input gradients): with running statistics the
   * layer is a per-channel affine map, so dx = dy * gamma / sqrt(runningVar + eps), after the
   * fused ReLU's mask (where the output is 0). The evaluation kernel computes exactly that when
   * given dy as its input, a zero mean and a zero shift. Parameter gradients are not computed.
   */
  private async planEvalGradient(e: Engine, io: OpIO, forwardEval: Dispatch[]): Promise<OpPlan> {
    const C = this.inputShape[0];
    const zeros = e.zeros([C], `${io.path}.zeros`);
    const backward: Dispatch[] = [];
    if (io.dy && io.dx) {
      let dz = io.dy;
      if (io.epilogue?.activation === 'relu') {
        dz = io.scratch(io.x.shape, `${io.path}.dz`);
        backward.push(await reluBackward(e, io.y, io.dy, dz));
      }
      const into = io.dx.accumulate ? io.scratch(io.x.shape, `${io.path}.dx`) : io.dx.tensor;
      backward.push(await batchNormForwardEval(e, dz, this.gamma!.value, zeros, zeros, this.runningVar!.value, into, { eps: this.eps, relu: false }));
      if (io.dx.accumulate) backward.push(await scaleForward(e, into, io.dx.tensor, 1, { accumulate: true }));
    }
    return {
      forward: forwardEval,
      forwardEval,
      backward,
      dispose: () => {
        for (const d of [...forwardEval, ...backward]) d.dispose();
        zeros.dispose();
      },
    };
  }

  spec(node: Node): OpSpec {
    return { kind: 'batchnorm2d', weight: this.gamma!.name, bias: this.beta!.name, runningMean: this.runningMean!.name, runningVar: this.runningVar!.name, eps: this.eps, momentum: this.momentum, relu: node.epilogue?.activation === 'relu' };
  }

  /** A ReLU (layer or function) reading only this layer's output runs in the same pass. */
  absorb(node: Node, consumer: Node): Epilogue | null {
    const s = consumer.op.spec?.(consumer);
    if (node.epilogue || s?.kind !== 'activation' || s.activation.kind !== 'relu') return null;
    return { activation: 'relu', alpha: 0 };
  }

  config(): Record<string, unknown> {
    return { momentum: this.momentum, eps: this.eps };
  }
}
