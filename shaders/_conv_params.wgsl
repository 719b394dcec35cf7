// The params of a 2-D convolution's kernels (shaders/conv2d.wgsl, shaders/im2col.wgsl, through
// #include): x [batch, in_c, in_h, in_w], y [batch, out_c, out_h, out_w], a k_h x k_w window with
// the given strides and zero padding; relu = 1 applies a ReLU to the forward output. All u32;
// src/kernels/conv2d.ts `conv2dParams` fills them.

struct Params {
  batch: u32,
  in_c: u32,
  in_h: u32,
  in_w: u32,
  out_c: u32,
  out_h: u32,
  out_w: u32,
  k_h: u32,
  k_w: u32,
  stride_h: u32,
  stride_w: u32,
  pad_h: u32,
  pad_w: u32,
  relu: u32,
}
