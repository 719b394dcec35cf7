// 2-D convolution over NCHW tensors (cross-correlation, as in PyTorch), forward and backward.
//
// Geometry (all u32 params): x [B, IC, H, W], w [OC, IC, KH, KW], y [B, OC, OH, OW] with
//   OH = (H + 2*PH - KH) / SH + 1, OW = (W + 2*PW - KW) / SW + 1, zero padding.
//   y[b, oc, oh, ow] = bias[oc] + sum_{ic, kh, kw} w[oc, ic, kh, kw] * x[b, ic, oh*SH - PH + kh, ow*SW - PW + kw]
//
// Entries and bindings (params is the struct below; every other binding is array<f32>):
//   conv2d_forward                 x, w, y            (ReLU'd when params.relu = 1)
//   conv2d_forward_bias            x, w, bias [OC], y
//   conv2d_backward_input          dy [B, OC, OH, OW], w, dx [B, IC, H, W]   (gather form)
//   conv2d_backward_weight         x, dy, dw [OC, IC, KH, KW]
//   conv2d_backward_weight_bias    x, dy, dw, db [OC]
//
// Dispatch geometry. Every invocation accumulates an 8x8 register block (four mat4x4): on a CPU
// adapter each storage load is a per-lane gather, so the loads per multiply-add (1/8 + 1/8 here)
// set the speed.
//   forward: one invocation per block of 8 output channels x 8 adjacent output columns of one
//     output row. Blocks are numbered column block fastest, then oh, then channel block, then b:
//     B * ceil(OC/8) * OH * ceil(OW/8) invocations, WG per workgroup, 1-D grid split over x and y
//     (grid1d).
//   backward_input: the same over input channels and input columns, B * ceil(IC/8) * H * ceil(W/8)
//     invocations; each dx element is summed by exactly one invocation (no atomics).
//   backward_weight: dw viewed as a matrix [OC, IC*KH*KW] is cut into 8x8 blocks, one workgroup
//     of RW invocations per block: ceil(OC/8) * ceil(IC*KH*KW/8) workgroups, grid1d in workgroups
//     (RW is an override, a power of two, picked per adapter by the wrapper). The invocations
//     split the OH*OW output positions round-robin (each sums its positions over the batch), then
//     a fixed-order tree in workgroup memory adds their partial blocks: deterministic. db rides
//     along in the blocks whose first column is 0.
// Edge blocks (channels or columns not multiples of 8) read clamped in-range addresses, select
// zero for them and skip their writes.
// Gradients that accumulate: with the override ACCUM true, the backward entries add into dx (input
// gradient) or dw and db (weight gradient) instead of overwriting them; only then are those read.

#include "_conv_params.wgsl"

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> dw: array<f32>;
@group(0) @binding(8) var<storage, read_write> db: array<f32>;

override WG: u32 = 64;
// Invocations per workgroup of the weight-gradient kernels (a power of two for the tree).
override RW: u32 = 64u;
// Backward entries add into their outputs instead of overwriting them.
override ACCUM: bool = false;
// Block edge: channels and columns per register block.
const BS: u32 = 8u;
const LANE = vec4<u32>(0u, 1u, 2u, 3u);

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn ceil_div(a: u32, b: u32) -> u32 {
  return (a + b - 1u) / b;
}

// a (as a column) times b (as a row): column j is a * b[j].
fn outer(a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(a * b.x, a * b.y, a * b.z, a * b.w);
}

fn load_x(i: vec4<u32>) -> vec4<f32> { return vec4<f32>(x[i.x], x[i.y], x[i.z], x[i.w]); }
fn load_w(i: vec4<u32>) -> vec4<f32> { return vec4<f32>(w[i.x], w[i.y], w[i.z], w[i.w]); }
fn load_dy(i: vec4<u32>) -> vec4<f32> { return vec4<f32>(dy[i.x], dy[i.y], dy[i.z], dy[i.w]); }

