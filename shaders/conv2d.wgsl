// 2-D convolution over NCHW tensors (cross-correlation, as in PyTorch), forward and backward.
//
// Geometry (all u32 params): x [B, IC, H, W], w [OC, IC, KH, KW], y [B, OC, OH, OW] with
//   OH = (H + 2*PH - KH) / SH + 1, OW = (W + 2*PW - KW) / SW + 1, zero padding.
//   y[b, oc, oh, ow] = bias[oc] + sum_{ic, kh, kw} w[oc, ic, kh, kw] * x[b, ic, oh*SH - PH + kh, ow*SW - PW + kw]
//
// Entries and bindings (params is the struct below; every other binding is array<f32>):
//   conv2d_forward                 x, w, y            [optionally ReLU with params.relu = 1]
//   conv2d_forward_bias            x, w, bias [OC], y
//   conv2d_backward_input          dy [B, OC, OH, OW], w, dx [B, IC, H, W]   (gather form)
//   conv2d_backward_weight         x, dy, dw [OC, IC, KH, KW]
//   conv2d_backward_weight_bias    x, dy, dw, db [OC]
//
// Dispatch geometry:
//   forward: one invocation per register block of 4 output channels x 4 adjacent output columns
//     (a mat4x4 of accumulators). Blocks are numbered with the column block fastest, then oh, then
//     the channel block, then b: B * ceil(OC/4) * OH * ceil(OW/4) invocations, WG per workgroup,
//     1-D grid split over x and y (grid1d).
//   backward_input: the same with input channels and input columns: B * ceil(IC/4) * H * ceil(W/4)
//     invocations; each dx element is written by exactly one invocation (no atomics).
//   backward_weight: dw viewed as a matrix [OC, IC*KH*KW] is cut into 4x4 blocks, one workgroup of
//     RW invocations per block (ceil(OC/4) * ceil(IC*KH*KW/4) workgroups, grid1d in workgroups).
//     The invocations split the B*OH rows of the sum, then a fixed-order tree in workgroup memory
//     adds their partial blocks: deterministic. db rides along in the blocks of column 0.
// Edge blocks (OC, IC, OW, W not multiples of 4) read clamped in-range addresses, mask them to
// zero and skip their writes.

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
const RW: u32 = 64u;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn ceil_div(a: u32, b: u32) -> u32 {
  return (a + b - 1u) / b;
}

// Where one register block sits: batch, first channel, row, first column.
struct Block {
  valid: bool,
  b: u32,
  c0: u32,
  row: u32,
  col0: u32,
}

fn block_of(id: u32, channels: u32, rows: u32, cols: u32) -> Block {
  let ncb = ceil_div(cols, 4u);
  let nchb = ceil_div(channels, 4u);
  var blk: Block;
  blk.col0 = (id % ncb) * 4u;
  var t = id / ncb;
  blk.row = t % rows;
  t = t / rows;
  blk.c0 = (t % nchb) * 4u;
  blk.b = t / nchb;
  blk.valid = blk.b < params.batch;
  return blk;
}

// ---- forward -----------------------------------------------------------------------------------

// Column j of the result holds output column ow0 + j for the 4 output channels oc0 .. oc0+3.
fn forward_block(blk: Block) -> mat4x4<f32> {
  let p = params;
  let khkw = p.k_h * p.k_w;
  let hw = p.in_h * p.in_w;
  // Weight rows of the four channels (clamped: rows past OC are computed and never written).
  let wrow = vec4<u32>(
    min(blk.c0, p.out_c - 1u),
    min(blk.c0 + 1u, p.out_c - 1u),
    min(blk.c0 + 2u, p.out_c - 1u),
    min(blk.c0 + 3u, p.out_c - 1u),
  ) * (p.in_c * khkw);
  let xb = blk.b * p.in_c * hw;
  let iw_first = vec4<i32>(i32(blk.col0 * p.stride_w) - i32(p.pad_w)) + vec4<i32>(0, 1, 2, 3) * i32(p.stride_w);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var kh = 0u; kh < p.k_h; kh++) {
    let ih = i32(blk.row * p.stride_h + kh) - i32(p.pad_h);
    if (ih < 0 || ih >= i32(p.in_h)) { continue; }
    let xrow = xb + u32(ih) * p.in_w;
    for (var kw = 0u; kw < p.k_w; kw++) {
      let iw = iw_first + vec4<i32>(i32(kw));
      let m = select(vec4<f32>(0.0), vec4<f32>(1.0), (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(p.in_w))));
      let xi = vec4<u32>(xrow) + vec4<u32>(clamp(iw, vec4<i32>(0), vec4<i32>(i32(p.in_w) - 1)));
      var wi = wrow + vec4<u32>(kh * p.k_w + kw);
      var xo = 0u;
      for (var ic = 0u; ic < p.in_c; ic++) {
        let xv = vec4<f32>(x[xi.x + xo], x[xi.y + xo], x[xi.z + xo], x[xi.w + xo]) * m;
        let wv = vec4<f32>(w[wi.x], w[wi.y], w[wi.z], w[wi.w]);
        a0 += wv * xv.x;
        a1 += wv * xv.y;
        a2 += wv * xv.z;
        a3 += wv * xv.w;
        xo += hw;
        wi += vec4<u32>(khkw);
      }
    }
  }
  return mat4x4<f32>(a0, a1, a2, a3);
}

