// Copies along one axis between a whole tensor and a part of it: the pieces of concatenate (each
// input into its place) and split (each piece out of its place), and of their backward passes.
//
//   slice_into: dst[o, dst_start + r, i] = src[o, r, i]        r < len = src's axis size
//   slice_from: dst[o, r, i] = src[o, src_start + r, i]        r < len = dst's axis size
// with both tensors viewed as [outer, axis, inner] (the axis sizes src_len and dst_len may differ;
// every other dimension is equal). With the override ACCUM true, dst is added to (dst += ...)
// instead of overwritten: gradients that accumulate.
//
// Bindings (f32):
//   params: { n: u32 (= outer * len * inner values copied), inner, len, src_len, src_start, dst_len,
//             dst_start: u32 }   (slice_into: src_start = 0, src_len = len; slice_from: dst_start = 0,
//             dst_len = len)
//   src: array<f32> (outer * src_len * inner)   dst: array<f32> (outer * dst_len * inner), written
// Dispatch: 1-D, one copied value per invocation (neighbouring invocations move neighbouring
// values), WG invocations per workgroup, grid split over x and y (grid1d).

struct Params { n: u32, inner: u32, len: u32, src_len: u32, src_start: u32, dst_len: u32, dst_start: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

override WG: u32 = 256;
override ACCUM: bool = false;

// Copy value k of the [outer, len, inner] block between the two views.
fn copy_block(gid: vec3<u32>, nwg: vec3<u32>) {
  let p = params;
  let k = gid.x + gid.y * nwg.x * WG;
  if (k >= p.n) { return; }
  let i = k % p.inner;
  let t = k / p.inner;
  let r = t % p.len;
  let o = t / p.len;
  let v = src[(o * p.src_len + p.src_start + r) * p.inner + i];
  let d = (o * p.dst_len + p.dst_start + r) * p.inner + i;
  if (ACCUM) {
    dst[d] = dst[d] + v;
  } else {
    dst[d] = v;
  }
}

@compute @workgroup_size(WG)
fn slice_into(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  copy_block(gid, nwg);
}

@compute @workgroup_size(WG)
fn slice_from(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  copy_block(gid, nwg);
}
