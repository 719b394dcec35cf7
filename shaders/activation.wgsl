// Elementwise activations, forward and backward.
//
// Forward:  y[i] = f(x[i])                    entries: <act>_forward
// Backward: dx[i] = dy[i] * f'(x[i])          entries: <act>_backward (x is the forward INPUT)
//           (dx[i] += ... when the override ACCUM is true: gradients that accumulate)
// Activations: relu, leaky_relu (slope params.alpha), sigmoid, tanh, gelu; their formulas are in
// shaders/_activation.wgsl.
//
// Bindings (all f32, n = params.n elements, any n >= 1):
//   params: { n: u32, alpha: f32 }
//   x  : array<f32> (n)   forward input
//   y  : array<f32> (n)   forward output          (forward entries)
//   dy : array<f32> (n)   gradient of the output  (backward entries)
//   dx : array<f32> (n)   gradient of the input   (backward entries)
// Dispatch: 1-D, WG invocations per workgroup, one element per invocation; the grid may be split
// over x and y (see grid1d) so that n > 65535*WG works.

struct Params { n: u32, alpha: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

#include "_activation.wgsl"

override WG: u32 = 256;
override ACCUM: bool = false;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// dx[i] = v, or dx[i] += v when ACCUM (gradients that accumulate; only then is dx read).
fn store_dx(i: u32, v: f32) {
  if (ACCUM) {
    dx[i] = dx[i] + v;
  } else {
    dx[i] = v;
  }
}

@compute @workgroup_size(WG)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  y[i] = relu_f(x[i]);
}

@compute @workgroup_size(WG)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  store_dx(i, select(0.0, dy[i], x[i] > 0.0));
}

@compute @workgroup_size(WG)
fn leaky_relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  y[i] = leaky_relu_f(x[i], params.alpha);
}

@compute @workgroup_size(WG)
fn leaky_relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  store_dx(i, select(params.alpha * dy[i], dy[i], x[i] > 0.0));
}

@compute @workgroup_size(WG)
fn sigmoid_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  y[i] = sigmoid_f(x[i]);
}

@compute @workgroup_size(WG)
fn sigmoid_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  store_dx(i, dy[i] * sigmoid_grad(x[i]));
}

@compute @workgroup_size(WG)
fn tanh_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  y[i] = tanh_f(x[i]);
}

@compute @workgroup_size(WG)
fn tanh_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  store_dx(i, dy[i] * tanh_grad(x[i]));
}

@compute @workgroup_size(WG)
fn gelu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  y[i] = gelu_f(x[i]);
}

@compute @workgroup_size(WG)
fn gelu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  store_dx(i, dy[i] * gelu_grad(x[i]));
}
