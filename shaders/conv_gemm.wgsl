// 2-D convolution over NCHW tensors as implicit GEMMs (cross-correlation, as in PyTorch): the
// forward pass and both gradients are matrix products whose operands are gathered from the
// tensors as the product runs, with no im2col matrix in memory. Needs 'subgroups' (quad swaps).
//
// Why this shape: the tuned matmul's quad tiles (shaders/_quad_gemm.wgsl) with the load stage
// replaced by a gather. The gathered operand (op(A): x or dy) is the one the quad shares through
// swaps, so each gathered element is loaded once per quad; op(B) (the weights, or dy for the
// weight gradient) is read at plain offsets. Every lane walks k one element apart, decoding its
// own k into tensor coordinates with div_small (f32 arithmetic: integer division by a runtime
// value is emulated lane by lane on CPU adapters), so any channel count fills the steps of four.
//
// Geometry (shaders/_conv_params.wgsl): x [B, IC, H, W], w [OC, IC, KH, KW], y and dy
// [B, OC, OH, OW], stride (SH, SW), zero padding (PH, PW), OH = (H + 2 PH - KH) / SH + 1 (same for W).
//
// The three products (m: row of C, n: column, k: the summed index):
//   forward          y[b, n, oh, ow] = relu?(bias[n] + sum_k x[b, ic, oh SH - PH + kh, ow SW - PW + kw] w[n, k])
//                    m = (b, oh, ow): M = B OH OW; n < OC; k = (ic, kh, kw): K = IC KH KW.
//   backward_input   dx[b, n, ih, iw] (+)= sum_k dy[b, oc, oh, ow] w[oc, n, kh, kw] over the taps that
//                    reach (ih, iw): oh = (ih + PH - kh) / SH where that divides evenly (same for w).
//                    A transposed convolution in gather form (each dx element is summed by one lane,
//                    no atomics). Rows are grouped by phase class (ih + PH) mod SH, (iw + PW) mod SW:
//                    within a class the taps that divide evenly are the same for every row, so a
//                    tile of one class sums exactly its taps, k = (oc, kh, kw) over them (OC KH KW
//                    / SH SW on average); stride 1 has one class.
//   backward_weight  part[s, r, n] = sum over the positions p = (b, oh, ow) of split s of
//                    x[b, ic, oh SH - PH + kh, ow SW - PW + kw] dy[b, n, oh, ow], r = (ic, kh, kw) < IC KH KW,
//                    and part[s, IC KH KW, n] = sum of dy[b, n, oh, ow] (the bias gradient, summed
//                    alongside). The positions B OH OW are cut into S splits (split-K: the weight
//                    gradient is a small matrix with a long k), then backward_weight_reduce adds
//                    the S partial sums in a fixed order: dw[n, r] (+)= sum_s part[s, r, n], and
//                    db[n] (+)= sum_s part[s, IC KH KW, n]. Deterministic.
//
// Entries and bindings (params is the included struct; the rest are array<f32>):
//   conv_gemm_forward                 x, w, bias [OC] (read when HAS_BIAS), y      params.relu: ReLU
//   conv_gemm_backward_input          dy, w, dx
//   conv_gemm_backward_weight         x, dy, part [S, IC KH KW + 1, OC]
//   conv_gemm_backward_weight_reduce  part, dw [OC, IC, KH, KW], db [OC] (written when HAS_BIAS)
// Override constants: WG (invocations per workgroup, a multiple of 4), RB and CB (the tile, see
// shaders/_quad_gemm.wgsl), HAS_BIAS, PLANE_CHECK (below), and ACCUM: when true, the gradient
// entries (backward_input, backward_weight_reduce) add their result to what dx, dw and db hold
// instead of overwriting it (out = out + result).
//
// Dispatch geometry: quads of 4 consecutive invocations each compute one 4 RB x 16 CB tile of C,
// tiles numbered row-major over ceil(M / 4 RB) x ceil(N / 16 CB) (N = OC, or IC for backward_input).
//   forward, backward_input: 1-D, 4 invocations per tile, split over x and y as by grid1d (the
//     kernel linearises with num_workgroups). backward_input numbers the tiles of each phase
//     class in turn (class (0, 0) first), each class's rows (b, i, j) row-major.
//   backward_weight: x covers the tiles of dw viewed [IC KH KW, OC] (4 invocations each), y is the
//     split s (S = num_workgroups.y); split s sums positions [s L, s L + L), L = ceil(B OH OW / S)
//     rounded up to a multiple of 4.
//   backward_weight_reduce: 1-D, one invocation per element of part's [IC KH KW + 1, OC], grid1d.
// Quads past the last tile (the grid rounded up to whole workgroups) return at once.
// Any sizes >= 1 work: loads read in-range addresses (0 where an element lies off its plane) and
// select zero there and past the end of k; rows past the end are clamped and never written. Index
// arithmetic divides with div_small, exact below 2^22: the wrapper checks K, OC KH KW, and
// OH OW plus L, against that; the planes (H W, OH OW) plus a tile's rows stay below it too.

