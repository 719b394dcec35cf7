// The optimizer rules by kind, and the config they read. A rule registers itself when its module
// is loaded (src/optim/sgd.ts, src/optim/adam.ts; src/optim/optimizer.ts loads the built-in ones).
import type { BufferArg, Dispatch, Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { Param } from '../nn/op.ts';
import type { ScheduleConfig } from './schedule.ts';

export interface OptimizerConfig {
  kind: string;
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

/** One optimizer: its defaults, its state, its update kernel and its per-step values. */
export interface OptimizerRule {
  kind: string;
  /** The config with every default filled in; throws on a bad value. */
  withDefaults(c: OptimizerConfig): Required<Omit<OptimizerConfig, 'schedule'>> & { schedule?: ScheduleConfig };
  /** Names of the state tensors kept per parameter (zeros at the start), e.g. ['m', 'v']. */
  slots(c: OptimizerConfig): string[];
  /** The update dispatch of one parameter; `decay` says whether weight decay applies to it. */
  update(e: Engine, p: Param, state: Tensor[], c: OptimizerConfig, decay: boolean, stepValues: BufferArg): Promise<Dispatch>;
  /** The rule's per-step values (words 3 and up of the step uniform) at a 0-based step. */
  stepValues(c: OptimizerConfig, step: number): number[];
}

const rules = new Map<string, OptimizerRule>();

/** Make an optimizer rule available by its kind (the CLI's --optimizer choices follow). */
export function registerOptimizer(rule: OptimizerRule): void {
  rules.set(rule.kind, rule);
}

export function optimizerKinds(): string[] {
  return [...rules.keys()];
}

export function ruleOf(kind: string): OptimizerRule {
  const r = rules.get(kind);
  if (!r) throw new Error(`Unknown optimizer "${kind}" (known: ${optimizerKinds().join(', ')}).`);
  return r;
}

/** Checks every rule shares: a positive finite learning rate. */
export function checkLr(c: OptimizerConfig): void {
  if (!(c.lr > 0) || !Number.isFinite(c.lr)) throw new Error(`Optimizer ${c.kind}: learning rate must be a positive number, got ${c.lr}.`);
}
