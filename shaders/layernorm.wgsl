// Layer normalisation over the last dimension: x of any rank is R rows of D values (D the last
// dimension, R the product of the others); gamma and beta hold one value per column.
//
//   layer_norm_forward:    mean[r] = sum_d x[r, d] / D
//                          rstd[r] = 1 / sqrt(sum_d (x[r, d] - mean[r])^2 / D + eps)   (biased variance)
//                          y[r, d] = (x[r, d] - mean[r]) * rstd[r] * gamma[d] + beta[d]
//   layer_norm_backward:   with xhat = (x - mean) * rstd and g = dy * gamma, per row,
//                          dx[r, d] = rstd[r] * (g[r, d] - mean_d g[r, :] - xhat[r, d] * mean_d (g * xhat)[r, :])
//   layer_norm_param_grad: dgamma[d] = sum_r dy[r, d] * xhat[r, d],  dbeta[d] = sum_r dy[r, d]
//   With the override ACCUM true, dx (backward) and dgamma, dbeta (param_grad) are added to instead of
//   overwritten (gradients that accumulate); the write path never reads them.
//
// Bindings (f32, row-major; params: { rows: R, cols: D: u32, eps: f32 }):
//   x          [R, D]   forward input                       (every entry)
//   gamma      [D]      scale                               (forward, backward)
//   beta       [D]      shift                               (forward)
//   y          [R, D]   forward output                      (forward, written)
//   mean, rstd [R]      per-row statistics                  (forward, written)
//   saved_mean, saved_rstd [R]  the forward's statistics    (backward, param_grad; read: a WGSL variable
//                                                            has one access mode, so reading is a second name)
//   dy         [R, D]   gradient of y                       (backward, param_grad)
//   dx         [R, D]   gradient of x                       (backward, written)
//   dgamma, dbeta [D]   parameter gradients                 (param_grad, written)
//   x4, gamma4, beta4, y4, dy4, dx4, dgamma4, dbeta4: the same tensors seen as vec4 (the _vec4 entries)
//
// Dispatch (workgroups numbered x + y * num_workgroups.x, split over x and y as grid1d does):
//   layer_norm_forward, layer_norm_backward: one invocation per row, looping over its D values with
//     no barrier and no workgroup memory (what a software adapter runs fastest), WG per workgroup.
//     The _vec4 entries do the same four columns at a time, for D a multiple of 4.
//   layer_norm_forward_wg, layer_norm_backward_wg: one workgroup of WG invocations per row; they
//     stride over the row and add their partial sums with a fixed-order tree in workgroup memory
//     (for GPUs, whose invocations are cheap and whose memory wants neighbouring reads).
//   layer_norm_param_grad: one invocation per column, summing the rows in order (_vec4: four
//     neighbouring columns per invocation, D a multiple of 4).
// Every sum is taken in a fixed order: results do not depend on scheduling.

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(7) var<storage, read> saved_mean: array<f32>;
@group(0) @binding(8) var<storage, read> saved_rstd: array<f32>;
@group(0) @binding(9) var<storage, read> dy: array<f32>;
@group(0) @binding(10) var<storage, read_write> dx: array<f32>;
@group(0) @binding(11) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(12) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(13) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> gamma4: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read> beta4: array<vec4<f32>>;
@group(0) @binding(16) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(17) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(18) var<storage, read_write> dx4: array<vec4<f32>>;
@group(0) @binding(19) var<storage, read_write> dgamma4: array<vec4<f32>>;
@group(0) @binding(20) var<storage, read_write> dbeta4: array<vec4<f32>>;

// Invocations per workgroup; a power of two (the _wg entries' tree needs one).
override WG: u32 = 64u;
override ACCUM: bool = false;

var<workgroup> partial: array<vec2<f32>, WG>;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn store_dx(i: u32, v: f32) {
  if (ACCUM) {
    dx[i] = dx[i] + v;
  } else {
    dx[i] = v;
  }
}