enable subgroups;
// Quads run the swaps under loop bounds that vary per tile (backward_input's classes) but never
// within a quad: every lane of a quad computes the same tile.
diagnostic(off, subgroup_uniformity);

#include "_conv_params.wgsl"
#include "_quad_gemm.wgsl"

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> part: array<f32>;
@group(0) @binding(8) var<storage, read_write> dw: array<f32>;
@group(0) @binding(9) var<storage, read_write> db: array<f32>;

override WG: u32 = 32u;
override HAS_BIAS: bool = false;
override ACCUM: bool = false;
// Whether a gathered element can fall off its plane (into the padding, or past the last window):
// false lets the wrapper drop the test where the geometry rules it out (no padding, and for the
// input gradient windows that tile the input), the common case of 1x1 projections and patch
// embeddings.
override PLANE_CHECK: bool = true;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// ---- gathering op(A) ---------------------------------------------------------------------------
// Every op(A) element is a tensor element at (row's corner) + (k's offset), on a 2-D plane where
// the row sits at (rh, rw) and k moves it by (dh, dw); zero where that falls off the plane.

// Four rows of op(A): the element offset of their corner (signed: it may lie in the padding),
// their coordinates on the plane, and where their results go (the offset of channel 0 in y or dx).
// Rows are decoded once per tile: the tile's first row with integer divisions, the others from
// it with div_small, whose operands stay below the plane's size plus a tile's rows.
struct RowBlock { corner: vec4<i32>, rh: vec4<i32>, rw: vec4<i32>, out: vec4<u32> }

// The lane's k: offset added to the corner, and the move on the plane.
struct KCoord { off: i32, dh: i32, dw: i32 }

// Element offsets of the four rows at k (0 off the plane), and which lie on it. One unsigned
// compare per axis tests 0 <= i < size.
struct Gather { at: vec4<u32>, ok: vec4<bool> }

fn gather(r: RowBlock, k: KCoord, valid: bool, height: u32, width: u32) -> Gather {
  var ok = vec4<bool>(valid);
  if (PLANE_CHECK) { ok &= (vec4<u32>(r.rh + k.dh) < vec4<u32>(height)) & (vec4<u32>(r.rw + k.dw) < vec4<u32>(width)); }
  return Gather(select(vec4<u32>(0u), vec4<u32>(r.corner + k.off), ok), ok);
}

fn a_x(r: RowBlock, k: KCoord, valid: bool) -> mat4x4<f32> {
  let g = gather(r, k, valid, params.in_h, params.in_w);
  return spread(select(vec4<f32>(0.0), vec4<f32>(x[g.at.x], x[g.at.y], x[g.at.z], x[g.at.w]), g.ok));
}

fn a_dy(r: RowBlock, k: KCoord, valid: bool) -> mat4x4<f32> {
  let g = gather(r, k, valid, params.out_h, params.out_w);
  return spread(select(vec4<f32>(0.0), vec4<f32>(dy[g.at.x], dy[g.at.y], dy[g.at.z], dy[g.at.w]), g.ok));
}

fn blocks_x(rows: ptr<function, array<RowBlock, 8>>, k: KCoord, valid: bool) -> ABlocks {
  var a: ABlocks;
  a.a0 = a_x((*rows)[0], k, valid);
  if (RB > 1u) { a.a1 = a_x((*rows)[1], k, valid); }
  if (RB > 2u) { a.a2 = a_x((*rows)[2], k, valid); }
  if (RB > 3u) { a.a3 = a_x((*rows)[3], k, valid); }
  if (RB > 4u) { a.a4 = a_x((*rows)[4], k, valid); }
  if (RB > 5u) { a.a5 = a_x((*rows)[5], k, valid); }
  if (RB > 6u) { a.a6 = a_x((*rows)[6], k, valid); }
  if (RB > 7u) { a.a7 = a_x((*rows)[7], k, valid); }
  return a;
}

