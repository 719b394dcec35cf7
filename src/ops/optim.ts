// Optimizer hyperparameters, as the update kernels, the optimizers and the CPU reference name them.

/** SGD hyperparameters (PyTorch's torch.optim.SGD with dampening 0). */
export interface SgdOptions {
  lr: number;
  /** Default 0 (plain SGD). */
  momentum?: number;
  /** L2 penalty added to the gradient; default 0. */
  weightDecay?: number;
  /** Nesterov momentum; needs momentum > 0. Default false. */
  nesterov?: boolean;
}

/** Adam / AdamW hyperparameters (the step number is passed separately). */
export interface AdamOptions {
  lr: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Default 0. */
  weightDecay?: number;
  /** false: Adam with L2 added to the gradient; true: AdamW's decoupled decay. Default false. */
  decoupled?: boolean;
}