fn write_forward(blk: Block, acc: mat4x4<f32>, bias4: vec4<f32>) {
  let p = params;
  for (var q = 0u; q < 4u; q++) {
    let oc = blk.c0 + q;
    if (oc >= p.out_c) { break; }
    let base = ((blk.b * p.out_c + oc) * p.out_h + blk.row) * p.out_w;
    for (var j = 0u; j < 4u; j++) {
      let ow = blk.col0 + j;
      if (ow >= p.out_w) { break; }
      var v = acc[j][q] + bias4[q];
      if (p.relu != 0u) { v = max(v, 0.0); }
      y[base + ow] = v;
    }
  }
}

@compute @workgroup_size(WG)
fn conv2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blk = block_of(linear_id(gid, nwg), params.out_c, params.out_h, params.out_w);
  if (!blk.valid) { return; }
  write_forward(blk, forward_block(blk), vec4<f32>(0.0));
}

@compute @workgroup_size(WG)
fn conv2d_forward_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blk = block_of(linear_id(gid, nwg), params.out_c, params.out_h, params.out_w);
  if (!blk.valid) { return; }
  let last = params.out_c - 1u;
  let b4 = vec4<f32>(bias[min(blk.c0, last)], bias[min(blk.c0 + 1u, last)], bias[min(blk.c0 + 2u, last)], bias[min(blk.c0 + 3u, last)]);
  write_forward(blk, forward_block(blk), b4);
}

// ---- gradient of the input ---------------------------------------------------------------------

// dx[b, ic, ih, iw] = sum over (oc, kh, kw) with oh*SH - PH + kh = ih and ow*SW - PW + kw = iw of
// dy[b, oc, oh, ow] * w[oc, ic, kh, kw]. Column j of the result is input column iw0 + j for the
// input channels ic0 .. ic0+3.
fn backward_input_block(blk: Block) -> mat4x4<f32> {
  let p = params;
  let khkw = p.k_h * p.k_w;
  let plane = p.out_h * p.out_w;
  let wrow = vec4<u32>(
    min(blk.c0, p.in_c - 1u),
    min(blk.c0 + 1u, p.in_c - 1u),
    min(blk.c0 + 2u, p.in_c - 1u),
    min(blk.c0 + 3u, p.in_c - 1u),
  ) * khkw;
  let oc_stride = p.in_c * khkw;
  let dyb = blk.b * p.out_c * plane;
  let sw = i32(p.stride_w);
  let ow_first = vec4<i32>(i32(blk.col0 + p.pad_w)) + vec4<i32>(0, 1, 2, 3);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var kh = 0u; kh < p.k_h; kh++) {
    let ohn = i32(blk.row + p.pad_h) - i32(kh);
    if (ohn < 0 || ohn % i32(p.stride_h) != 0) { continue; }
    let oh = u32(ohn) / p.stride_h;
    if (oh >= p.out_h) { continue; }
    let dyrow = dyb + oh * p.out_w;
    for (var kw = 0u; kw < p.k_w; kw++) {
      let own = ow_first - vec4<i32>(i32(kw));
      let ow = own / vec4<i32>(sw);
      let ok = (own >= vec4<i32>(0)) & (own % vec4<i32>(sw) == vec4<i32>(0)) & (ow < vec4<i32>(i32(p.out_w)));
      if (!any(ok)) { continue; }
      let m = select(vec4<f32>(0.0), vec4<f32>(1.0), ok);
      let di = vec4<u32>(dyrow) + vec4<u32>(clamp(ow, vec4<i32>(0), vec4<i32>(i32(p.out_w) - 1)));
      var wi = wrow + vec4<u32>(kh * p.k_w + kw);
      var o = 0u;
      for (var oc = 0u; oc < p.out_c; oc++) {
        let gv = vec4<f32>(dy[di.x + o], dy[di.y + o], dy[di.z + o], dy[di.w + o]) * m;
        let wv = vec4<f32>(w[wi.x], w[wi.y], w[wi.z], w[wi.w]);
        a0 += wv * gv.x;
        a1 += wv * gv.y;
        a2 += wv * gv.z;
        a3 += wv * gv.w;
        o += plane;
        wi += vec4<u32>(oc_stride);
      }
    }
  }
  return mat4x4<f32>(a0, a1, a2, a3);
}

@compute @workgroup_size(WG)
fn conv2d_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let blk = block_of(linear_id(gid, nwg), p.in_c, p.in_h, p.in_w);
  if (!blk.valid) { return; }
  let acc = backward_input_block(blk);
  for (var q = 0u; q < 4u; q++) {
    let ic = blk.c0 + q;
    if (ic >= p.in_c) { break; }
    let base = ((blk.b * p.in_c + ic) * p.in_h + blk.row) * p.in_w;
    for (var j = 0u; j < 4u; j++) {
      let iw = blk.col0 + j;
      if (iw >= p.in_w) { break; }
      dx[base + iw] = acc[j][q];
    }
  }
}

