// The SGD rule (PyTorch's torch.optim.SGD with dampening 0): momentum and Nesterov optional, L2
// weight decay added to the gradient. Plain SGD (momentum 0) keeps no state.
import { sgdUpdate } from '../kernels/sgd.ts';
import { checkLr, registerOptimizer, type OptimizerRule } from './registry.ts';

export const sgd: OptimizerRule = {
  kind: 'sgd',
  withDefaults(c) {
    checkLr(c);
    const full = { kind: c.kind, lr: c.lr, momentum: c.momentum ?? 0.9, nesterov: c.nesterov ?? false, weightDecay: c.weightDecay ?? 0, beta1: 0, beta2: 0, eps: 0, schedule: c.schedule };
    if (full.momentum < 0 || full.momentum >= 1) throw new Error(`Optimizer sgd: momentum must be in [0, 1), got ${full.momentum}.`);
    if (full.weightDecay < 0) throw new Error(`Optimizer sgd: weight decay must be >= 0, got ${full.weightDecay}.`);
    if (full.nesterov && full.momentum === 0) throw new Error('Optimizer sgd: Nesterov needs momentum > 0.');
    return full;
  },
  slots: (c) => ((c.momentum ?? 0) > 0 ? ['velocity'] : []),
  update(e, p, state, c, decay, stepValues) {
    return sgdUpdate(e, p.value, p.grad, state[0] ?? null, { momentum: c.momentum, weightDecay: decay ? c.weightDecay : 0, nesterov: c.nesterov }, stepValues);
  },
  stepValues: () => [],
};

registerOptimizer(sgd);