fn blocks_dy(rows: ptr<function, array<RowBlock, 8>>, k: KCoord, valid: bool) -> ABlocks {
  var a: ABlocks;
  a.a0 = a_dy((*rows)[0], k, valid);
  if (RB > 1u) { a.a1 = a_dy((*rows)[1], k, valid); }
  if (RB > 2u) { a.a2 = a_dy((*rows)[2], k, valid); }
  if (RB > 3u) { a.a3 = a_dy((*rows)[3], k, valid); }
  if (RB > 4u) { a.a4 = a_dy((*rows)[4], k, valid); }
  if (RB > 5u) { a.a5 = a_dy((*rows)[5], k, valid); }
  if (RB > 6u) { a.a6 = a_dy((*rows)[6], k, valid); }
  if (RB > 7u) { a.a7 = a_dy((*rows)[7], k, valid); }
  return a;
}

// ---- op(B) blocks ------------------------------------------------------------------------------

// Offsets of this lane's four interleaved columns of each column block: column n at n * stride,
// clamped to the last column (clamped columns are computed and never written).
fn col_offsets(c0: u32, n: u32, stride: u32) -> array<vec4<u32>, 4> {
  let last = vec4<u32>(n - 1u);
  let c = vec4<u32>(c0) + vec4<u32>(0u, 4u, 8u, 12u);
  return array<vec4<u32>, 4>(min(c, last) * stride, min(c + 16u, last) * stride,
                             min(c + 32u, last) * stride, min(c + 48u, last) * stride);
}

// Column s: src[cols + o[s]], op(B) at k + (lane ^ s) when o = quad_u32(the lane's k offset).
fn w_block(o: vec4<u32>, c: vec4<u32>) -> mat4x4<f32> {
  return mat4x4<f32>(vec4<f32>(w[c.x + o.x], w[c.y + o.x], w[c.z + o.x], w[c.w + o.x]),
                     vec4<f32>(w[c.x + o.y], w[c.y + o.y], w[c.z + o.y], w[c.w + o.y]),
                     vec4<f32>(w[c.x + o.z], w[c.y + o.z], w[c.z + o.z], w[c.w + o.z]),
                     vec4<f32>(w[c.x + o.w], w[c.y + o.w], w[c.z + o.w], w[c.w + o.w]));
}

fn dy_block(o: vec4<u32>, c: vec4<u32>) -> mat4x4<f32> {
  return mat4x4<f32>(vec4<f32>(dy[c.x + o.x], dy[c.y + o.x], dy[c.z + o.x], dy[c.w + o.x]),
                     vec4<f32>(dy[c.x + o.y], dy[c.y + o.y], dy[c.z + o.y], dy[c.w + o.y]),
                     vec4<f32>(dy[c.x + o.z], dy[c.y + o.z], dy[c.z + o.z], dy[c.w + o.z]),
                     vec4<f32>(dy[c.x + o.w], dy[c.y + o.w], dy[c.z + o.w], dy[c.w + o.w]));
}

// The op(B) blocks of one step of four k from the weights, for each column block.
fn w_blocks(o: vec4<u32>, cols: array<vec4<u32>, 4>) -> array<mat4x4<f32>, 4> {
  var b: array<mat4x4<f32>, 4>;
  b[0] = w_block(o, cols[0]);
  if (CB > 1u) { b[1] = w_block(o, cols[1]); }
  if (CB > 2u) {
    b[2] = w_block(o, cols[2]);
    b[3] = w_block(o, cols[3]);
  }
  return b;
}

fn dy_blocks(o: vec4<u32>, cols: array<vec4<u32>, 4>) -> array<mat4x4<f32>, 4> {
  var b: array<mat4x4<f32>, 4>;
  b[0] = dy_block(o, cols[0]);
  if (CB > 1u) { b[1] = dy_block(o, cols[1]); }
  if (CB > 2u) {
    b[2] = dy_block(o, cols[2]);
    b[3] = dy_block(o, cols[3]);
  }
  return b;
}

// ---- forward -----------------------------------------------------------------------------------