// ---- gradient of the weights (and bias) --------------------------------------------------------

var<workgroup> part_w: array<mat4x4<f32>, RW>;
var<workgroup> part_b: array<vec4<f32>, RW>;

// This invocation's share of one 4x4 block of dw [OC, IC*KH*KW] (rows oc0.., columns col0..):
// dw[oc, (ic, kh, kw)] = sum_{b, oh, ow} dy[b, oc, oh, ow] * x[b, ic, oh*SH - PH + kh, ow*SW - PW + kw].
// Rows (b, oh) of the sum are dealt out round-robin to the RW invocations; the partial block goes
// to part_w[lid] and the partial dy sums of the four channels to part_b[lid].
fn backward_weight_partial(lid: u32, oc0: u32, col0: u32) {
  let p = params;
  let khkw = p.k_h * p.k_w;
  let ncols = p.in_c * khkw;
  let hw = p.in_h * p.in_w;
  let plane = p.out_h * p.out_w;
  // The (ic, kh, kw) of each column (clamped to the last column; extra columns are not written).
  let col = min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(ncols - 1u));
  let ic = col / vec4<u32>(khkw);
  let kh = (col % vec4<u32>(khkw)) / vec4<u32>(p.k_w);
  let kw = col % vec4<u32>(p.k_w);
  let ocs = min(vec4<u32>(oc0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.out_c - 1u));
  let iw_off = vec4<i32>(kw) - vec4<i32>(i32(p.pad_w));
  let wmax = vec4<i32>(i32(p.in_w) - 1);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var s = vec4<f32>(0.0);
  let rows = p.batch * p.out_h;
  for (var r = lid; r < rows; r += RW) {
    let b = r / p.out_h;
    let oh = r % p.out_h;
    let ih = vec4<i32>(i32(oh * p.stride_h)) + vec4<i32>(kh) - vec4<i32>(i32(p.pad_h));
    let row_ok = (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(p.in_h)));
    let ihc = vec4<u32>(clamp(ih, vec4<i32>(0), vec4<i32>(i32(p.in_h) - 1)));
    let xrow = (vec4<u32>(b * p.in_c) + ic) * hw + ihc * p.in_w;
    let drow = (vec4<u32>(b * p.out_c) + ocs) * plane + vec4<u32>(oh * p.out_w);
    for (var ow = 0u; ow < p.out_w; ow++) {
      let iw = vec4<i32>(i32(ow * p.stride_w)) + iw_off;
      let ok = row_ok & (iw >= vec4<i32>(0)) & (iw <= wmax);
      let xi = xrow + vec4<u32>(clamp(iw, vec4<i32>(0), wmax));
      let xv = select(vec4<f32>(0.0), vec4<f32>(x[xi.x], x[xi.y], x[xi.z], x[xi.w]), ok);
      let gv = vec4<f32>(dy[drow.x + ow], dy[drow.y + ow], dy[drow.z + ow], dy[drow.w + ow]);
      a0 += gv * xv.x;
      a1 += gv * xv.y;
      a2 += gv * xv.z;
      a3 += gv * xv.w;
      s += gv;
    }
  }
  part_w[lid] = mat4x4<f32>(a0, a1, a2, a3);
  part_b[lid] = s;
}

// Pairwise tree over the RW partial blocks, in a fixed order; the total ends in slot 0.
fn reduce_partials(lid: u32) {
  for (var stride = RW / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lid < stride) {
      part_w[lid] = part_w[lid] + part_w[lid + stride];
      part_b[lid] = part_b[lid] + part_b[lid + stride];
    }
  }
}

struct WeightBlock {
  valid: bool,
  oc0: u32,
  col0: u32,
}

fn weight_block(wid: vec3<u32>, nwg: vec3<u32>) -> WeightBlock {
  let ncb = ceil_div(params.in_c * params.k_h * params.k_w, 4u);
  let id = wid.x + wid.y * nwg.x;
  var blk: WeightBlock;
  blk.col0 = (id % ncb) * 4u;
  blk.oc0 = (id / ncb) * 4u;
  blk.valid = blk.oc0 < params.out_c;
  return blk;
}

fn write_weight_block(blk: WeightBlock) {
  let ncols = params.in_c * params.k_h * params.k_w;
  let total = part_w[0];
  for (var q = 0u; q < 4u; q++) {
    let oc = blk.oc0 + q;
    if (oc >= params.out_c) { break; }
    for (var j = 0u; j < 4u; j++) {
      let c = blk.col0 + j;
      if (c >= ncols) { break; }
      dw[oc * ncols + c] = total[j][q];
    }
  }
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
      let sums = part_b[0];
      for (var q = 0u; q < 4u; q++) {
        if (blk.oc0 + q < params.out_c) { db[blk.oc0 + q] = sums[q]; }
      }
    }
  }
}
