// 2-D pooling over NCHW tensors: max, average and global average, forward and backward.
//
// Geometry (all u32 params): x [B, C, H, W], y [B, C, OH, OW] with
//   OH = (H + 2*PH - KH) / SH + 1, OW = (W + 2*PW - KW) / SW + 1; PH <= KH/2 and PW <= KW/2, so
//   every window holds at least one input element. Window (oh, ow) covers input rows
//   oh*SH - PH .. oh*SH - PH + KH - 1 and columns likewise.
//   max: padding never wins (it is -inf). argmax is the index ih*W + iw of the winner inside its
//     (b, c) plane, stored as f32 (exact below 2^24); ties go to the first in row-major order.
//   avg: divisor KH*KW when params.include_pad = 1 (PyTorch's count_include_pad=True), else the
//     number of window elements inside the input.
//   global avg: y[b, c] = mean of x[b, c, :, :].
//
// Entries and bindings (params is the struct below; the rest are array<f32>):
//   max_pool2d_forward        x, y, argmax [B, C, OH, OW]     one invocation per y element
//   max_pool2d_backward       dy, argmax, dx [B, C, H, W]      one invocation per dx element
//   max_pool2d_backward_tiled the same, for stride = kernel and no padding; 3-D grid
//                             [ceil(W / WG), H, B*C]
//   avg_pool2d_forward        x, y                             one invocation per y element
//   avg_pool2d_backward       dy, dx                           one invocation per dx element
//   global_avg_pool_forward   x, y [B, C]                      one invocation per y element
//   global_avg_pool_backward  dy [B, C], dx                    one invocation per dx element
// Backward passes are gathers: each dx element scans the windows that cover it and sums what
// they send back, in a fixed order (deterministic, no atomics). With the override ACCUM true they
// add into dx instead of overwriting it (gradients that accumulate).
// Dispatch: 1-D, WG invocations per workgroup, grid split over x and y (grid1d).

struct Params {
  batch: u32,
  channels: u32,
  in_h: u32,
  in_w: u32,
  out_h: u32,
  out_w: u32,
  k_h: u32,
  k_w: u32,
  stride_h: u32,
  stride_w: u32,
  pad_h: u32,
  pad_w: u32,
  include_pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> argmax_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

override WG: u32 = 256;
override ACCUM: bool = false;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// dx[i] = v, or dx[i] += v when ACCUM (gradients that accumulate; only then is dx read).
fn store_dx(i: u32, v: f32) {
  if (ACCUM) {
    dx[i] = dx[i] + v;
  } else {
    dx[i] = v;
  }
}

#include "_window.wgsl"

// Input rows [first, last) that window o covers inside the input, along one axis.
fn window(o: u32, k: u32, s: u32, pad: u32, n_in: u32) -> vec2<u32> {
  let start = i32(o * s) - i32(pad);
  return vec2<u32>(u32(max(start, 0)), u32(min(start + i32(k), i32(n_in))));
}

fn avg_divisor(oh: u32, ow: u32) -> f32 {
  let p = params;
  if (p.include_pad != 0u) { return f32(p.k_h * p.k_w); }
  let rh = window(oh, p.k_h, p.stride_h, p.pad_h, p.in_h);
  let rw = window(ow, p.k_w, p.stride_w, p.pad_w, p.in_w);
  return f32((rh.y - rh.x) * (rw.y - rw.x));
}

@compute @workgroup_size(WG)
fn max_pool2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let i = linear_id(gid, nwg);
  if (i >= p.batch * p.channels * p.out_h * p.out_w) { return; }
  let ow = i % p.out_w;
  let oh = (i / p.out_w) % p.out_h;
  let plane = (i / (p.out_w * p.out_h)) * p.in_h * p.in_w;
  let rh = window(oh, p.k_h, p.stride_h, p.pad_h, p.in_h);
  let rw = window(ow, p.k_w, p.stride_w, p.pad_w, p.in_w);
  var best = x[plane + rh.x * p.in_w + rw.x];
  var at = rh.x * p.in_w + rw.x;
  for (var ih = rh.x; ih < rh.y; ih++) {
    for (var iw = rw.x; iw < rw.y; iw++) {
      let v = x[plane + ih * p.in_w + iw];
      if (v > best) {
        best = v;
        at = ih * p.in_w + iw;
      }
    }
  }
  y[i] = best;
  argmax[i] = f32(at);
}