// The tile's output positions m = (b, oh, ow): their window's corner in x and their offset in y.
// Rows past the last position read the last image and are never written.
fn forward_rows(r0: u32) -> array<RowBlock, 8> {
  let p = params;
  let ohw = p.out_h * p.out_w;
  let b0 = r0 / ohw;
  let pos0 = r0 - b0 * ohw;
  let inv_ohw = 1.0 / f32(ohw);
  let inv_ow = 1.0 / f32(p.out_w);
  var rows: array<RowBlock, 8>;
  for (var i = 0u; i < RB; i++) {
    let n = vec4<u32>(pos0 + 4u * i) + LANES;
    let q = div_small4(n, ohw, inv_ohw);
    let b = min(vec4<u32>(b0) + q, vec4<u32>(p.batch - 1u));
    let pos = n - q * ohw;
    let oh = div_small4(pos, p.out_w, inv_ow);
    let ow = pos - oh * p.out_w;
    let ih = vec4<i32>(oh * p.stride_h) - i32(p.pad_h);
    let iw = vec4<i32>(ow * p.stride_w) - i32(p.pad_w);
    let corner = vec4<i32>(b * (p.in_c * p.in_h * p.in_w)) + ih * i32(p.in_w) + iw;
    rows[i] = RowBlock(corner, ih, iw, b * (p.out_c * ohw) + pos);
  }
  return rows;
}

fn forward_tile(t: QuadTile, rows: ptr<function, array<RowBlock, 8>>) -> Tile {
  let p = params;
  let khkw = p.k_h * p.k_w;
  let K = p.in_c * khkw;
  let cols = col_offsets(t.c0, p.out_c, K);
  let inv_khkw = 1.0 / f32(khkw);
  let inv_kw = 1.0 / f32(p.k_w);
  var tile: Tile;
  for (var k = 0u; k < K; k += 4u) {
    // The lane's k = (ic, kh, kw), in the weights' order.
    let kl = min(k + t.lane, K - 1u);
    let ic = div_small(kl, khkw, inv_khkw);
    let tap = kl - ic * khkw;
    let kh = div_small(tap, p.k_w, inv_kw);
    let kw = tap - kh * p.k_w;
    let kc = KCoord(i32(ic * p.in_h * p.in_w + kh * p.in_w + kw), i32(kh), i32(kw));
    mac(&tile, blocks_x(rows, kc, k + t.lane < K), w_blocks(quad_u32(kl), cols));
  }
  return tile;
}

fn activate(v: vec4<f32>, relu: bool) -> vec4<f32> {
  return select(v, max(v, vec4<f32>(0.0)), relu);
}

// y at the lane's four columns of a row (where ok).
fn store_y(at: vec4<u32>, v: vec4<f32>, ok: vec4<bool>) {
  if (ok.x) { y[at.x] = v.x; }
  if (ok.y) { y[at.y] = v.y; }
  if (ok.z) { y[at.z] = v.z; }
  if (ok.w) { y[at.w] = v.w; }
}

// The epilogue stores block by block, each with 16 store sites of constant indices: indexing the
// tile per element costs a per-lane gather from private memory for every value.
fn forward_store(t: QuadTile, rows: ptr<function, array<RowBlock, 8>>, tile: Tile) {
  let p = params;
  let ohw = p.out_h * p.out_w;
  let M = p.batch * ohw;
  var blocks = tile_blocks(tile);
  for (var cb = 0u; cb < CB; cb++) {
    let n = vec4<u32>(t.c0 + 16u * cb) + vec4<u32>(0u, 4u, 8u, 12u);
    let col_ok = n < vec4<u32>(p.out_c);
    var b = vec4<f32>(0.0);
    if (HAS_BIAS) {
      let nc = min(n, vec4<u32>(p.out_c - 1u));
      b = vec4<f32>(bias[nc.x], bias[nc.y], bias[nc.z], bias[nc.w]);
    }
    let relu = p.relu != 0u;
    let col = n * ohw;
    for (var rb = 0u; rb < RB; rb++) {
      let out = (*rows)[rb].out;
      let row_ok = vec4<u32>(t.r0 + 4u * rb) + LANES < vec4<u32>(M);
      let m = blocks[4u * rb + cb];
      store_y(col + out.x, activate(m[0] + b, relu), col_ok & vec4<bool>(row_ok.x));
      store_y(col + out.y, activate(m[1] + b, relu), col_ok & vec4<bool>(row_ok.y));
      store_y(col + out.z, activate(m[2] + b, relu), col_ok & vec4<bool>(row_ok.z));
      store_y(col + out.w, activate(m[3] + b, relu), col_ok & vec4<bool>(row_ok.w));
    }
  }
}

