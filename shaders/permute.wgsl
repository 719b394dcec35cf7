// Permute: y = x with its axes reordered, y.shape[k] = x.shape[perm[k]], for any rank up to 6.
//
//   y[c_0, ..., c_{r-1}] = x at offset sum_k c_k * s_k
// where (c_k) are y's coordinates over its dimensions (d_0, ..., d_{r-1}), the last the fastest,
// and s_k is x's stride (in elements) along axis perm[k]. The wrapper (src/kernels/permute.ts)
// first drops axes of size 1 and merges axes that stay adjacent and in order, so r is often
// smaller than the tensor's rank (a transpose of the last two of four axes becomes r = 3, say).
// With the override ACCUM true, y is added to (y += ...) instead of overwritten: the backward of a
// permute is a permute by the inverse permutation into a gradient that may accumulate.
//
// Bindings (f32):
//   params: { n: u32 (elements), rank: u32 (r, 1..6), d0..d5: u32 (y's dimensions, d0 outermost;
//             unused ones 1), s0..s5: u32 (x's strides for y's axes; unused ones 0) }
//   x: array<f32> (n)   y: array<f32> (n), written (read too when ACCUM)
// Dispatch: 1-D, one y element per invocation (neighbouring invocations write neighbouring
// addresses), WG invocations per workgroup, grid split over x and y (grid1d).

struct Params {
  n: u32, rank: u32,
  d0: u32, d1: u32, d2: u32, d3: u32, d4: u32, d5: u32,
  s0: u32, s1: u32, s2: u32, s3: u32, s4: u32, s5: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;
override ACCUM: bool = false;

// The x offset of y's element i: its coordinates peeled off from the fastest axis outwards.
fn source_index(i: u32) -> u32 {
  let p = params;
  var dims = array<u32, 6>(p.d0, p.d1, p.d2, p.d3, p.d4, p.d5);
  var strides = array<u32, 6>(p.s0, p.s1, p.s2, p.s3, p.s4, p.s5);
  var rest = i;
  var offset = 0u;
  for (var k = p.rank; k > 0u; k--) {
    let d = dims[k - 1u];
    offset += (rest % d) * strides[k - 1u];
    rest /= d;
  }
  return offset;
}

@compute @workgroup_size(WG)
fn permute(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) { return; }
  let v = x[source_index(i)];
  if (ACCUM) {
    y[i] = y[i] + v;
  } else {
    y[i] = v;
  }
}
