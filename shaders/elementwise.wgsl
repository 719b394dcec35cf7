// Elementwise primitives, so that layers can be composed without new WGSL.
//
//   add_forward:   y[i] = alpha * a[i] + beta * b[i % nb]
//   mul_forward:   y[i] = a[i] * b[i % nb]
//   scale_forward: y[i] = alpha * x[i]        (a copy when alpha = 1)
//   fill_forward:  y[i] = alpha               (zeros before a part of y is written)
// b repeats along a's leading dimensions when it has fewer values (nb < n: a [B, T, D], b [T, D]);
// the override BROADCAST is then true, so the common case (nb = n) has no modulo. With the
// override ACCUM true every entry adds into y (y[i] += ...) instead of overwriting it: gradients
// that accumulate, and an add in place (scale_forward with accumulate: y += alpha * x).
//
// Bindings (f32):
//   params: { n: u32 (elements of y), nb: u32 (elements of b; n for scale_forward), alpha: f32, beta: f32 }
//   a: array<f32> (n)   b: array<f32> (nb, nb divides n)   (add_forward, mul_forward)
//   x: array<f32> (n)                                      (scale_forward)
//   (fill_forward binds y alone)
//   y: array<f32> (n), written (read too when ACCUM)
// Dispatch: 1-D, one element per invocation, WG invocations per workgroup, grid split over x and y
// (grid1d) so that n > 65535 * WG works.

struct Params { n: u32, nb: u32, alpha: f32, beta: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;
override ACCUM: bool = false;
override BROADCAST: bool = false;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// The b value paired with element i of a.
fn b_at(i: u32) -> f32 {
  if (BROADCAST) { return b[i % params.nb]; }
  return b[i];
}

fn store_y(i: u32, v: f32) {
  if (ACCUM) {
    y[i] = y[i] + v;
  } else {
    y[i] = v;
  }
}

@compute @workgroup_size(WG)
fn add_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  store_y(i, params.alpha * a[i] + params.beta * b_at(i));
}

@compute @workgroup_size(WG)
fn mul_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  store_y(i, a[i] * b_at(i));
}

@compute @workgroup_size(WG)
fn scale_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  store_y(i, params.alpha * x[i]);
}

@compute @workgroup_size(WG)
fn fill_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  store_y(i, params.alpha);
}
