// Softmax over the last dimension, forward and backward: a tensor of any rank is B rows of C values
// (C the last dimension, B the product of the others).
//
// softmax_forward:  y[b, c]  = exp(x[b, c] - max_c x[b, :]) / sum_c' exp(x[b, c'] - max)   (stable)
// softmax_backward: dx[b, c] = y[b, c] * (dy[b, c] - sum_c' dy[b, c'] y[b, c'])   (y is the forward OUTPUT;
//                   dx[b, c] += ... when the override ACCUM is true: gradients that accumulate)
//
// Bindings (f32; B = params.rows >= 1, C = params.cols >= 1; row-major):
//   params: { rows: u32, cols: u32 }
//   x  : array<f32> (B*C)   forward input             (softmax_forward)
//   y  : array<f32> (B*C)   forward output            (softmax_forward, written)
//   y_in: array<f32> (B*C)  the same forward output   (softmax_backward, read; a WGSL variable has
//                                                      one access mode, so reading it is a second name)
//   dy : array<f32> (B*C)   gradient of the output    (softmax_backward)
//   dx : array<f32> (B*C)   gradient of the input     (softmax_backward, written)
// Dispatch: 1-D over rows, one invocation per row looping over its C values (no barriers),
// WG invocations per workgroup, grid split over x and y by grid1d.

struct Params { rows: u32, cols: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> y_in: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

override WG: u32 = 64;
override ACCUM: bool = false;

fn row_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn softmax_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = row_index(gid, nwg);
  let C = params.cols;
  if (b >= params.rows) { return; }
  let base = b * C;
  var m = x[base];
  for (var c = 1u; c < C; c++) { m = max(m, x[base + c]); }
  var sum = 0.0;
  for (var c = 0u; c < C; c++) {
    let e = exp(x[base + c] - m);
    y[base + c] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var c = 0u; c < C; c++) { y[base + c] *= inv; }
}

@compute @workgroup_size(WG)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = row_index(gid, nwg);
  let C = params.cols;
  if (b >= params.rows) { return; }
  let base = b * C;
  var dot = 0.0;
  for (var c = 0u; c < C; c++) { dot += dy[base + c] * y_in[base + c]; }
  for (var c = 0u; c < C; c++) {
    let v = y_in[base + c] * (dy[base + c] - dot);
    if (ACCUM) {
      dx[base + c] = dx[base + c] + v;
    } else {
      dx[base + c] = v;
    }
  }
}
