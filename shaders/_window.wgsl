// Window arithmetic shared by gather-form backward passes (shaders/pool.wgsl, shaders/im2col.wgsl,
// through #include): which windows of a sliding kernel (size k, stride s, padding pad, n_out
// windows) cover input index i.

// First and last (inclusive) window index along one axis whose window covers input index i;
// empty when first > last.
fn covering(i: u32, k: u32, s: u32, pad: u32, n_out: u32) -> vec2<i32> {
  let lo_num = i32(i + pad) - i32(k) + 1;
  let lo = select(0, (lo_num + i32(s) - 1) / i32(s), lo_num > 0);
  let hi = min(i32((i + pad) / s), i32(n_out) - 1);
  return vec2<i32>(lo, hi);
}
