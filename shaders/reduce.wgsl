// Reductions.
//
// sum_accumulate: acc[slot] += sum_i x[i]. One workgroup: each invocation sums a strided slice in
//   a fixed order, then a tree reduction in workgroup memory combines the partial sums. The order
//   of additions never depends on timing, so the result is the same bit for bit on every run,
//   and no float atomics are needed. Used to keep running loss sums and correct counts on the GPU
//   across steps, so that the host reads them only every N steps.
// sum_accumulate_step: the same into acc[slot + step % window], with the training step read from
//   the per-step values uniform: a replayed step fills the next slot of a window of `window`
//   steps with no write of its own.
// argmax_rows: out[b] = the index (as f32) of the largest x[b, c]; the first one wins on ties.
//
// Bindings (f32):
//   params: { n: u32, slot: u32, window: u32 }
//           sum_accumulate: n = elements of x, slot = index into acc (window unused)
//           sum_accumulate_step: n, the first slot, and the window's length
//           argmax_rows:    n = rows B (slot unused); the row length C is arrayLength(x) / B, so x
//                           must be bound as exactly B*C values (the TS wrapper binds whole tensors)
//   x   : array<f32> (n, or B*C row-major)
//   acc : array<f32> (k > slot)   read and written (sum_accumulate)
//   out : array<f32> (B)          written (argmax_rows)
//   step_values: StepValues (shaders/_step.wgsl)   (sum_accumulate_step)
// Dispatch: sum_accumulate: exactly one workgroup of SUM_WG invocations, any n.
//           argmax_rows: 1-D over rows, one invocation per row, WG per workgroup, grid1d.

#include "_step.wgsl"

struct Params { n: u32, slot: u32, window: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> step_values: StepValues;

const SUM_WG: u32 = 256u;
override WG: u32 = 64;

var<workgroup> partial: array<f32, SUM_WG>;

// The sum of x over one workgroup, in a fixed order; every invocation gets it.
fn workgroup_total(lid: u32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < params.n; i += SUM_WG) { s += x[i]; }
  partial[lid] = s;
  workgroupBarrier();
  for (var stride = SUM_WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  return partial[0];
}

@compute @workgroup_size(SUM_WG)
fn sum_accumulate(@builtin(local_invocation_index) lid: u32) {
  let total = workgroup_total(lid);
  if (lid == 0u && params.slot < arrayLength(&acc)) {
    acc[params.slot] += total;
  }
}

@compute @workgroup_size(SUM_WG)
fn sum_accumulate_step(@builtin(local_invocation_index) lid: u32) {
  let total = workgroup_total(lid);
  let slot = params.slot + step_values.step % params.window;
  if (lid == 0u && slot < arrayLength(&acc)) {
    acc[slot] += total;
  }
}

@compute @workgroup_size(WG)
fn argmax_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = gid.x + gid.y * nwg.x * WG;
  if (b >= params.n) { return; }
  let C = arrayLength(&x) / params.n;
  let base = b * C;
  var best = x[base];
  var arg = 0u;
  for (var c = 1u; c < C; c++) {
    let v = x[base + c];
    if (v > best) { best = v; arg = c; }
  }
  out[b] = f32(arg);
}
