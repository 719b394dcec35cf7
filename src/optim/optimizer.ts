// Optimizers as open rules: each rule (src/optim/sgd.ts, src/optim/adam.ts) says which state it
// keeps per parameter, builds one update dispatch per parameter tensor from its own kernel, and
// names the per-step values it needs; this file holds what is common (the schedule, the state's
// checkpoint names, the registry). Adding an optimizer touches its own files and one register call.
import type { BufferArg, Dispatch, Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { Param } from '../nn/op.ts';
import './adam.ts';
import { ruleOf, type OptimizerConfig, type OptimizerRule } from './registry.ts';
import { makeSchedule, type Schedule, type ScheduleConfig } from './schedule.ts';
import './sgd.ts';

export { optimizerKinds, registerOptimizer, type OptimizerConfig, type OptimizerRule } from './registry.ts';

/** The config with every default filled in (as in PyTorch; AdamW's weight decay 0.01). */
export function withDefaults(c: OptimizerConfig): ReturnType<OptimizerRule['withDefaults']> {
  return ruleOf(c.kind).withDefaults(c);
}

interface Slot {
  param: Param;
  state: { slot: string; value: Tensor }[];
  dispatch: Dispatch;
}

export class Optimizer {
  readonly config: ReturnType<typeof withDefaults>;
  readonly rule: OptimizerRule;
  private schedule: Schedule;
  private slots: Slot[] = [];

  constructor(config: OptimizerConfig) {
    this.rule = ruleOf(config.kind);
    this.config = this.rule.withDefaults(config);
    this.schedule = makeSchedule(config.schedule);
  }

  /** Replace the learning-rate schedule from the next step on (checkpoints save the new one). */
  reschedule(schedule: ScheduleConfig): void {
    this.schedule = makeSchedule(schedule);
    (this.config as { schedule?: ScheduleConfig }).schedule = schedule;
  }

  /** The learning rate used at a (0-based) step. */
  lrAt(step: number): number {
    return this.schedule(step, this.config.lr);
  }

  /** The rule's own per-step values at a (0-based) step. */
  stepValues(step: number): number[] {
    return this.rule.stepValues(this.config, step);
  }

  /** Allocate state (zeros) for each parameter and build its update dispatch, reading `stepValues`. */
  async attach(e: Engine, params: Param[], stepValues: BufferArg): Promise<void> {
    this.dispose();
    for (const p of params) {
      const state = this.rule.slots(this.config).map((slot) => ({ slot, value: e.zeros(p.value.shape, `${p.name}.${slot}`) }));
      const dispatch = await this.rule.update(
        e,
        p,
        state.map((s) => s.value),
        this.config,
        p.decay,
        stepValues,
      );
      this.slots.push({ param: p, state, dispatch });
    }
  }

  /** The update dispatches, one per parameter, to record after the backward pass. */
  dispatches(): Dispatch[] {
    return this.slots.map((s) => s.dispatch);
  }

  /** State tensors named `optim.<param>.<slot>`, for checkpoints. */
  state(): { name: string; value: Tensor }[] {
    return this.slots.flatMap((s) => s.state.map((t) => ({ name: `optim.${s.param.name}.${t.slot}`, value: t.value })));
  }

  dispose(): void {
    for (const s of this.slots) {
      s.dispatch.dispose();
      s.state.forEach((t) => t.value.dispose());
    }
    this.slots = [];
  }
}
