// Elementwise activations, forward and backward.
//
// Forward:  y[i] = f(x[i])                    entries: <act>_forward
// Backward: dx[i] = dy[i] * f'(x[i])          entries: <act>_backward (x is the forward INPUT)
//           (dx[i] += ... when the override ACCUM is true: gradients that accumulate)
// Activations: relu, leaky_relu (slope params.alpha), sigmoid, tanh, gelu (tanh approximation:
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's approximate="tanh").
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

// Saturating tanh: WGSL's tanh of a large argument may return NaN on some drivers.
fn tanh_safe(v: f32) -> f32 {
  return tanh(clamp(v, -15.0, 15.0));
}

fn sigmoid_f(v: f32) -> f32 {
  // Stable for large |v|: exp of a non-positive number only.
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

const GELU_C: f32 = 0.7978845608028654; // sqrt(2/pi)
const GELU_K: f32 = 0.044715;

fn gelu_f(v: f32) -> f32 {
  return 0.5 * v * (1.0 + tanh_safe(GELU_C * (v + GELU_K * v * v * v)));
}

fn gelu_grad(v: f32) -> f32 {
  let u = GELU_C * (v + GELU_K * v * v * v);
  let t = tanh_safe(u);
  return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * v * v);
}

@compute @workgroup_size(WG)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  y[i] = max(x[i], 0.0);
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
  let v = x[i];
  y[i] = select(params.alpha * v, v, v > 0.0);
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
  let s = sigmoid_f(x[i]);
  store_dx(i, dy[i] * s * (1.0 - s));
}

@compute @workgroup_size(WG)
fn tanh_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  y[i] = tanh_safe(x[i]);
}

@compute @workgroup_size(WG)
fn tanh_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let t = tanh_safe(x[i]);
  store_dx(i, dy[i] * (1.0 - t * t));
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
