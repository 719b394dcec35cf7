// Inverted dropout: in training, each element is kept with probability 1-p and scaled by 1/(1-p),
// by a mask made on the GPU from a counter-based hash of (seed, step, index); off in evaluation
// (y = x). The mask depends only on the model seed, the layer and the step, so a resumed run draws
// the same masks as an uninterrupted one.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Shape, Tensor } from '../gpu/tensor.ts';
import { dropoutBackward, dropoutForward, dropoutParams } from '../kernels/dropout.ts';
import type { Rng } from '../util/random.ts';
import { Layer, type LayerPlan, type PlanIO } from './layer.ts';

export class Dropout extends Layer {
  readonly kind = 'Dropout';
  private seedBase = 0;

  constructor(readonly p: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}.`);
  }

  build(_e: Engine, inputShape: Shape, rng: Rng): Shape {
    this.seedBase = rng.nextU32();
    this.inputShape = [...inputShape];
    this.outputShape = [...inputShape];
    return this.outputShape;
  }

  /** The seed for one training step (what the mask hash uses). */
  stepSeed(step: number): number {
    return (Math.imul(this.seedBase ^ 0x9e3779b9, 1) + Math.imul(step + 1, 0x85ebca6b)) >>> 0;
  }

  async plan(e: Engine, io: PlanIO): Promise<LayerPlan> {
    const mask: Tensor = e.tensor(io.x.shape, undefined, `${this.name}.mask`);
    const fwd = await dropoutForward(e, io.x, io.y, mask, { p: this.p, seed: this.stepSeed(0) });
    // Evaluation: y = x, as a copy through a p=0 dropout (mask all ones) so plans stay dispatch lists.
    const evalMask: Tensor = e.tensor(io.x.shape, undefined, `${this.name}.evalmask`);
    const fwdEval = await dropoutForward(e, io.x, io.y, evalMask, { p: 0, seed: 0 });
    const backward: Dispatch[] = io.dx ? [await dropoutBackward(e, io.dy, mask, io.dx)] : [];
    return {
      forward: [fwd],
      forwardEval: [fwdEval],
      backward,
      beforeStep: (step) => fwd.setParams(dropoutParams({ p: this.p, seed: this.stepSeed(step) }, io.x.size)),
      dispose: () => {
        for (const d of [fwd, fwdEval, ...backward]) d.dispose();
        mask.dispose();
        evalMask.dispose();
      },
    };
  }

  config(): Record<string, unknown> {
    return { p: this.p };
  }
}