@compute @workgroup_size(WG)
fn conv_gemm_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(subgroup_invocation_id) sid: u32) {
  let t = quad_tile(linear_id(gid, nwg) / 4u, (params.out_c + 16u * CB - 1u) / (16u * CB), sid % 4u);
  // Quads past the last tile (the grid's rounding) leave at once, whole: their lanes share the tile.
  if (t.r0 >= params.batch * params.out_h * params.out_w) { return; }
  var rows = forward_rows(t.r0);
  forward_store(t, &rows, forward_tile(t, &rows));
}

// ---- gradient of the input ---------------------------------------------------------------------

// One phase class of input rows and columns: the input rows ih with (ih + PH) mod SH = ch are
// ih0, ih0 + SH, ... (hc of them); the taps that reach them are kh = ch, ch + SH, ... (nkh of
// them), and tap ch + SH j reads output row qh0 + i - j for input row ih0 + SH i. Same for columns.
struct PhaseClass {
  valid: bool,
  ch: u32, cw: u32,
  ih0: u32, iw0: u32,
  hc: u32, wc: u32,
  nkh: u32, nkw: u32,
  qh0: i32, qw0: i32,
  // The class's first tile, and its row count B hc wc.
  first_tile: u32,
  rows: u32,
}

// The class of tile `tile` (classes in order, (0, 0) first, each ceil(rows / 4 RB) x tiles_n
// tiles); valid is false past the last tile. Divisions by the stride use div_small.
fn class_of_tile(tile: u32, tiles_n: u32) -> PhaseClass {
  let p = params;
  let inv_sh = 1.0 / f32(p.stride_h);
  let inv_sw = 1.0 / f32(p.stride_w);
  let ph = p.pad_h - div_small(p.pad_h, p.stride_h, inv_sh) * p.stride_h;
  let pw = p.pad_w - div_small(p.pad_w, p.stride_w, inv_sw) * p.stride_w;
  var pc: PhaseClass;
  pc.valid = false;
  var first = 0u;
  for (var ch = 0u; ch < p.stride_h; ch++) {
    let h0 = ch + p.stride_h - ph;
    let ih0 = select(h0, h0 - p.stride_h, h0 >= p.stride_h);
    let hc = select(0u, div_small(p.in_h - ih0 + p.stride_h - 1u, p.stride_h, inv_sh), p.in_h > ih0);
    for (var cw = 0u; cw < p.stride_w; cw++) {
      let w0 = cw + p.stride_w - pw;
      let iw0 = select(w0, w0 - p.stride_w, w0 >= p.stride_w);
      let wc = select(0u, div_small(p.in_w - iw0 + p.stride_w - 1u, p.stride_w, inv_sw), p.in_w > iw0);
      let rows = p.batch * hc * wc;
      let tiles = (rows + 4u * RB - 1u) / (4u * RB) * tiles_n;
      if (!pc.valid && tile < first + tiles) {
        pc = PhaseClass(true, ch, cw, ih0, iw0, hc, wc,
                        select(0u, div_small(p.k_h - ch + p.stride_h - 1u, p.stride_h, inv_sh), p.k_h > ch),
                        select(0u, div_small(p.k_w - cw + p.stride_w - 1u, p.stride_w, inv_sw), p.k_w > cw),
                        i32(div_small(ih0 + p.pad_h - ch, p.stride_h, inv_sh)),
                        i32(div_small(iw0 + p.pad_w - cw, p.stride_w, inv_sw)),
                        first, rows);
      }
      first += tiles;
    }
  }
  return pc;
}

// The tile's rows of class pc, (b, i, j) row-major: their corner in dy and their offset in dx.
fn input_rows(pc: PhaseClass, r0: u32) -> array<RowBlock, 8> {
  let p = params;
  let per_image = max(pc.hc * pc.wc, 1u);
  let b0 = r0 / per_image;
  let pos0 = r0 - b0 * per_image;
  let inv_image = 1.0 / f32(per_image);
  let inv_wc = 1.0 / f32(max(pc.wc, 1u));
  var rows: array<RowBlock, 8>;
  for (var r = 0u; r < RB; r++) {
    let n = vec4<u32>(pos0 + 4u * r) + LANES;
    let q = div_small4(n, per_image, inv_image);
    let b = min(vec4<u32>(b0) + q, vec4<u32>(p.batch - 1u));
    let pos = n - q * per_image;
    let i = div_small4(pos, pc.wc, inv_wc);
    let j = pos - i * pc.wc;
    let rh = vec4<i32>(i) + pc.qh0;
    let rw = vec4<i32>(j) + pc.qw0;
    let corner = vec4<i32>(b * (p.out_c * p.out_h * p.out_w)) + rh * i32(p.out_w) + rw;
    let out = b * (p.in_c * p.in_h * p.in_w) + (pc.ih0 + p.stride_h * i) * p.in_w + pc.iw0 + p.stride_w * j;
    rows[r] = RowBlock(corner, rh, rw, out);
  }
  return rows;
}

