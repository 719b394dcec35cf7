// SGD update (PyTorch's torch.optim.SGD with dampening 0), in place, one dispatch per parameter
// tensor. The learning rate of the step comes from the per-step values uniform.
//
//   g' = g + weightDecay * w
//   v  = momentum * v + g'
//   step = nesterov ? g' + momentum * v : (momentum > 0 ? v : g')
//   w -= lr * step
//
// Bindings (f32, n = params.n elements, any n >= 1):
//   params: SgdParams { n, momentum, weightDecay, nesterov (0 or 1) }: fixed for the tensor
//   step_values: StepValues (shaders/_step.wgsl): lr
//   w : array<f32> (n)   parameters, updated
//   g : array<f32> (n)   gradient, read
//   v : array<f32> (n)   momentum buffer, updated (not bound by sgd_update_plain, the momentum-0 entry)
// Dispatch: 1-D, one element per invocation, WG per workgroup, grid split over x and y by grid1d.

#include "_step.wgsl"

struct SgdParams {
  n: u32,
  momentum: f32,
  weightDecay: f32,
  nesterov: u32,
}

@group(0) @binding(0) var<uniform> params: SgdParams;
@group(0) @binding(1) var<uniform> step_values: StepValues;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

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
  w[i] = wi - step_values.lr * step;
}

// Plain SGD (momentum 0): w -= lr * (g + weightDecay * w). No velocity buffer to read or keep.
@compute @workgroup_size(WG)
fn sgd_update_plain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let wi = w[i];
  w[i] = wi - step_values.lr * (g[i] + params.weightDecay * wi);
}