// ---- one invocation per row ---------------------------------------------------------------------
// Two passes over the row for its statistics (the second, over values still in cache, sums centred
// squares: no cancellation when |mean| is large beside the spread), a third to write.

@compute @workgroup_size(WG)
fn layer_norm_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = linear_index(gid, nwg);
  if (r >= params.rows) { return; }
  let D = params.cols;
  let base = r * D;
  var s = 0.0;
  for (var d = 0u; d < D; d++) { s += x[base + d]; }
  let m = s / f32(D);
  var q = 0.0;
  for (var d = 0u; d < D; d++) {
    let c = x[base + d] - m;
    q += c * c;
  }
  let inv = inverseSqrt(q / f32(D) + params.eps);
  for (var d = 0u; d < D; d++) {
    y[base + d] = (x[base + d] - m) * inv * gamma[d] + beta[d];
  }
  mean[r] = m;
  rstd[r] = inv;
}

@compute @workgroup_size(WG)
fn layer_norm_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = linear_index(gid, nwg);
  if (r >= params.rows) { return; }
  let D = params.cols;
  let base = r * D;
  let m = saved_mean[r];
  let inv = saved_rstd[r];
  var sg = 0.0;
  var sgx = 0.0;
  for (var d = 0u; d < D; d++) {
    let g = dy[base + d] * gamma[d];
    sg += g;
    sgx += g * (x[base + d] - m) * inv;
  }
  let mg = sg / f32(D);
  let mgx = sgx / f32(D);
  for (var d = 0u; d < D; d++) {
    let xh = (x[base + d] - m) * inv;
    store_dx(base + d, inv * (dy[base + d] * gamma[d] - mg - xh * mgx));
  }
}

// The same with vec4 loads and stores, for D a multiple of 4 (D4 = D / 4 vectors per row): a
// quarter of the (bounds-checked) memory accesses. Each sum runs over four interleaved partials
// (columns d, d+1, d+2, d+3), added pairwise at the end.

fn add4(s: vec4<f32>) -> f32 {
  return (s.x + s.y) + (s.z + s.w);
}

fn store_dx4(i: u32, v: vec4<f32>) {
  if (ACCUM) {
    dx4[i] = dx4[i] + v;
  } else {
    dx4[i] = v;
  }
}

@compute @workgroup_size(WG)
fn layer_norm_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = linear_index(gid, nwg);
  if (r >= params.rows) { return; }
  let D4 = params.cols / 4u;
  let base = r * D4;
  var s = vec4<f32>(0.0);
  for (var d = 0u; d < D4; d++) { s += x4[base + d]; }
  let m = add4(s) / f32(params.cols);
  var q = vec4<f32>(0.0);
  for (var d = 0u; d < D4; d++) {
    let c = x4[base + d] - m;
    q += c * c;
  }
  let inv = inverseSqrt(add4(q) / f32(params.cols) + params.eps);
  for (var d = 0u; d < D4; d++) {
    y4[base + d] = (x4[base + d] - m) * inv * gamma4[d] + beta4[d];
  }
  mean[r] = m;
  rstd[r] = inv;
}

@compute @workgroup_size(WG)
fn layer_norm_backward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = linear_index(gid, nwg);
  if (r >= params.rows) { return; }
  let D4 = params.cols / 4u;
  let base = r * D4;
  let m = saved_mean[r];
  let inv = saved_rstd[r];
  var sg = vec4<f32>(0.0);
  var sgx = vec4<f32>(0.0);
  for (var d = 0u; d < D4; d++) {
    let g = dy4[base + d] * gamma4[d];
    sg += g;
    sgx += g * (x4[base + d] - m) * inv;
  }
  let mg = add4(sg) / f32(params.cols);
  let mgx = add4(sgx) / f32(params.cols);
  for (var d = 0u; d < D4; d++) {
    let xh = (x4[base + d] - m) * inv;
    store_dx4(base + d, inv * (dy4[base + d] * gamma4[d] - mg - xh * mgx));
  }
}

