// The Adam rule, and AdamW (decoupled weight decay): two moments per parameter; the bias
// corrections of each step are per-step values computed on the host in float64.
import { adamStepValues, adamUpdate } from '../kernels/adam.ts';
import { checkLr, registerOptimizer, type OptimizerConfig, type OptimizerRule } from './registry.ts';

function adamRule(kind: 'adam' | 'adamw'): OptimizerRule {
  const opts = (c: OptimizerConfig, decay: boolean) => ({ beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: decay ? c.weightDecay : 0, decoupled: kind === 'adamw' });
  return {
    kind,
    withDefaults(c) {
      checkLr(c);
      const full = { kind: c.kind, lr: c.lr, momentum: 0, nesterov: false, weightDecay: c.weightDecay ?? (kind === 'adamw' ? 0.01 : 0), beta1: c.beta1 ?? 0.9, beta2: c.beta2 ?? 0.999, eps: c.eps ?? 1e-8, schedule: c.schedule };
      if (full.weightDecay < 0) throw new Error(`Optimizer ${kind}: weight decay must be >= 0, got ${full.weightDecay}.`);
      if (c.momentum) throw new Error(`Optimizer ${kind}: momentum applies to sgd only (Adam's is beta1).`);
      if (c.nesterov) throw new Error(`Optimizer ${kind}: Nesterov applies to sgd only.`);
      return full;
    },
    slots: () => ['m', 'v'],
    update: (e, p, [m, v], c, decay, stepValues) => adamUpdate(e, p.value, p.grad, m, v, opts(c, decay), stepValues),
    stepValues: (c, step) => adamStepValues(opts(c, false), step + 1),
  };
}

export const adam = adamRule('adam');
export const adamw = adamRule('adamw');
registerOptimizer(adam);
registerOptimizer(adamw);