fn backward_input_tile(t: QuadTile, pc: PhaseClass, rows: ptr<function, array<RowBlock, 8>>) -> Tile {
  let p = params;
  let khkw = p.k_h * p.k_w;
  let cols = col_offsets(t.c0, p.in_c, khkw);
  let taps = pc.nkh * pc.nkw;
  let K = p.out_c * taps;
  let inv_taps = 1.0 / f32(max(taps, 1u));
  let inv_nkw = 1.0 / f32(max(pc.nkw, 1u));
  let ohw = p.out_h * p.out_w;
  var tile: Tile;
  for (var k = 0u; k < K; k += 4u) {
    // The lane's k = (oc, jh, jw): tap (ch + SH jh, cw + SW jw), output (qh - jh, qw - jw).
    let kl = min(k + t.lane, K - 1u);
    let oc = div_small(kl, taps, inv_taps);
    let jt = kl - oc * taps;
    let jh = div_small(jt, pc.nkw, inv_nkw);
    let jw = jt - jh * pc.nkw;
    let kc = KCoord(i32(oc * ohw) - i32(jh * p.out_w + jw), -i32(jh), -i32(jw));
    let w_off = oc * p.in_c * khkw + (pc.ch + p.stride_h * jh) * p.k_w + pc.cw + p.stride_w * jw;
    mac(&tile, blocks_dy(rows, kc, k + t.lane < K), w_blocks(quad_u32(w_off), cols));
  }
  return tile;
}

fn store_dx(at: vec4<u32>, v: vec4<f32>, ok: vec4<bool>) {
  if (ACCUM) {
    if (ok.x) { dx[at.x] = dx[at.x] + v.x; }
    if (ok.y) { dx[at.y] = dx[at.y] + v.y; }
    if (ok.z) { dx[at.z] = dx[at.z] + v.z; }
    if (ok.w) { dx[at.w] = dx[at.w] + v.w; }
  } else {
    if (ok.x) { dx[at.x] = v.x; }
    if (ok.y) { dx[at.y] = v.y; }
    if (ok.z) { dx[at.z] = v.z; }
    if (ok.w) { dx[at.w] = v.w; }
  }
}

fn backward_input_zeros(t: QuadTile, pc: PhaseClass, rows: ptr<function, array<RowBlock, 8>>) {
  let p = params;
  let hw = p.in_h * p.in_w;
  for (var cb = 0u; cb < CB; cb++) {
    let n = vec4<u32>(t.c0 + 16u * cb) + vec4<u32>(0u, 4u, 8u, 12u);
    let col_ok = n < vec4<u32>(p.in_c);
    let col = n * hw;
    for (var rb = 0u; rb < RB; rb++) {
      let out = (*rows)[rb].out;
      let row_ok = vec4<u32>(t.r0 + 4u * rb) + LANES < vec4<u32>(pc.rows);
      store_dx(col + out.x, vec4<f32>(0.0), col_ok & vec4<bool>(row_ok.x));
      store_dx(col + out.y, vec4<f32>(0.0), col_ok & vec4<bool>(row_ok.y));
      store_dx(col + out.z, vec4<f32>(0.0), col_ok & vec4<bool>(row_ok.z));
      store_dx(col + out.w, vec4<f32>(0.0), col_ok & vec4<bool>(row_ok.w));
    }
  }
}

