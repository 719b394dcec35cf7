// Inverted dropout: in training, each element is kept with probability 1-p and scaled by 1/(1-p),
// by a mask made on the GPU from a counter-based hash of (seed, step, index); off in evaluation
// (y = x). The step comes from the per-step values uniform, so a replayed step draws a new mask
// with no write of its own, and a resumed run draws the same masks as an uninterrupted one.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Shape } from '../gpu/tensor.ts';
import { dropoutBackward, dropoutForward, dropoutForwardStep } from '../kernels/dropout.ts';
import { dropoutStepSeed } from '../ops/step.ts';
import type { OpSpec } from '../ops/graph.ts';
import type { Rng } from '../util/random.ts';
import { Layer } from './layer.ts';
import type { OpIO, OpPlan } from './op.ts';

export class Dropout extends Layer {
  readonly kind = 'Dropout';
  readonly accumulates = true;
  private seedBase = 0;

  constructor(readonly p: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}.`);
  }

  build(_e: Engine, inputShape: Shape, rng: Rng): Shape {
    this.seedBase = rng.nextU32();
    return [...inputShape];
  }

  /** The seed of the mask at a training step (what the kernel derives on the GPU). */
  stepSeed(step: number): number {
    return dropoutStepSeed(this.seedBase, step);
  }

  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const mask = io.scratch(io.x.shape, `${io.path}.mask`);
    const fwd = await dropoutForwardStep(e, io.x, io.y, mask, { p: this.p, seedBase: this.seedBase }, io.stepValues);
    // Evaluation: y = x, as a copy through a p = 0 dropout (mask all ones) so plans stay dispatch lists.
    const evalMask = io.scratch(io.x.shape, `${io.path}.evalmask`);
    const fwdEval = await dropoutForward(e, io.x, io.y, evalMask, { p: 0, seed: 0 });
    // The backward of the evaluation forward (input gradients) goes through its all-ones mask.
    const backward: Dispatch[] = io.dy && io.dx ? [await dropoutBackward(e, io.dy, io.evalBackward ? evalMask : mask, io.dx.tensor, { accumulate: io.dx.accumulate })] : [];
    return {
      forward: [fwd],
      forwardEval: [fwdEval],
      backward,
      dispose: () => {
        for (const d of [fwd, fwdEval, ...backward]) d.dispose();
      },
    };
  }

  spec(): OpSpec {
    return { kind: 'dropout', p: this.p, seedBase: this.seedBase };
  }

  config(): Record<string, unknown> {
    return { p: this.p };
  }
}