// ---- one workgroup per row ----------------------------------------------------------------------

// Sum of the WG partials by a fixed-order pairwise tree; every invocation gets the total.
fn workgroup_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
  partial[lid] = v;
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
  }
  let total = workgroupUniformLoad(&partial[0]);
  // The next call writes partial again: every invocation must have read the total first.
  workgroupBarrier();
  return total;
}

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(WG)
fn layer_norm_forward_wg(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let r = row_of(wid, nwg);
  // The whole workgroup leaves together (r is uniform), so the barriers below stay uniform.
  if (r >= params.rows) { return; }
  let D = params.cols;
  let base = r * D;
  var s = 0.0;
  for (var d = lid; d < D; d += WG) { s += x[base + d]; }
  let m = workgroup_sum(lid, vec2<f32>(s, 0.0)).x / f32(D);
  var q = 0.0;
  for (var d = lid; d < D; d += WG) {
    let c = x[base + d] - m;
    q += c * c;
  }
  let inv = inverseSqrt(workgroup_sum(lid, vec2<f32>(q, 0.0)).x / f32(D) + params.eps);
  for (var d = lid; d < D; d += WG) {
    y[base + d] = (x[base + d] - m) * inv * gamma[d] + beta[d];
  }
  if (lid == 0u) {
    mean[r] = m;
    rstd[r] = inv;
  }
}

@compute @workgroup_size(WG)
fn layer_norm_backward_wg(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let r = row_of(wid, nwg);
  if (r >= params.rows) { return; }
  let D = params.cols;
  let base = r * D;
  let m = saved_mean[r];
  let inv = saved_rstd[r];
  var s = vec2<f32>(0.0);
  for (var d = lid; d < D; d += WG) {
    let g = dy[base + d] * gamma[d];
    s += vec2<f32>(g, g * (x[base + d] - m) * inv);
  }
  let means = workgroup_sum(lid, s) / f32(D);
  for (var d = lid; d < D; d += WG) {
    let xh = (x[base + d] - m) * inv;
    store_dx(base + d, inv * (dy[base + d] * gamma[d] - means.x - xh * means.y));
  }
}

// ---- parameter gradients --------------------------------------------------------------------------
// One invocation per column (neighbouring invocations read neighbouring addresses of each row),
// summing the rows in order; the vec4 entry takes four neighbouring columns per invocation.

fn store_param_grads(d: u32, sg: f32, sb: f32) {
  if (ACCUM) {
    dgamma[d] = dgamma[d] + sg;
    dbeta[d] = dbeta[d] + sb;
  } else {
    dgamma[d] = sg;
    dbeta[d] = sb;
  }
}

@compute @workgroup_size(WG)
fn layer_norm_param_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d = linear_index(gid, nwg);
  let D = params.cols;
  if (d >= D) { return; }
  var sb = 0.0;
  var sg = 0.0;
  for (var r = 0u; r < params.rows; r++) {
    let i = r * D + d;
    let g = dy[i];
    sb += g;
    sg += g * (x[i] - saved_mean[r]) * saved_rstd[r];
  }
  store_param_grads(d, sg, sb);
}

@compute @workgroup_size(WG)
fn layer_norm_param_grad_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d = linear_index(gid, nwg);
  let D4 = params.cols / 4u;
  if (d >= D4) { return; }
  var sb = vec4<f32>(0.0);
  var sg = vec4<f32>(0.0);
  for (var r = 0u; r < params.rows; r++) {
    let i = r * D4 + d;
    let g = dy4[i];
    sb += g;
    sg += g * (x4[i] - saved_mean[r]) * saved_rstd[r];
  }
  if (ACCUM) {
    dgamma4[d] = dgamma4[d] + sg;
    dbeta4[d] = dbeta4[d] + sb;
  } else {
    dgamma4[d] = sg;
    dbeta4[d] = sb;
  }
}