fn backward_input_store(t: QuadTile, pc: PhaseClass, rows: ptr<function, array<RowBlock, 8>>, tile: Tile) {
  let p = params;
  let hw = p.in_h * p.in_w;
  var blocks = tile_blocks(tile);
  for (var cb = 0u; cb < CB; cb++) {
    let n = vec4<u32>(t.c0 + 16u * cb) + vec4<u32>(0u, 4u, 8u, 12u);
    let col_ok = n < vec4<u32>(p.in_c);
    let col = n * hw;
    for (var rb = 0u; rb < RB; rb++) {
      let out = (*rows)[rb].out;
      let row_ok = vec4<u32>(t.r0 + 4u * rb) + LANES < vec4<u32>(pc.rows);
      let m = blocks[4u * rb + cb];
      store_dx(col + out.x, m[0], col_ok & vec4<bool>(row_ok.x));
      store_dx(col + out.y, m[1], col_ok & vec4<bool>(row_ok.y));
      store_dx(col + out.z, m[2], col_ok & vec4<bool>(row_ok.z));
      store_dx(col + out.w, m[3], col_ok & vec4<bool>(row_ok.w));
    }
  }
}

@compute @workgroup_size(WG)
fn conv_gemm_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(subgroup_invocation_id) sid: u32) {
  let tiles_n = (params.in_c + 16u * CB - 1u) / (16u * CB);
  let tile = linear_id(gid, nwg) / 4u;
  let pc = class_of_tile(tile, tiles_n);
  if (!pc.valid) { return; }
  // A class no tap reaches (a stride larger than the kernel) holds zeros: nothing to add with ACCUM.
  let reached = pc.nkh * pc.nkw > 0u;
  if (ACCUM && !reached) { return; }
  let t = quad_tile(tile - pc.first_tile, tiles_n, sid % 4u);
  var rows = input_rows(pc, t.r0);
  if (reached) {
    backward_input_store(t, pc, &rows, backward_input_tile(t, pc, &rows));
  } else {
    backward_input_zeros(t, pc, &rows);
  }
}

// ---- gradient of the weights and bias ----------------------------------------------------------

// The tile's rows of dw viewed [IC KH KW, OC]: r = (ic, kh, kw) reads x at channel ic, shifted by
// (kh - PH, kw - PW) from each output position's (oh SH, ow SW). Rows past the last are clamped
// to the last channel and never written.
fn weight_rows(r0: u32) -> array<RowBlock, 8> {
  let p = params;
  let khkw = p.k_h * p.k_w;
  let ic0 = r0 / khkw;
  let tap0 = r0 - ic0 * khkw;
  let inv_khkw = 1.0 / f32(khkw);
  let inv_kw = 1.0 / f32(p.k_w);
  var rows: array<RowBlock, 8>;
  for (var i = 0u; i < RB; i++) {
    let n = vec4<u32>(tap0 + 4u * i) + LANES;
    let q = div_small4(n, khkw, inv_khkw);
    let ic = min(vec4<u32>(ic0) + q, vec4<u32>(p.in_c - 1u));
    let tap = n - q * khkw;
    let kh = div_small4(tap, p.k_w, inv_kw);
    let kw = tap - kh * p.k_w;
    let rh = vec4<i32>(kh) - i32(p.pad_h);
    let rw = vec4<i32>(kw) - i32(p.pad_w);
    rows[i] = RowBlock(vec4<i32>(ic * (p.in_h * p.in_w)) + rh * i32(p.in_w) + rw, rh, rw, vec4<u32>(0u));
  }
  return rows;
}

// Positions [start, start + len) of split s of S.
struct Split { start: u32, len: u32 }

fn split_of(s: u32, S: u32) -> Split {
  let total = params.batch * params.out_h * params.out_w;
  let L = ((total + S - 1u) / S + 3u) / 4u * 4u;
  let start = min(s * L, total);
  return Split(start, min(L, total - start));
}

// A tile's sums and, per column block, the sums of dy over the same positions (the bias gradient).
struct WeightTile { t: Tile, bias_sums: array<vec4<f32>, 4> }

