// Optimizers: SGD (momentum, Nesterov), Adam, AdamW, with L2 regularisation (SGD, Adam) or
// decoupled weight decay (AdamW) and a learning-rate schedule. Each is one in-place GPU kernel
// dispatch per parameter tensor; state (velocity, moments) lives on the GPU and is saved in
// checkpoints as `optim.<param name>.<slot>`.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { adamParams, adamUpdate, sgdParams, sgdUpdate } from '../kernels/optim.ts';
import type { Param } from '../nn/layer.ts';
import { makeSchedule, type Schedule, type ScheduleConfig } from './schedule.ts';

export interface OptimizerConfig {
  kind: 'sgd' | 'adam' | 'adamw';
  lr: number;
  /** SGD momentum (0 = plain SGD). */
  momentum?: number;
  nesterov?: boolean;
  /** SGD/Adam: L2 penalty added to the gradient; AdamW: decoupled decay rate. */
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  schedule?: ScheduleConfig;
}

export const OPTIMIZERS = ['sgd', 'adam', 'adamw'] as const;

/** Defaults as in PyTorch (AdamW's weight decay 0.01). */
export function withDefaults(c: OptimizerConfig): Required<Omit<OptimizerConfig, 'schedule'>> & { schedule?: ScheduleConfig } {
  if (!OPTIMIZERS.includes(c.kind)) throw new Error(`Unknown optimizer "${c.kind}" (known: ${OPTIMIZERS.join(', ')}).`);
  if (!(c.lr > 0) || !Number.isFinite(c.lr)) throw new Error(`Optimizer ${c.kind}: learning rate must be a positive number, got ${c.lr}.`);
  const full = {
    kind: c.kind,
    lr: c.lr,
    momentum: c.momentum ?? (c.kind === 'sgd' ? 0.9 : 0),
    nesterov: c.nesterov ?? false,
    weightDecay: c.weightDecay ?? (c.kind === 'adamw' ? 0.01 : 0),
    beta1: c.beta1 ?? 0.9,
    beta2: c.beta2 ?? 0.999,
    eps: c.eps ?? 1e-8,
    schedule: c.schedule,
  };
  if (full.momentum < 0 || full.momentum >= 1) throw new Error(`Optimizer ${c.kind}: momentum must be in [0, 1), got ${full.momentum}.`);
  if (full.weightDecay < 0) throw new Error(`Optimizer ${c.kind}: weight decay must be >= 0, got ${full.weightDecay}.`);
  if (full.nesterov && full.momentum === 0) throw new Error('Optimizer sgd: Nesterov needs momentum > 0.');
  return full;
}

interface Slot {
  param: Param;
  state: { slot: string; value: Tensor }[];
  dispatch: Dispatch;
}

export class Optimizer {
  readonly config: ReturnType<typeof withDefaults>;
  private schedule: Schedule;
  private slots: Slot[] = [];

  constructor(config: OptimizerConfig) {
    this.config = withDefaults(config);
    this.schedule = makeSchedule(config.schedule);
  }

  /** The learning rate used at a (0-based) step. */
  lrAt(step: number): number {
    return this.schedule(step, this.config.lr);
  }

  /** Allocate state (zeros) for each parameter and build its update dispatch. */
  async attach(e: Engine, params: Param[]): Promise<void> {
    this.dispose();
    const c = this.config;
    for (const p of params) {
      const wd = p.decay ? c.weightDecay : 0;
      if (c.kind === 'sgd') {
        // Plain SGD keeps no velocity (checkpoints then hold no optim.* tensors for it).
        const v = c.momentum > 0 ? e.zeros(p.value.shape, `${p.name}.velocity`) : null;
        const d = await sgdUpdate(e, p.value, p.grad, v, { lr: c.lr, momentum: c.momentum, weightDecay: wd, nesterov: c.nesterov });
        this.slots.push({ param: p, state: v ? [{ slot: 'velocity', value: v }] : [], dispatch: d });
      } else {
        const m = e.zeros(p.value.shape, `${p.name}.m`);
        const v = e.zeros(p.value.shape, `${p.name}.v`);
        const opts = { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: wd, decoupled: c.kind === 'adamw', step: 1 };
        const d = await adamUpdate(e, p.value, p.grad, m, v, opts);
        this.slots.push({ param: p, state: [{ slot: 'm', value: m }, { slot: 'v', value: v }], dispatch: d });
      }
    }
  }

  /** Set this step's rate (and Adam's bias corrections) and return the update dispatches to record. */
  record(step: number): Dispatch[] {
    const c = this.config;
    const lr = this.lrAt(step);
    for (const s of this.slots) {
      const wd = s.param.decay ? c.weightDecay : 0;
      const n = s.param.value.size;
      if (c.kind === 'sgd') s.dispatch.setParams(sgdParams({ lr, momentum: c.momentum, weightDecay: wd, nesterov: c.nesterov }, n));
      else s.dispatch.setParams(adamParams({ lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: wd, decoupled: c.kind === 'adamw', step: step + 1 }, n));
    }
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