@compute @workgroup_size(WG)
fn max_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let i = linear_id(gid, nwg);
  if (i >= p.batch * p.channels * p.in_h * p.in_w) { return; }
  let iw = i % p.in_w;
  let ih = (i / p.in_w) % p.in_h;
  let out_plane = (i / (p.in_w * p.in_h)) * p.out_h * p.out_w;
  let me = f32(ih * p.in_w + iw);
  let rh = covering(ih, p.k_h, p.stride_h, p.pad_h, p.out_h);
  let rw = covering(iw, p.k_w, p.stride_w, p.pad_w, p.out_w);
  var s = 0.0;
  for (var oh = rh.x; oh <= rh.y; oh++) {
    for (var ow = rw.x; ow <= rw.y; ow++) {
      let o = out_plane + u32(oh) * p.out_w + u32(ow);
      if (argmax_in[o] == me) { s += dy[o]; }
    }
  }
  store_dx(i, s);
}

// Windows that tile the input (stride = kernel, no padding; MaxPool2d(2) for one): each dx element
// lies in at most one window, so no loops and no searching. A 3-D grid gives the column (x, WG per
// workgroup), the row (y) and the (b, c) plane (z) without integer divisions by the shape, which
// a CPU adapter runs lane by lane; elements past the last whole window get 0.
@compute @workgroup_size(WG)
fn max_pool2d_backward_tiled(@builtin(global_invocation_id) gid: vec3<u32>) {
  let p = params;
  let iw = gid.x;
  let ih = gid.y;
  if (iw >= p.in_w) { return; }
  let oh = ih / p.k_h;
  let ow = iw / p.k_w;
  let inside = oh < p.out_h && ow < p.out_w;
  let o = (gid.z * p.out_h + min(oh, p.out_h - 1u)) * p.out_w + min(ow, p.out_w - 1u);
  let hit = inside && argmax_in[o] == f32(ih * p.in_w + iw);
  store_dx((gid.z * p.in_h + ih) * p.in_w + iw, select(0.0, dy[o], hit));
}

@compute @workgroup_size(WG)
fn avg_pool2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let i = linear_id(gid, nwg);
  if (i >= p.batch * p.channels * p.out_h * p.out_w) { return; }
  let ow = i % p.out_w;
  let oh = (i / p.out_w) % p.out_h;
  let plane = (i / (p.out_w * p.out_h)) * p.in_h * p.in_w;
  let rh = window(oh, p.k_h, p.stride_h, p.pad_h, p.in_h);
  let rw = window(ow, p.k_w, p.stride_w, p.pad_w, p.in_w);
  var s = 0.0;
  for (var ih = rh.x; ih < rh.y; ih++) {
    for (var iw = rw.x; iw < rw.y; iw++) {
      s += x[plane + ih * p.in_w + iw];
    }
  }
  y[i] = s / avg_divisor(oh, ow);
}

@compute @workgroup_size(WG)
fn avg_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let i = linear_id(gid, nwg);
  if (i >= p.batch * p.channels * p.in_h * p.in_w) { return; }
  let iw = i % p.in_w;
  let ih = (i / p.in_w) % p.in_h;
  let out_plane = (i / (p.in_w * p.in_h)) * p.out_h * p.out_w;
  let rh = covering(ih, p.k_h, p.stride_h, p.pad_h, p.out_h);
  let rw = covering(iw, p.k_w, p.stride_w, p.pad_w, p.out_w);
  var s = 0.0;
  for (var oh = rh.x; oh <= rh.y; oh++) {
    for (var ow = rw.x; ow <= rw.y; ow++) {
      s += dy[out_plane + u32(oh) * p.out_w + u32(ow)] / avg_divisor(u32(oh), u32(ow));
    }
  }
  store_dx(i, s);
}

@compute @workgroup_size(WG)
fn global_avg_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let i = linear_id(gid, nwg);
  if (i >= p.batch * p.channels) { return; }
  let hw = p.in_h * p.in_w;
  let base = i * hw;
  // Four interleaved partial sums: shorter dependency chains and a smaller rounding error.
  var s = vec4<f32>(0.0);
  var j = 0u;
  for (; j + 4u <= hw; j += 4u) {
    s += vec4<f32>(x[base + j], x[base + j + 1u], x[base + j + 2u], x[base + j + 3u]);
  }
  var t = 0.0;
  for (; j < hw; j++) {
    t += x[base + j];
  }
  y[i] = ((s.x + s.y) + (s.z + s.w) + t) / f32(hw);
}

@compute @workgroup_size(WG)
fn global_avg_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let i = linear_id(gid, nwg);
  let hw = p.in_h * p.in_w;
  if (i >= p.batch * p.channels * hw) { return; }
  store_dx(i, dy[i / hw] / f32(hw));
}
