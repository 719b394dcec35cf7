// Batch normalisation per channel over [B, C, ...] tensors (BatchNorm2d on NCHW: the statistics of
// channel c are taken over the batch and every spatial position, N = B * HW values).
//
// Training forward (batch statistics, PyTorch semantics):
//   mean = sum(x) / N, var = sum((x - mean)^2) / N (biased), invstd = 1 / sqrt(var + eps)
//   y = (x - mean) * invstd * gamma + beta
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * N / (N - 1)   (unbiased)
//   Sums are taken around a shift K = the channel's first value (sum(x - K), sum((x - K)^2)),
//   one read of x for both, with little cancellation when K is near the mean.
// Evaluation forward: y = (x - stat_mean) / sqrt(stat_var + eps) * gamma + beta.
// Backward (batch statistics), with xhat = (x - mean) * invstd:
//   dbeta = sum(dy), dgamma = sum(dy * xhat)
//   dx = gamma * invstd / N * (N * dy - dbeta - xhat * dgamma)
//   With the override ACCUM true, dx, dgamma and dbeta are added to instead of overwritten
//   (gradients that accumulate); the sums dbeta and dgamma inside dx are this call's own.
// With the override RELU true a ReLU follows the normalisation (fused: BatchNorm then ReLU in one
// pass): the forward entries write max(y, 0), and backward first masks dy where that output,
// bound as y_relu, is 0 (the ReLU's gradient, read off its output).
//
// Entries and bindings (params: { batch, channels, hw: u32, eps, momentum: f32 }; x, y, dy, dx are
// [B, C, HW] flattened, every other tensor [C]):
//   batch_norm_forward_train   x, gamma, beta, y, saved, running_mean, running_var
//   batch_norm_forward_eval    x, gamma, beta, stat_mean, stat_var, y
//   batch_norm_backward        x, dy, gamma, saved_stats, dx, dgamma, dbeta, y_relu
//                              (y_relu: the forward output; read only when RELU)
// saved / saved_stats [2C]: the batch mean per channel, then 1/sqrt(biased variance + eps) per
// channel; one buffer, so that the backward binds 8 storage buffers with its ReLU (WebGPU's default
// per-stage limit).
// Dispatch: train and backward run one workgroup of WG invocations per channel (workgroups
// numbered x + y * num_workgroups.x, split as grid1d does); the invocations stride over the
// channel's values, then add their partial sums with a fixed-order tree in workgroup memory
// (deterministic). Eval is 1-D, one invocation per element, WG per workgroup (grid1d).

struct Params {
  batch: u32,
  channels: u32,
  hw: u32,
  eps: f32,
  momentum: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> saved: array<f32>;
@group(0) @binding(7) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(8) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(9) var<storage, read> stat_mean: array<f32>;
@group(0) @binding(10) var<storage, read> stat_var: array<f32>;
@group(0) @binding(11) var<storage, read> dy: array<f32>;
@group(0) @binding(12) var<storage, read> saved_stats: array<f32>;
@group(0) @binding(14) var<storage, read_write> dx: array<f32>;
@group(0) @binding(15) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(16) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(17) var<storage, read> y_relu: array<f32>;

// Invocations per workgroup (a power of two for the tree).
const WG: u32 = 64u;
// batch_norm_backward adds into dx, dgamma and dbeta instead of overwriting them.
override ACCUM: bool = false;
// A ReLU after the normalisation, fused.
override RELU: bool = false;

fn activate(v: f32) -> f32 {
  if (RELU) { return max(v, 0.0); }
  return v;
}

// dy at element i, through the fused ReLU's gradient when there is one.
fn grad_at(i: u32) -> f32 {
  if (RELU) { return select(0.0, dy[i], y_relu[i] > 0.0); }
  return dy[i];
}

var<workgroup> partial: array<vec2<f32>, WG>;

// Sum of the WG partials, by a fixed-order pairwise tree; every invocation gets the total.
fn workgroup_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
  partial[lid] = v;
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
  }
  return workgroupUniformLoad(&partial[0]);
}

fn channel_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(WG)
fn batch_norm_forward_train(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let p = params;
  let c = channel_of(wid, nwg);
  if (c >= p.channels) { return; }
  let plane_step = p.channels * p.hw;
  let shift = x[c * p.hw];
  var s = vec2<f32>(0.0);
  for (var b = 0u; b < p.batch; b++) {
    let base = b * plane_step + c * p.hw;
    for (var i = lid; i < p.hw; i += WG) {
      let d = x[base + i] - shift;
      s += vec2<f32>(d, d * d);
    }
  }
  let total = workgroup_sum(lid, s);
  let n = f32(p.batch * p.hw);
  let dmean = total.x / n;
  let var_b = max(total.y / n - dmean * dmean, 0.0);
  let m = shift + dmean;
  let inv = inverseSqrt(var_b + p.eps);
  let scale = gamma[c] * inv;
  let offset = beta[c];
  for (var b = 0u; b < p.batch; b++) {
    let base = b * plane_step + c * p.hw;
    for (var i = lid; i < p.hw; i += WG) {
      y[base + i] = activate((x[base + i] - m) * scale + offset);
    }
  }
  if (lid == 0u) {
    saved[c] = m;
    saved[p.channels + c] = inv;
    let k = p.momentum;
    running_mean[c] = (1.0 - k) * running_mean[c] + k * m;
    running_var[c] = (1.0 - k) * running_var[c] + k * var_b * n / (n - 1.0);
  }
}

@compute @workgroup_size(WG)
fn batch_norm_forward_eval(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.batch * p.channels * p.hw) { return; }
  let c = (i / p.hw) % p.channels;
  let scale = gamma[c] * inverseSqrt(stat_var[c] + p.eps);
  y[i] = activate((x[i] - stat_mean[c]) * scale + beta[c]);
}

@compute @workgroup_size(WG)
fn batch_norm_backward(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let p = params;
  let c = channel_of(wid, nwg);
  if (c >= p.channels) { return; }
  let plane_step = p.channels * p.hw;
  let m = saved_stats[c];
  let inv = saved_stats[p.channels + c];
  var s = vec2<f32>(0.0);
  for (var b = 0u; b < p.batch; b++) {
    let base = b * plane_step + c * p.hw;
    for (var i = lid; i < p.hw; i += WG) {
      let g = grad_at(base + i);
      s += vec2<f32>(g, g * (x[base + i] - m) * inv);
    }
  }
  let total = workgroup_sum(lid, s); // (dbeta, dgamma)
  let n = f32(p.batch * p.hw);
  let k = gamma[c] * inv / n;
  for (var b = 0u; b < p.batch; b++) {
    let base = b * plane_step + c * p.hw;
    for (var i = lid; i < p.hw; i += WG) {
      let xhat = (x[base + i] - m) * inv;
      let v = k * (n * grad_at(base + i) - total.x - xhat * total.y);
      if (ACCUM) {
        dx[base + i] = dx[base + i] + v;
      } else {
        dx[base + i] = v;
      }
    }
  }
  if (lid == 0u) {
    if (ACCUM) {
      dbeta[c] = dbeta[c] + total.x;
      dgamma[c] = dgamma[c] + total.y;
    } else {
      dbeta[c] = total.x;
      dgamma[c] = total.y;
    }
  }
}
