// Gradient clipping by global norm, on the GPU within the training step (no readback): the squares
// of every parameter gradient summed into one slot, a factor min(1, max_norm / norm), and every
// gradient scaled by it in place before the optimizer reads it.
//
//   sum_squares:  acc[0] += sum_i g[i]^2           one workgroup, fixed-order tree (deterministic)
//   clip_factor:  norm = sqrt(acc[0]); factor[0] = min(1, max_norm / (norm + 1e-6));
//                 factor[1] = norm (kept for reports); acc[0] = 0 for the next step
//   scale_by_factor: g[i] *= factor[0]
//
// Bindings (f32):
//   params: { n: u32 (elements of g), max_norm: f32 }
//   g     : array<f32> (n)   read (sum_squares), updated (scale_by_factor)
//   acc   : array<f32> (1)   sum_squares, clip_factor
//   factor: array<f32> (2)   written by clip_factor, read by scale_by_factor as factor_in
// Dispatch: sum_squares one workgroup of SUM_WG; clip_factor one invocation; scale_by_factor 1-D,
// WG per workgroup, split over x and y by grid1d.

struct Params { n: u32, max_norm: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> g_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<f32>;
@group(0) @binding(4) var<storage, read_write> factor: array<f32>;
@group(0) @binding(5) var<storage, read> factor_in: array<f32>;

const SUM_WG: u32 = 256u;
override WG: u32 = 256;

var<workgroup> partial: array<f32, SUM_WG>;

@compute @workgroup_size(SUM_WG)
fn sum_squares(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < params.n; i += SUM_WG) {
    let v = g_in[i];
    s += v * v;
  }
  partial[lid] = s;
  workgroupBarrier();
  for (var stride = SUM_WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) { acc[0] += partial[0]; }
}

@compute @workgroup_size(1)
fn clip_factor() {
  let norm = sqrt(acc[0]);
  factor[0] = min(1.0, params.max_norm / (norm + 1e-6));
  factor[1] = norm;
  acc[0] = 0.0;
}

@compute @workgroup_size(WG)
fn scale_by_factor(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) { return; }
  g[i] = g[i] * factor_in[0];
}