// An 8x8 block of sums: rows are 8 channels (lo: first 4, hi: last 4), columns are 8 positions
// (a: first 4, b: last 4); in each mat4x4, column j holds position j, component q channel q.
struct Acc {
  la: mat4x4<f32>,
  ha: mat4x4<f32>,
  lb: mat4x4<f32>,
  hb: mat4x4<f32>,
}

// Where one output block sits: batch, first channel, row, first column.
struct Block {
  valid: bool,
  b: u32,
  c0: u32,
  row: u32,
  col0: u32,
}

fn block_of(id: u32, channels: u32, rows: u32, cols: u32) -> Block {
  let ncb = ceil_div(cols, BS);
  let nchb = ceil_div(channels, BS);
  var blk: Block;
  blk.col0 = (id % ncb) * BS;
  var t = id / ncb;
  blk.row = t % rows;
  t = t / rows;
  blk.c0 = (t % nchb) * BS;
  blk.b = t / nchb;
  blk.valid = blk.b < params.batch;
  return blk;
}

// The 4 channels c0.. clamped to the last one (clamped rows are computed and never written).
fn clamp_channels(c0: u32, channels: u32) -> vec4<u32> {
  return min(vec4<u32>(c0) + LANE, vec4<u32>(channels - 1u));
}

// ---- forward -----------------------------------------------------------------------------------

fn forward_block(blk: Block) -> Acc {
  let p = params;
  let khkw = p.k_h * p.k_w;
  let hw = p.in_h * p.in_w;
  let w_lo = clamp_channels(blk.c0, p.out_c) * (p.in_c * khkw);
  let w_hi = clamp_channels(blk.c0 + 4u, p.out_c) * (p.in_c * khkw);
  let x_b = blk.b * p.in_c * hw;
  let sw = i32(p.stride_w);
  let iw_a = vec4<i32>(i32(blk.col0) * sw - i32(p.pad_w)) + vec4<i32>(LANE) * sw;
  let iw_b = iw_a + vec4<i32>(4 * sw);
  let w_last = vec4<i32>(i32(p.in_w) - 1);
  var acc: Acc;
  for (var kh = 0u; kh < p.k_h; kh++) {
    let ih = i32(blk.row * p.stride_h + kh) - i32(p.pad_h);
    if (ih < 0 || ih >= i32(p.in_h)) { continue; }
    let x_row = vec4<u32>(x_b + u32(ih) * p.in_w);
    for (var kw = 0u; kw < p.k_w; kw++) {
      let ca = iw_a + vec4<i32>(i32(kw));
      let cb = iw_b + vec4<i32>(i32(kw));
      let ok_a = (ca >= vec4<i32>(0)) & (ca <= w_last);
      let ok_b = (cb >= vec4<i32>(0)) & (cb <= w_last);
      var xa = x_row + vec4<u32>(clamp(ca, vec4<i32>(0), w_last));
      var xb = x_row + vec4<u32>(clamp(cb, vec4<i32>(0), w_last));
      let tap = vec4<u32>(kh * p.k_w + kw);
      var wa = w_lo + tap;
      var wb = w_hi + tap;
      for (var ic = 0u; ic < p.in_c; ic++) {
        let va = select(vec4<f32>(0.0), load_x(xa), ok_a);
        let vb = select(vec4<f32>(0.0), load_x(xb), ok_b);
        let w0 = load_w(wa);
        let w1 = load_w(wb);
        acc.la += outer(w0, va);
        acc.ha += outer(w1, va);
        acc.lb += outer(w0, vb);
        acc.hb += outer(w1, vb);
        xa += vec4<u32>(hw);
        xb += vec4<u32>(hw);
        wa += vec4<u32>(khkw);
        wb += vec4<u32>(khkw);
      }
    }
  }
  return acc;
}

fn with_relu(v: vec4<f32>, relu: bool) -> vec4<f32> {
  return select(v, max(v, vec4<f32>(0.0)), relu);
}

