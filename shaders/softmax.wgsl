// Softmax over the last dimension, forward and backward: a tensor of any rank is B rows of C values
// (C the last dimension, B the product of the others).
//
// softmax_forward:  y[b, c]  = exp(x[b, c] - max_c x[b, :]) / sum_c' exp(x[b, c'] - max)   (stable)
// softmax_backward: dx[b, c] = y[b, c] * (dy[b, c] - sum_c' dy[b, c'] y[b, c'])   (y is the forward OUTPUT;
//                   dx[b, c] += ... when the override ACCUM is true: gradients that accumulate)
// scaled_softmax_forward:  y = softmax(s * x) over each row, s = params.scale (attention's scores
//                          times 1/sqrt(head width)), in one pass over memory instead of a scale
//                          pass and a softmax pass
// scaled_softmax_backward: dx[b, c] = s * y[b, c] * (dy[b, c] - sum_c' dy[b, c'] y[b, c'])   (ACCUM as above)
// The _vec4 entries compute the same with vec4 loads and stores, for C a multiple of 4.
//
// Bindings (f32; B = params.rows >= 1, C = params.cols >= 1; row-major):
//   params: { rows: u32, cols: u32, scale: f32 }   (scale: the scaled_ entries; the others ignore it)
//   x  : array<f32> (B*C)   forward input             (forward entries)
//   y  : array<f32> (B*C)   forward output            (forward entries, written)
//   y_in: array<f32> (B*C)  the same forward output   (backward entries, read; a WGSL variable has
//                                                      one access mode, so reading it is a second name)
//   dy : array<f32> (B*C)   gradient of the output    (backward entries)
//   dx : array<f32> (B*C)   gradient of the input     (backward entries, written)
//   x4, y4, y_in4, dy4, dx4: the same tensors seen as array<vec4<f32>> (B*C/4; the _vec4 entries)
// Dispatch: 1-D over rows, one invocation per row looping over its C values (no barriers),
// WG invocations per workgroup, grid split over x and y by grid1d.

struct Params { rows: u32, cols: u32, scale: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> y_in: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> y_in4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> dx4: array<vec4<f32>>;

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

// ---- scaled softmax (attention scores) ------------------------------------------------------------
// Written out for the scalar and the vec4 layouts rather than shared: WGSL cannot pass a storage
// array to a function, and the vec4 form quarters the (bounds-checked) accesses on a CPU adapter.

@compute @workgroup_size(WG)
fn scaled_softmax_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = row_index(gid, nwg);
  let C = params.cols;
  let s = params.scale;
  if (b >= params.rows) { return; }
  let base = b * C;
  var m = s * x[base];
  for (var c = 1u; c < C; c++) { m = max(m, s * x[base + c]); }
  var sum = 0.0;
  for (var c = 0u; c < C; c++) {
    let e = exp(s * x[base + c] - m);
    y[base + c] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var c = 0u; c < C; c++) { y[base + c] *= inv; }
}

@compute @workgroup_size(WG)
fn scaled_softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = row_index(gid, nwg);
  let C = params.cols;
  if (b >= params.rows) { return; }
  let base = b * C;
  var dot = 0.0;
  for (var c = 0u; c < C; c++) { dot += dy[base + c] * y_in[base + c]; }
  for (var c = 0u; c < C; c++) {
    let v = params.scale * y_in[base + c] * (dy[base + c] - dot);
    if (ACCUM) {
      dx[base + c] = dx[base + c] + v;
    } else {
      dx[base + c] = v;
    }
  }
}

fn max4(v: vec4<f32>) -> f32 {
  return max(max(v.x, v.y), max(v.z, v.w));
}

// Sums of four interleaved partials (columns c, c+1, c+2, c+3), added pairwise at the end.
fn add4(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(WG)
fn scaled_softmax_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = row_index(gid, nwg);
  let C4 = params.cols / 4u;
  let s = params.scale;
  if (b >= params.rows) { return; }
  let base = b * C4;
  var mv = s * x4[base];
  for (var c = 1u; c < C4; c++) { mv = max(mv, s * x4[base + c]); }
  let m = max4(mv);
  var sum = vec4<f32>(0.0);
  for (var c = 0u; c < C4; c++) {
    let e = exp(s * x4[base + c] - m);
    y4[base + c] = e;
    sum += e;
  }
  let inv = 1.0 / add4(sum);
  for (var c = 0u; c < C4; c++) { y4[base + c] *= inv; }
}

@compute @workgroup_size(WG)
fn scaled_softmax_backward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = row_index(gid, nwg);
  let C4 = params.cols / 4u;
  if (b >= params.rows) { return; }
  let base = b * C4;
  var dot = vec4<f32>(0.0);
  for (var c = 0u; c < C4; c++) { dot += dy4[base + c] * y_in4[base + c]; }
  let d = add4(dot);
  for (var c = 0u; c < C4; c++) {
    let v = params.scale * y_in4[base + c] * (dy4[base + c] - d);
    if (ACCUM) {
      dx4[base + c] = dx4[base + c] + v;
    } else {
      dx4[base + c] = v;
    }
  }
}
