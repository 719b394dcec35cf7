// The per-step values uniform (shaders/_step.wgsl): what a training step changes (the step number,
// flags, the learning rate, an optimizer's per-step values), packed once per step into one small
// buffer that every kernel needing them binds as `step_values`.
import { STEP_DROPOUT } from '../ops/step.ts';

export { STEP_DROPOUT } from '../ops/step.ts';

/** Words of the uniform: step, flags, lr, then up to five values of the optimizer rule. */
export const STEP_VALUES_WORDS = 8;

export interface StepValues {
  /** 0-based training step. */
  step: number;
  /** Whether dropout is active in this step (training: yes, unless switched off for a call). */
  dropout: boolean;
  /** Learning rate of this step. */
  lr: number;
  /** The optimizer rule's own values (words 3 and up), e.g. Adam's bias corrections. */
  extra?: readonly number[];
}

/** The bytes of the uniform for one step. */
export function packStepValues(v: StepValues): ArrayBuffer {
  const extra = v.extra ?? [];
  if (extra.length > STEP_VALUES_WORDS - 3) throw new Error(`Step values: ${extra.length} optimizer values given; the uniform has room for ${STEP_VALUES_WORDS - 3}.`);
  if (!Number.isInteger(v.step) || v.step < 0 || v.step > 0xffffffff) throw new Error(`Step values: step ${v.step} is not a u32.`);
  if (!Number.isFinite(v.lr)) throw new Error(`Step values: the learning rate ${v.lr} is not a finite number.`);
  const buf = new ArrayBuffer(STEP_VALUES_WORDS * 4);
  const view = new DataView(buf);
  view.setUint32(0, v.step, true);
  view.setUint32(4, v.dropout ? STEP_DROPOUT : 0, true);
  view.setFloat32(8, v.lr, true);
  extra.forEach((x, i) => {
    if (!Number.isFinite(x)) throw new Error(`Step values: optimizer value ${i} = ${x} is not a finite number.`);
    view.setFloat32(12 + 4 * i, x, true);
  });
  return buf;
}