// y[b, c0 + q, row, col0 + j] = m[j][q] + bias4[q] (ReLU'd when asked), inside the tensor only.
fn write_y(b: u32, c0: u32, row: u32, col0: u32, m: mat4x4<f32>, bias4: vec4<f32>) {
  let p = params;
  let plane = p.out_h * p.out_w;
  let base = ((b * p.out_c + c0) * p.out_h + row) * p.out_w + col0;
  let relu = p.relu != 0u;
  let t = transpose(m);
  if (c0 + 4u <= p.out_c && col0 + 4u <= p.out_w) {
    // Whole quad inside: straight-line stores.
    for (var q = 0u; q < 4u; q++) {
      let v = with_relu(t[q] + vec4<f32>(bias4[q]), relu);
      let o = base + q * plane;
      y[o] = v.x;
      y[o + 1u] = v.y;
      y[o + 2u] = v.z;
      y[o + 3u] = v.w;
    }
    return;
  }
  for (var q = 0u; q < 4u && c0 + q < p.out_c; q++) {
    let v = with_relu(t[q] + vec4<f32>(bias4[q]), relu);
    for (var j = 0u; j < 4u && col0 + j < p.out_w; j++) {
      y[base + q * plane + j] = v[j];
    }
  }
}

fn write_forward(blk: Block, acc: Acc, bias_lo: vec4<f32>, bias_hi: vec4<f32>) {
  write_y(blk.b, blk.c0, blk.row, blk.col0, acc.la, bias_lo);
  write_y(blk.b, blk.c0 + 4u, blk.row, blk.col0, acc.ha, bias_hi);
  write_y(blk.b, blk.c0, blk.row, blk.col0 + 4u, acc.lb, bias_lo);
  write_y(blk.b, blk.c0 + 4u, blk.row, blk.col0 + 4u, acc.hb, bias_hi);
}

@compute @workgroup_size(WG)
fn conv2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blk = block_of(linear_id(gid, nwg), params.out_c, params.out_h, params.out_w);
  if (!blk.valid) { return; }
  write_forward(blk, forward_block(blk), vec4<f32>(0.0), vec4<f32>(0.0));
}

@compute @workgroup_size(WG)
fn conv2d_forward_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blk = block_of(linear_id(gid, nwg), params.out_c, params.out_h, params.out_w);
  if (!blk.valid) { return; }
  let lo = clamp_channels(blk.c0, params.out_c);
  let hi = clamp_channels(blk.c0 + 4u, params.out_c);
  let bias_lo = vec4<f32>(bias[lo.x], bias[lo.y], bias[lo.z], bias[lo.w]);
  let bias_hi = vec4<f32>(bias[hi.x], bias[hi.y], bias[hi.z], bias[hi.w]);
  write_forward(blk, forward_block(blk), bias_lo, bias_hi);
}

// ---- gradient of the input ---------------------------------------------------------------------

// out[i] = v, or out[i] += v when ACCUM; one function per written gradient (WGSL cannot pass a
// storage buffer by pointer to a function shared by several).
fn store_dx(i: u32, v: f32) {
  if (ACCUM) { dx[i] = dx[i] + v; } else { dx[i] = v; }
}

fn store_dw(i: u32, v: f32) {
  if (ACCUM) { dw[i] = dw[i] + v; } else { dw[i] = v; }
}

fn store_db(i: u32, v: f32) {
  if (ACCUM) { db[i] = db[i] + v; } else { db[i] = v; }
}

