// im2col and its adjoint col2im over NCHW tensors: with the batched transpose of
// shaders/transpose.wgsl, the data movement that turns a 2-D convolution into one matmul
// (src/nn/conv.ts, algorithm 'im2col').
//
// Geometry (shaders/_conv_params.wgsl, shared with shaders/conv2d.wgsl):
//   x [B, IC, H, W], kernel KH x KW, stride (SH, SW), zero padding (PH, PW),
//   OH = (H + 2*PH - KH) / SH + 1, OW = (W + 2*PW - KW) / SW + 1.
//   col [M, K] with M = B*OH*OW, K = IC*KH*KW: row m = (b*OH + oh)*OW + ow, column
//   k = (ic*KH + kh)*KW + kw, the order of a weight [OC, IC, KH, KW] flattened to [OC, K], so that
//   y viewed [M, OC] = col · w2dᵀ.
//   col[m, k] = x[b, ic, oh*SH - PH + kh, ow*SW - PW + kw], 0 where that falls in the padding.
// out_c and relu are not read.
//
// Entries and bindings (params is the included struct; the rest are array<f32>):
//   im2col             x, col                  one invocation per row m of col (writes its K values)
//   col2im             dcol [M, K], dx          one invocation per (b, ih, iw), looping over ic:
//                      dx[b, ic, ih, iw] = sum of dcol[(b, oh, ow), (ic, kh, kw)] over the window
//                      positions (oh, ow) that see (ih, iw); overwrites dx, or adds into it when
//                      the override ACCUM is true. Gather form, a fixed order, no atomics:
//                      deterministic.
//
// Dispatch: a 3-D grid, workgroups of WX x WY invocations (overrides, WX * WY = 64, chosen by
// src/kernels/im2col.ts from the width so that narrow images still fill the lanes). x is the column
// (ow or iw), y the image row (oh or ih), z the batch index. The grid gives every coordinate without integer divisions by
// runtime values, which a CPU adapter (SwiftShader) emulates lane by lane; the only ones left are
// col2im's four per invocation to find the windows covering a pixel, shared by all IC channels it
// sums. y and z loop with a stride of the grid's size, so any height and batch fit the
// 65,535-workgroups-per-dimension limit; the wrapper checks x.

#include "_conv_params.wgsl"

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;
@group(0) @binding(3) var<storage, read> dcol: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

override WX: u32 = 16u;
override WY: u32 = 4u;
// col2im adds into dx instead of overwriting it (gradients that accumulate).
override ACCUM: bool = false;

#include "_window.wgsl"

@compute @workgroup_size(WX, WY)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let ow = gid.x;
  if (ow >= p.out_w) { return; }
  let K = p.in_c * p.k_h * p.k_w;
  let plane = p.in_h * p.in_w;
  let iw0 = i32(ow * p.stride_w) - i32(p.pad_w);
  for (var b = gid.z; b < p.batch; b += nwg.z) {
    for (var oh = gid.y; oh < p.out_h; oh += nwg.y * WY) {
      let ih0 = i32(oh * p.stride_h) - i32(p.pad_h);
      // The row of col this invocation owns, written front to back.
      var o = ((b * p.out_h + oh) * p.out_w + ow) * K;
      var base = b * p.in_c * plane;
      for (var ic = 0u; ic < p.in_c; ic++) {
        for (var kh = 0u; kh < p.k_h; kh++) {
          let ih = ih0 + i32(kh);
          let row_in = ih >= 0 && ih < i32(p.in_h);
          // Padding reads a clamped in-range address and selects zero: no branches per element.
          let row = base + u32(clamp(ih, 0, i32(p.in_h) - 1)) * p.in_w;
          for (var kw = 0u; kw < p.k_w; kw++) {
            let iw = iw0 + i32(kw);
            let inside = row_in && iw >= 0 && iw < i32(p.in_w);
            let v = x[row + u32(clamp(iw, 0, i32(p.in_w) - 1))];
            col[o] = select(0.0, v, inside);
            o += 1u;
          }
        }
        base += plane;
      }
    }
  }
}

@compute @workgroup_size(WX, WY)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let iw = gid.x;
  if (iw >= p.in_w) { return; }
  let K = p.in_c * p.k_h * p.k_w;
  let kk = p.k_h * p.k_w;
  let plane = p.in_h * p.in_w;
  // Window columns ow that see iw, each with its kernel column kw = iw + PW - ow*SW (exact: no
  // division, so strides that do not divide the input and padding need no special case).
  let cw = covering(iw, p.k_w, p.stride_w, p.pad_w, p.out_w);
  for (var ih = gid.y; ih < p.in_h; ih += nwg.y * WY) {
    let ch = covering(ih, p.k_h, p.stride_h, p.pad_h, p.out_h);
    for (var b = gid.z; b < p.batch; b += nwg.z) {
      var out = b * p.in_c * plane + ih * p.in_w + iw;
      for (var ic = 0u; ic < p.in_c; ic++) {
        var s = 0.0;
        for (var oh = ch.x; oh <= ch.y; oh++) {
          let kh = ih + p.pad_h - u32(oh) * p.stride_h;
          let row = (b * p.out_h + u32(oh)) * p.out_w;
          let k0 = ic * kk + kh * p.k_w;
          for (var ow = cw.x; ow <= cw.y; ow++) {
            let kw = iw + p.pad_w - u32(ow) * p.stride_w;
            s += dcol[(row + u32(ow)) * K + k0 + kw];
          }
        }
        if (ACCUM) {
          dx[out] = dx[out] + s;
        } else {
          dx[out] = s;
        }
        out += plane;
      }
    }
  }
}
