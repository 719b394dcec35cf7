// Adam and AdamW updates, in place, one dispatch per parameter tensor. The learning rate and the
// bias corrections of the step come from the per-step values uniform (computed on the host in
// float64 for step t >= 1: bc1 = 1 - beta1^t, bc2 = 1 - beta2^t).
//
//   Adam:  g' = g + weightDecay * w                      (L2 penalty folded into the gradient)
//   AdamW: g' = g;  w -= lr * weightDecay * w             (decoupled decay, before the Adam step)
//   m = beta1 m + (1 - beta1) g';  v = beta2 v + (1 - beta2) g'^2
//   w -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
//
// Bindings (f32, n = params.n elements, any n >= 1):
//   params: AdamParams { n, beta1, beta2, eps, weightDecay, decoupled (0 or 1) }: fixed for the tensor
//   step_values: AdamStep: StepValues (shaders/_step.wgsl) followed by bc1, bc2
//   w : array<f32> (n)   parameters, updated
//   g : array<f32> (n)   gradient, read
//   m : array<f32> (n)   first moment, updated
//   v : array<f32> (n)   second moment, updated
// Dispatch: 1-D, one element per invocation, WG per workgroup, grid split over x and y by grid1d.

struct AdamParams {
  n: u32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weightDecay: f32,
  decoupled: u32,
}

// The per-step values uniform as Adam reads it: the shared prefix, then its own two values.
struct AdamStep {
  step: u32,
  flags: u32,
  lr: f32,
  bc1: f32,
  bc2: f32,
}

@group(0) @binding(0) var<uniform> params: AdamParams;
@group(0) @binding(1) var<uniform> step_values: AdamStep;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

override WG: u32 = 256;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn adam_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let lr = step_values.lr;
  var wi = w[i];
  var gd = g[i];
  if (params.decoupled != 0u) {
    wi -= lr * params.weightDecay * wi;
  } else {
    gd += params.weightDecay * wi;
  }
  let mi = params.beta1 * m[i] + (1.0 - params.beta1) * gd;
  let vi = params.beta2 * v[i] + (1.0 - params.beta2) * gd * gd;
  m[i] = mi;
  v[i] = vi;
  w[i] = wi - lr * (mi / step_values.bc1) / (sqrt(vi / step_values.bc2) + params.eps);
}