// dx[b, ic, ih, iw] = sum over (oc, kh, kw) with oh*SH - PH + kh = ih and ow*SW - PW + kw = iw of
// dy[b, oc, oh, ow] * w[oc, ic, kh, kw]: the block's channels are input channels, its columns input
// columns. A (kh, kw) tap contributes to a column only where the stride divides evenly.
fn backward_input_block(blk: Block) -> Acc {
  let p = params;
  let khkw = p.k_h * p.k_w;
  let plane = p.out_h * p.out_w;
  let w_lo = clamp_channels(blk.c0, p.in_c) * khkw;
  let w_hi = clamp_channels(blk.c0 + 4u, p.in_c) * khkw;
  let oc_stride = p.in_c * khkw;
  let dy_b = blk.b * p.out_c * plane;
  let sw = vec4<i32>(i32(p.stride_w));
  let ow_last = vec4<i32>(i32(p.out_w) - 1);
  let col_a = vec4<i32>(i32(blk.col0 + p.pad_w)) + vec4<i32>(LANE);
  let col_b = col_a + vec4<i32>(4);
  var acc: Acc;
  for (var kh = 0u; kh < p.k_h; kh++) {
    let ohn = i32(blk.row + p.pad_h) - i32(kh);
    if (ohn < 0 || ohn % i32(p.stride_h) != 0) { continue; }
    let oh = u32(ohn) / p.stride_h;
    if (oh >= p.out_h) { continue; }
    let dy_row = vec4<u32>(dy_b + oh * p.out_w);
    for (var kw = 0u; kw < p.k_w; kw++) {
      let na = col_a - vec4<i32>(i32(kw));
      let nb = col_b - vec4<i32>(i32(kw));
      let ow_a = na / sw;
      let ow_b = nb / sw;
      let ok_a = (na >= vec4<i32>(0)) & (na % sw == vec4<i32>(0)) & (ow_a <= ow_last);
      let ok_b = (nb >= vec4<i32>(0)) & (nb % sw == vec4<i32>(0)) & (ow_b <= ow_last);
      if (!any(ok_a) && !any(ok_b)) { continue; }
      var da = dy_row + vec4<u32>(clamp(ow_a, vec4<i32>(0), ow_last));
      var dbb = dy_row + vec4<u32>(clamp(ow_b, vec4<i32>(0), ow_last));
      let tap = vec4<u32>(kh * p.k_w + kw);
      var wa = w_lo + tap;
      var wb = w_hi + tap;
      for (var oc = 0u; oc < p.out_c; oc++) {
        let ga = select(vec4<f32>(0.0), load_dy(da), ok_a);
        let gb = select(vec4<f32>(0.0), load_dy(dbb), ok_b);
        let w0 = load_w(wa);
        let w1 = load_w(wb);
        acc.la += outer(w0, ga);
        acc.ha += outer(w1, ga);
        acc.lb += outer(w0, gb);
        acc.hb += outer(w1, gb);
        da += vec4<u32>(plane);
        dbb += vec4<u32>(plane);
        wa += vec4<u32>(oc_stride);
        wb += vec4<u32>(oc_stride);
      }
    }
  }
  return acc;
}

// dx[b, c0 + q, row, col0 + j] = m[j][q], inside the tensor only.
fn write_dx(b: u32, c0: u32, row: u32, col0: u32, m: mat4x4<f32>) {
  let p = params;
  let plane = p.in_h * p.in_w;
  let base = ((b * p.in_c + c0) * p.in_h + row) * p.in_w + col0;
  let t = transpose(m);
  if (c0 + 4u <= p.in_c && col0 + 4u <= p.in_w) {
    for (var q = 0u; q < 4u; q++) {
      let o = base + q * plane;
      store_dx(o, t[q].x);
      store_dx(o + 1u, t[q].y);
      store_dx(o + 2u, t[q].z);
      store_dx(o + 3u, t[q].w);
    }
    return;
  }
  for (var q = 0u; q < 4u && c0 + q < p.in_c; q++) {
    for (var j = 0u; j < 4u && col0 + j < p.in_w; j++) {
      store_dx(base + q * plane + j, t[q][j]);
    }
  }
}

