// The per-step values uniform, shared by every kernel that reads it (through #include): written
// once per training step by the trainer and bound as `step_values`. Optimizer rules read the
// same buffer through a struct of their own that extends this prefix with their values (words 3
// and up, e.g. Adam's bias corrections).
//   step : the 0-based training step
//   flags: STEP_DROPOUT (bit 0) set when dropout is active in this step
//   lr   : the learning rate of this step (after the schedule)

struct StepValues {
  step: u32,
  flags: u32,
  lr: f32,
}

const STEP_DROPOUT: u32 = 1u;
