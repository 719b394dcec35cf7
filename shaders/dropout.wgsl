// Inverted dropout with the mask made on the GPU from a counter-based hash: no random state to
// store or upload, and the CPU reference recomputes the same mask bit for bit.
//
// dropout_forward:  h = hash(seed, i);  keep = h >= threshold
//                   mask[i] = keep ? scale : 0;  y[i] = x[i] * mask[i]
//   with threshold = floor(p * 2^32) (saturated to 2^32 - 1) and scale = 1 / (1 - p) in f32
//   (0 when p = 1), so P(keep) = 1 - p up to 2^-32. The keep decision is pure integer arithmetic:
//   the CPU reference reproduces it exactly.
// dropout_forward_step: the same, with the seed of the current training step derived from
//   params.seed (the layer's seed) and the step number in the per-step values uniform:
//   seed = (params.seed ^ 0x9e3779b9) + (step + 1) * 0x85ebca6b (u32 wrap-around); when bit 0 of
//   its flags is clear (dropout switched off for a step) the mask is all ones.
// dropout_backward: dx[i] = dy[i] * mask[i]   (dx[i] += ... when the override ACCUM is true)
// hash(seed, i) = pcg(i + pcg(seed)), pcg being the PCG-RXS-M-XS 32-bit permutation
// (Jarzynski and Olano, "Hash Functions for GPU Rendering", 2020).
//
// Bindings (f32, n = params.n elements, any n >= 1):
//   params: { n: u32, p: f32, seed: u32 }  (backward reads n only)
//   x    : array<f32> (n)   input                 (forward)
//   y    : array<f32> (n)   output, written       (forward)
//   mask : array<f32> (n)   written by forward, read by backward as `mask_in`
//   mask_in: array<f32> (n) the same mask         (backward; a WGSL variable has one access mode)
//   dy   : array<f32> (n)   gradient of y         (backward)
//   dx   : array<f32> (n)   gradient of x, written (backward)
//   step_values: uniform StepValues (_step.wgsl)       (dropout_forward_step)
// Dispatch: 1-D, one element per invocation, WG per workgroup, grid split over x and y by grid1d.

#include "_step.wgsl"

struct Params { n: u32, p: f32, seed: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> mask: array<f32>;
@group(0) @binding(4) var<storage, read> mask_in: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<uniform> step_values: StepValues;

override WG: u32 = 256;
override ACCUM: bool = false;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// mask[i] and y[i] for drop probability p and a seed.
fn drop(i: u32, p: f32, seed: u32) {
  // p * 2^32 is exact in f32; the conversion to u32 saturates at 2^32 - 1 for p = 1.
  let threshold = u32(p * 4294967296.0);
  let scale = select(1.0 / (1.0 - p), 0.0, p >= 1.0);
  let h = pcg(i + pcg(seed));
  let mk = select(0.0, scale, h >= threshold);
  mask[i] = mk;
  y[i] = x[i] * mk;
}

@compute @workgroup_size(WG)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  drop(i, params.p, params.seed);
}

@compute @workgroup_size(WG)
fn dropout_forward_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let on = (step_values.flags & STEP_DROPOUT) != 0u;
  let seed = (params.seed ^ 0x9e3779b9u) + (step_values.step + 1u) * 0x85ebca6bu;
  drop(i, select(0.0, params.p, on), seed);
}

@compute @workgroup_size(WG)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  let v = dy[i] * mask_in[i];
  if (ACCUM) {
    dx[i] = dx[i] + v;
  } else {
    dx[i] = v;
  }
}