@compute @workgroup_size(WG)
fn conv2d_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blk = block_of(linear_id(gid, nwg), params.in_c, params.in_h, params.in_w);
  if (!blk.valid) { return; }
  let acc = backward_input_block(blk);
  write_dx(blk.b, blk.c0, blk.row, blk.col0, acc.la);
  write_dx(blk.b, blk.c0 + 4u, blk.row, blk.col0, acc.ha);
  write_dx(blk.b, blk.c0, blk.row, blk.col0 + 4u, acc.lb);
  write_dx(blk.b, blk.c0 + 4u, blk.row, blk.col0 + 4u, acc.hb);
}

// ---- gradient of the weights (and bias) --------------------------------------------------------

var<workgroup> part: array<Acc, RW>;
var<workgroup> part_lo: array<vec4<f32>, RW>;
var<workgroup> part_hi: array<vec4<f32>, RW>;

// The (ic, kh, kw) of 4 columns of dw viewed as [OC, IC*KH*KW], as the offsets they need.
struct Taps {
  // x offset of (b = 0, ic, row 0, column 0)
  x_off: vec4<u32>,
  kh: vec4<i32>,
  kw: vec4<i32>,
}

fn taps_of(col0: u32) -> Taps {
  let p = params;
  let khkw = p.k_h * p.k_w;
  let col = min(vec4<u32>(col0) + LANE, vec4<u32>(p.in_c * khkw - 1u));
  let r = col % vec4<u32>(khkw);
  var t: Taps;
  t.x_off = (col / vec4<u32>(khkw)) * (p.in_h * p.in_w);
  t.kh = vec4<i32>(r / vec4<u32>(p.k_w)) - vec4<i32>(i32(p.pad_h));
  t.kw = vec4<i32>(r % vec4<u32>(p.k_w)) - vec4<i32>(i32(p.pad_w));
  return t;
}

// This invocation's share of one 8x8 block of dw [OC, IC*KH*KW] (rows oc0.., columns col0..):
// dw[oc, (ic, kh, kw)] = sum_{b, oh, ow} dy[b, oc, oh, ow] * x[b, ic, oh*SH - PH + kh, ow*SW - PW + kw].
// Output positions (oh, ow) are dealt out round-robin to the RW invocations; each walks the batch
// for its positions, so the padding masks are worked out once per position, not once per term.
// The partial block goes to part[lid] and the partial dy sums of the 8 channels to part_lo/hi[lid].
fn backward_weight_partial(lid: u32, oc0: u32, col0: u32) {
  let p = params;
  let plane = p.out_h * p.out_w;
  let ta = taps_of(col0);
  let tb = taps_of(col0 + 4u);
  let oc_lo = clamp_channels(oc0, p.out_c) * plane;
  let oc_hi = clamp_channels(oc0 + 4u, p.out_c) * plane;
  let h_last = vec4<i32>(i32(p.in_h) - 1);
  let w_last = vec4<i32>(i32(p.in_w) - 1);
  let x_step = vec4<u32>(p.in_c * p.in_h * p.in_w);
  let dy_step = vec4<u32>(p.out_c * plane);
  var acc: Acc;
  var s_lo = vec4<f32>(0.0);
  var s_hi = vec4<f32>(0.0);
  for (var pos = lid; pos < plane; pos += RW) {
    let oh = vec4<i32>(i32((pos / p.out_w) * p.stride_h));
    let ow = vec4<i32>(i32((pos % p.out_w) * p.stride_w));
    let ih_a = oh + ta.kh;
    let ih_b = oh + tb.kh;
    let iw_a = ow + ta.kw;
    let iw_b = ow + tb.kw;
    let ok_a = (ih_a >= vec4<i32>(0)) & (ih_a <= h_last) & (iw_a >= vec4<i32>(0)) & (iw_a <= w_last);
    let ok_b = (ih_b >= vec4<i32>(0)) & (ih_b <= h_last) & (iw_b >= vec4<i32>(0)) & (iw_b <= w_last);
    var xa = ta.x_off + vec4<u32>(clamp(ih_a, vec4<i32>(0), h_last)) * p.in_w + vec4<u32>(clamp(iw_a, vec4<i32>(0), w_last));
    var xb = tb.x_off + vec4<u32>(clamp(ih_b, vec4<i32>(0), h_last)) * p.in_w + vec4<u32>(clamp(iw_b, vec4<i32>(0), w_last));
    var d_lo = oc_lo + vec4<u32>(pos);
    var d_hi = oc_hi + vec4<u32>(pos);
    for (var b = 0u; b < p.batch; b++) {
      let va = select(vec4<f32>(0.0), load_x(xa), ok_a);
      let vb = select(vec4<f32>(0.0), load_x(xb), ok_b);
      let g_lo = load_dy(d_lo);
      let g_hi = load_dy(d_hi);
      acc.la += outer(g_lo, va);
      acc.ha += outer(g_hi, va);
      acc.lb += outer(g_lo, vb);
      acc.hb += outer(g_hi, vb);
      s_lo += g_lo;
      s_hi += g_hi;
      xa += x_step;
      xb += x_step;
      d_lo += dy_step;
      d_hi += dy_step;
    }
  }
  part[lid] = acc;
  part_lo[lid] = s_lo;
  part_hi[lid] = s_hi;
}

