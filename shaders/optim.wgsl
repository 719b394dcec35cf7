// Optimizer updates, in place, one dispatch per parameter tensor. Per-step values (learning rate,
// Adam's bias corrections) live in the params uniform and are rewritten between steps.
//
// sgd_update (PyTorch's SGD with dampening 0):
//   g' = g + weightDecay * w
//   v  = momentum * v + g'
//   step = nesterov ? g' + momentum * v : (momentum > 0 ? v : g')
//   w -= lr * step
// adam_update (Adam, or AdamW when decoupled != 0):
//   Adam:  g' = g + weightDecay * w                      (L2 penalty folded into the gradient)
//   AdamW: g' = g;  w -= lr * weightDecay * w             (decoupled decay, before the Adam step)
//   m = beta1 m + (1 - beta1) g';  v = beta2 v + (1 - beta2) g'^2
//   w -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
//   with bc1 = 1 - beta1^t and bc2 = 1 - beta2^t computed on the host for step t >= 1.
//
// Bindings (f32, n = params.n elements, any n >= 1):
//   params: { n, lr, weightDecay, momentum, nesterov, beta1, beta2, eps, decoupled, bc1, bc2 }
//           one struct for both entries (a module has one `params`); each entry reads only its
//           own members, the others are passed as 0. nesterov and decoupled are 0 or 1.
//   w : array<f32> (n)   parameters, updated
//   g : array<f32> (n)   gradient, read
//   v : array<f32> (n)   SGD momentum buffer / Adam second moment, updated (not bound by
//                         sgd_update_plain, the momentum-0 entry)
//   m : array<f32> (n)   Adam first moment, updated (adam_update)
// Dispatch: 1-D, one element per invocation, WG per workgroup, grid split over x and y by grid1d.

struct Params {
  n: u32,
  lr: f32,
  weightDecay: f32,
  momentum: f32,
  nesterov: u32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  decoupled: u32,
  bc1: f32,
  bc2: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;

override WG: u32 = 256;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn sgd_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let wi = w[i];
  let gd = g[i] + params.weightDecay * wi;
  let vel = params.momentum * v[i] + gd;
  v[i] = vel;
  var step = gd;
  if (params.nesterov != 0u) {
    step = gd + params.momentum * vel;
  } else if (params.momentum > 0.0) {
    step = vel;
  }
  w[i] = wi - params.lr * step;
}

// Plain SGD (momentum 0): w -= lr * (g + weightDecay * w). No velocity buffer to read or keep.
@compute @workgroup_size(WG)
fn sgd_update_plain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let wi = w[i];
  w[i] = wi - params.lr * (g[i] + params.weightDecay * wi);
}

@compute @workgroup_size(WG)
fn adam_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  var wi = w[i];
  var gd = g[i];
  if (params.decoupled != 0u) {
    wi -= params.lr * params.weightDecay * wi;
  } else {
    gd += params.weightDecay * wi;
  }
  let mi = params.beta1 * m[i] + (1.0 - params.beta1) * gd;
  let vi = params.beta2 * v[i] + (1.0 - params.beta2) * gd * gd;
  m[i] = mi;
  v[i] = vi;
  w[i] = wi - params.lr * (mi / params.bc1) / (sqrt(vi / params.bc2) + params.eps);
}
