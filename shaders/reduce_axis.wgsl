// Sums over a run of adjacent axes (sum and mean over dimensions) and their adjoint, the broadcast.
//
//   reduce_axes, reduce_axes_wide: y[o, i] = scale * sum_r x[o, r, i]
//   broadcast_axes:                dx[o, r, i] = scale * dy[o, i]
// with x and dx viewed as [outer, reduce, inner] and y and dy as [outer, inner] (sum: scale 1;
// mean: scale 1 / reduce). The sums run in a fixed order that depends only on the sizes, so the
// result is the same bits on every run (no atomics). With the override ACCUM true the outputs are
// added to (y += ..., dx += ...) instead of overwritten: gradients that accumulate (the backward of
// a sum is a broadcast, and that of a broadcast a sum).
//
// Bindings (f32):
//   params: { outer, reduce, inner: u32, scale: f32 }
//   x: array<f32> (outer*reduce*inner)   y: array<f32> (outer*inner), written   (reduce entries)
//   dy: array<f32> (outer*inner)         dx: array<f32> (outer*reduce*inner)    (broadcast_axes)
// Dispatch:
//   reduce_axes: one invocation per y value (o, i), neighbouring invocations at neighbouring i,
//     each summing its reduce values with four interleaved partial sums; WG per workgroup, grid1d.
//   reduce_axes_wide: for few outputs with long sums (a whole tensor's sum): one workgroup of
//     WIDE_WG invocations per y value (workgroups numbered x + y * num_workgroups.x, as grid1d
//     splits them); the invocations take every WIDE_WG-th r, then a fixed-order tree adds their sums.
//   broadcast_axes: one invocation per dx value, WG per workgroup, grid1d.

struct Params { outer: u32, reduce: u32, inner: u32, scale: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

override WG: u32 = 64;
override ACCUM: bool = false;
// Invocations per workgroup of reduce_axes_wide (a power of two for the tree).
const WIDE_WG: u32 = 64u;

var<workgroup> partial: array<f32, WIDE_WG>;

fn store_y(k: u32, v: f32) {
  if (ACCUM) {
    y[k] = y[k] + v;
  } else {
    y[k] = v;
  }
}

@compute @workgroup_size(WG)
fn reduce_axes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let k = gid.x + gid.y * nwg.x * WG;
  if (k >= p.outer * p.inner) { return; }
  let i = k % p.inner;
  let o = k / p.inner;
  let step = p.inner;
  var at = o * p.reduce * p.inner + i;
  var s = vec4<f32>(0.0);
  var r = 0u;
  for (; r + 4u <= p.reduce; r += 4u) {
    s += vec4<f32>(x[at], x[at + step], x[at + 2u * step], x[at + 3u * step]);
    at += 4u * step;
  }
  for (; r < p.reduce; r++) {
    s.x += x[at];
    at += step;
  }
  store_y(k, p.scale * ((s.x + s.y) + (s.z + s.w)));
}

@compute @workgroup_size(WIDE_WG)
fn reduce_axes_wide(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let p = params;
  let k = wid.x + wid.y * nwg.x;
  // Uniform per workgroup: the whole workgroup returns, or none of it (the barriers below).
  if (k >= p.outer * p.inner) { return; }
  let i = k % p.inner;
  let o = k / p.inner;
  var s = 0.0;
  for (var r = lid; r < p.reduce; r += WIDE_WG) {
    s += x[(o * p.reduce + r) * p.inner + i];
  }
  partial[lid] = s;
  for (var stride = WIDE_WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
  }
  workgroupBarrier();
  if (lid == 0u) { store_y(k, p.scale * partial[0]); }
}

@compute @workgroup_size(WG)
fn broadcast_axes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let k = gid.x + gid.y * nwg.x * WG;
  if (k >= p.outer * p.reduce * p.inner) { return; }
  let i = k % p.inner;
  let o = k / (p.reduce * p.inner);
  let v = p.scale * dy[o * p.inner + i];
  if (ACCUM) {
    dx[k] = dx[k] + v;
  } else {
    dx[k] = v;
  }
}