// Pairwise tree over the RW partial blocks, in a fixed order; the total ends in slot 0.
fn reduce_partials(lid: u32) {
  for (var stride = RW / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lid < stride) {
      let o = part[lid + stride];
      part[lid].la += o.la;
      part[lid].ha += o.ha;
      part[lid].lb += o.lb;
      part[lid].hb += o.hb;
      part_lo[lid] += part_lo[lid + stride];
      part_hi[lid] += part_hi[lid + stride];
    }
  }
}

struct WeightBlock {
  valid: bool,
  oc0: u32,
  col0: u32,
}

fn weight_block(wid: vec3<u32>, nwg: vec3<u32>) -> WeightBlock {
  let ncb = ceil_div(params.in_c * params.k_h * params.k_w, BS);
  let id = wid.x + wid.y * nwg.x;
  var blk: WeightBlock;
  blk.col0 = (id % ncb) * BS;
  blk.oc0 = (id / ncb) * BS;
  blk.valid = blk.oc0 < params.out_c;
  return blk;
}

fn write_dw(oc0: u32, col0: u32, m: mat4x4<f32>) {
  let ncols = params.in_c * params.k_h * params.k_w;
  for (var q = 0u; q < 4u; q++) {
    let oc = oc0 + q;
    if (oc >= params.out_c) { break; }
    for (var j = 0u; j < 4u; j++) {
      let c = col0 + j;
      if (c >= ncols) { break; }
      store_dw(oc * ncols + c, m[j][q]);
    }
  }
}

fn write_weight_block(blk: WeightBlock) {
  let total = part[0];
  write_dw(blk.oc0, blk.col0, total.la);
  write_dw(blk.oc0 + 4u, blk.col0, total.ha);
  write_dw(blk.oc0, blk.col0 + 4u, total.lb);
  write_dw(blk.oc0 + 4u, blk.col0 + 4u, total.hb);
}

@compute @workgroup_size(RW)
fn conv2d_backward_weight(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let blk = weight_block(wid, nwg);
  if (!blk.valid) { return; }
  backward_weight_partial(lid, blk.oc0, blk.col0);
  reduce_partials(lid);
  if (lid == 0u) { write_weight_block(blk); }
}

@compute @workgroup_size(RW)
fn conv2d_backward_weight_bias(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let blk = weight_block(wid, nwg);
  if (!blk.valid) { return; }
  backward_weight_partial(lid, blk.oc0, blk.col0);
  reduce_partials(lid);
  if (lid == 0u) {
    write_weight_block(blk);
    if (blk.col0 == 0u) {
      let sums = array<vec4<f32>, 2>(part_lo[0], part_hi[0]);
      for (var q = 0u; q < BS; q++) {
        if (blk.oc0 + q < params.out_c) { store_db(blk.oc0 + q, sums[q / 4u][q % 4u]); }
      }
    }
  }
}