fn backward_weight_tile(t: QuadTile, sp: Split) -> WeightTile {
  let p = params;
  var rows = weight_rows(t.r0);
  let ohw = p.out_h * p.out_w;
  let cols = col_offsets(t.c0, p.out_c, ohw);
  // Positions are decoded relative to the split's first image, so that div_small's operands stay
  // below OH OW + L.
  let b0 = sp.start / ohw;
  let pos0 = sp.start - b0 * ohw;
  let inv_ohw = 1.0 / f32(ohw);
  let inv_ow = 1.0 / f32(p.out_w);
  let x_image = p.in_c * p.in_h * p.in_w;
  var tile: Tile;
  var bias_sums: array<vec4<f32>, 4>;
  for (var k = 0u; k < sp.len; k += 4u) {
    // The lane's k: position (b, oh, ow).
    let valid = k + t.lane < sp.len;
    let u = pos0 + min(k + t.lane, sp.len - 1u);
    let q = div_small(u, ohw, inv_ohw);
    let pos = u - q * ohw;
    let b = b0 + q;
    let oh = div_small(pos, p.out_w, inv_ow);
    let ih = oh * p.stride_h;
    let iw = (pos - oh * p.out_w) * p.stride_w;
    let kc = KCoord(i32(b * x_image + ih * p.in_w + iw), i32(ih), i32(iw));
    let bb = dy_blocks(quad_u32(b * p.out_c * ohw + pos), cols);
    mac(&tile, blocks_x(&rows, kc, valid), bb);
    if (HAS_BIAS) {
      // dy at positions past the split's end is a clamped copy: weight it 0 in the bias sums.
      let keep = quad_f32(select(0.0, 1.0, valid));
      bias_sums[0] += bb[0] * keep;
      if (CB > 1u) { bias_sums[1] += bb[1] * keep; }
      if (CB > 2u) {
        bias_sums[2] += bb[2] * keep;
        bias_sums[3] += bb[3] * keep;
      }
    }
  }
  return WeightTile(tile, bias_sums);
}

fn store_part(at: vec4<u32>, v: vec4<f32>, ok: vec4<bool>) {
  if (ok.x) { part[at.x] = v.x; }
  if (ok.y) { part[at.y] = v.y; }
  if (ok.z) { part[at.z] = v.z; }
  if (ok.w) { part[at.w] = v.w; }
}

// part[s, r, n] for r < IC KH KW; the tiles of the first row also write the bias sums at r = IC KH KW.
fn backward_weight_store(t: QuadTile, s: u32, wt: WeightTile) {
  let p = params;
  let R = p.in_c * p.k_h * p.k_w;
  let base = s * (R + 1u) * p.out_c;
  var blocks = tile_blocks(wt.t);
  for (var cb = 0u; cb < CB; cb++) {
    let n = vec4<u32>(t.c0 + 16u * cb) + vec4<u32>(0u, 4u, 8u, 12u);
    let col_ok = n < vec4<u32>(p.out_c);
    for (var rb = 0u; rb < RB; rb++) {
      let r = vec4<u32>(t.r0 + 4u * rb) + LANES;
      let row_ok = r < vec4<u32>(R);
      let out = vec4<u32>(base) + r * p.out_c;
      let m = blocks[4u * rb + cb];
      store_part(n + out.x, m[0], col_ok & vec4<bool>(row_ok.x));
      store_part(n + out.y, m[1], col_ok & vec4<bool>(row_ok.y));
      store_part(n + out.z, m[2], col_ok & vec4<bool>(row_ok.z));
      store_part(n + out.w, m[3], col_ok & vec4<bool>(row_ok.w));
    }
    if (HAS_BIAS && t.r0 == 0u) { store_part(n + base + R * p.out_c, wt.bias_sums[cb], col_ok); }
  }
}

@compute @workgroup_size(WG)
fn conv_gemm_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                             @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
  let t = quad_tile(gid.x / 4u, (params.out_c + 16u * CB - 1u) / (16u * CB), sid % 4u);
  if (t.r0 >= params.in_c * params.k_h * params.k_w) { return; }
  let sp = split_of(wid.y, nwg.y);
  backward_weight_store(t, wid.y, backward_weight_tile(t, sp));
}

@compute @workgroup_size(WG)
fn conv_gemm_backward_weight_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let R = p.in_c * p.k_h * p.k_w;
  let i = linear_id(gid, nwg);
  if (i >= (R + 1u) * p.out_c) { return; }
  // i = n (R + 1) + r: consecutive invocations write consecutive elements of dw.
  let n = i / (R + 1u);
  let r = i - n * (R + 1u);
  let stride = (R + 1u) * p.out_c;
  let S = arrayLength(&part) / stride;
  var sum = 0.0;
  for (var s = 0u; s < S; s++) { sum += part[s * stride + r * p.out_c + n]; }
  if (r < R) {
    let o = n * R + r;
    if (ACCUM) { dw[o] = dw[o] + sum; } else { dw[o] = sum; }
  } else if (HAS_BIAS) {
    if (ACCUM) { db[n] = db[n] + sum; } else { db[n] = sum; }
  }
}
