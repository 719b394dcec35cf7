// Matrix multiply with fused bias and activation, quad-cooperative variants (needs 'subgroups').
//
//   C[M, N] = act(op(A) · op(B) + bias)
//
// Same contract as shaders/matmul.wgsl (strided operands, batches along the grid's z, params,
// bindings, HAS_BIAS, ACT and ACCUM).
//
// Why this shape: on CPU implementations of WebGPU (SwiftShader) every storage-buffer load, from any
// address pattern, is a per-lane gather that costs as much as dozens of multiply-adds, and
// workgroup memory needs barriers that are slower still; loads are what to save. Four invocations
// of a quad therefore share the rows of op(A): each loads op(A) at a different k and the quad swaps
// hand the value to the other three, so one load feeds four lanes. Columns are interleaved over the
// quad (lane l owns columns l, l+4, l+8, ...) so every op(B) load is useful to exactly one lane.
// Per k, a quad tile of R rows and C columns then costs (R + C) / 4 loads per lane for R·C/4
// multiply-adds per lane: big tiles pay. Each invocation keeps its block of C in registers as 4x4
// matrices and folds four k per step with one matrix product per block.
//
// Bindings (f32):
//   params: { M, N, K, sam, sak, sbk, sbn: u32, alpha: f32, bsa, bsb, bsc: u32 }
//   a: (M*K or G*M*K)   b: (K*N or G*K*N)   c: (G*M*N) row-major [G, M, N]   bias: (N), read only when HAS_BIAS
// Entry points (rows x columns of C per invocation; a quad covers 4x the columns):
//   matmul_quad32x16: quad tile 32x64   matmul_quad32x8: quad tile 32x32   matmul_quad16x8: 16x32
// The epilogue loops over one store site: override constants do not remove dead code here, so an
// unrolled epilogue would compile every activation once per element (seconds of compile time).
// Dispatch: 1-D, WG invocations per workgroup (a multiple of 4), 4 invocations per quad tile,
// tiles numbered row-major over ceil(M / tile rows) x ceil(N / tile columns); split over x and y as
// by grid1d when needed (the kernel linearises with num_workgroups x and y); the matrices of a batch
// follow one another in that numbering (quad_tile), z is 1.
// Any M, N, K >= 1 work.
// Lanes of a quad are assumed to be 4 consecutive invocations (true of SwiftShader and common GPUs;
// the tuner checks a variant's result before choosing it).

enable subgroups;

#include "_matmul_common.wgsl"

override WG: u32 = 64u;

// Writes the invocation's blocks: blocks[r * col_blocks + h] holds rows r0 + 4r + i (its column i)
// at columns c0 + 16h + 4j (component j). One store site for every value, so that the epilogue
// (bias, activation) is compiled once rather than once per value.
fn store_tile(t: QuadTile, blocks: ptr<function, array<mat4x4<f32>, 32>>, row_blocks: u32, col_blocks: u32) {
  if (!t.live) { return; }
  for (var e = 0u; e < row_blocks * col_blocks * 16u; e++) {
    let blk = e / 16u;
    let i = (e / 4u) % 4u;
    let j = e % 4u;
    store_c(t.base.c, t.r0 + 4u * (blk / col_blocks) + i, t.c0 + 16u * (blk % col_blocks) + 4u * j, (*blocks)[blk][i][j]);
  }
}

// ---- operand blocks ----------------------------------------------------------------------------

// Element offsets in a of op(A) rows t.r0 + dr.. + 3 of the tile's matrix, clamped to the last row.
// The batch offset rides in here, so the k loops are the same as a 2-D product's.
fn a_rows(t: QuadTile, dr: u32) -> vec4<u32> {
  return min(vec4<u32>(t.r0 + dr) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.M - 1u)) * params.sam + vec4<u32>(t.base.a);
}

// Element offsets in b of op(B) columns c, c+4, c+8, c+12 (a lane's interleaved columns, c = t.c0 +
// dc) of the tile's matrix, clamped.
fn b_cols(t: QuadTile, dc: u32) -> vec4<u32> {
  return min(vec4<u32>(t.c0 + dc) + vec4<u32>(0u, 4u, 8u, 12u), vec4<u32>(params.N - 1u)) * params.sbn + vec4<u32>(t.base.b);
}

// op(A)[rows, k + (lane ^ s)] for s = 0..3, as the matrix whose column i is row i over s (so its
// math form is the transposed block). Each lane loads one k, k + lane (`ka` is its offset, `valid`
// whether it is < K), and the quad swaps hand every lane the other three: lane ^ 1 (X), lane ^ 2 (Y)
// and lane ^ 3 (diagonal). Swaps are register shuffles, far cheaper than loads or broadcasts.
fn a_block(rows: vec4<u32>, ka: u32, valid: bool) -> mat4x4<f32> {
  let v = select(vec4<f32>(0.0), vec4<f32>(a[rows.x + ka], a[rows.y + ka], a[rows.z + ka], a[rows.w + ka]), valid);
  return transpose(mat4x4<f32>(v, quadSwapX(v), quadSwapY(v), quadSwapDiagonal(v)));
}

// op(B)[k, cols], zero when k >= K.
fn b_row(k: u32, cols: vec4<u32>) -> vec4<f32> {
  let o = min(k, params.K - 1u) * params.sbk;
  let v = vec4<f32>(b[o + cols.x], b[o + cols.y], b[o + cols.z], b[o + cols.w]);
  return select(vec4<f32>(0.0), v, k < params.K);
}

// The matrix whose column s is op(B)[k + (lane ^ s), cols]: the rows that pair with a_block's
// columns. For an accumulator whose column i is a row of C at this lane's columns,
// acc += b_block * a_block adds sum over the four k of op(A)[row i, k] op(B)[k, cols].
fn b_block(k: u32, lane: u32, cols: vec4<u32>) -> mat4x4<f32> {
  return mat4x4<f32>(b_row(k + lane, cols), b_row(k + (lane ^ 1u), cols), b_row(k + (lane ^ 2u), cols), b_row(k + (lane ^ 3u), cols));
}

// Which tile this quad computes, of which matrix of the batch, and which lane of it this invocation
// is; `live` is false for the quads that rounding the grid up to whole workgroups adds past the
// last matrix (they compute the last matrix's tile again and store nothing).
struct QuadTile { r0: u32, c0: u32, lane: u32, base: BatchBase, live: bool }

// The quads of every matrix of the batch are numbered one after the other (matrix g's tiles
// g * tiles .. g * tiles + tiles - 1, row-major), so that a workgroup can span several small
// matrices: on CPU adapters a workgroup costs a fixed overhead, and a batch of small products
// (attention's) would otherwise pay it once per matrix.
fn quad_tile(gid: vec3<u32>, nwg: vec3<u32>, sid: u32, tile_rows: u32, tile_cols: u32) -> QuadTile {
  let q = (gid.x + gid.y * nwg.x * WG) / 4u;
  let tiles_n = (params.N + tile_cols - 1u) / tile_cols;
  let tiles = ((params.M + tile_rows - 1u) / tile_rows) * tiles_n;
  let g = q / tiles;
  let t = q % tiles;
  let lane = sid % 4u;
  return QuadTile((t / tiles_n) * tile_rows, (t % tiles_n) * tile_cols + lane, lane, batch_base(min(g, params.G - 1u)), g < params.G);
}

// ---- quad32x16: 32 rows x 64 columns per quad tile ---------------------------------------------

// Rows t.r0..t.r0+31 at columns t.c0 + 4j (j < 16): block r * 4 + h of the result holds rows
// t.r0 + 4r.. at columns t.c0 + 16h + 4j (see store_tile).
fn tile_32x16(t: QuadTile) -> array<mat4x4<f32>, 32> {
  let ar0 = a_rows(t, 0u);    let ar1 = a_rows(t, 4u);
  let ar2 = a_rows(t, 8u);    let ar3 = a_rows(t, 12u);
  let ar4 = a_rows(t, 16u);   let ar5 = a_rows(t, 20u);
  let ar6 = a_rows(t, 24u);   let ar7 = a_rows(t, 28u);
  let bc0 = b_cols(t, 0u);    let bc1 = b_cols(t, 16u);
  let bc2 = b_cols(t, 32u);   let bc3 = b_cols(t, 48u);
  var acc00 = mat4x4<f32>(); var acc01 = mat4x4<f32>(); var acc02 = mat4x4<f32>(); var acc03 = mat4x4<f32>();
  var acc10 = mat4x4<f32>(); var acc11 = mat4x4<f32>(); var acc12 = mat4x4<f32>(); var acc13 = mat4x4<f32>();
  var acc20 = mat4x4<f32>(); var acc21 = mat4x4<f32>(); var acc22 = mat4x4<f32>(); var acc23 = mat4x4<f32>();
  var acc30 = mat4x4<f32>(); var acc31 = mat4x4<f32>(); var acc32 = mat4x4<f32>(); var acc33 = mat4x4<f32>();
  var acc40 = mat4x4<f32>(); var acc41 = mat4x4<f32>(); var acc42 = mat4x4<f32>(); var acc43 = mat4x4<f32>();
  var acc50 = mat4x4<f32>(); var acc51 = mat4x4<f32>(); var acc52 = mat4x4<f32>(); var acc53 = mat4x4<f32>();
  var acc60 = mat4x4<f32>(); var acc61 = mat4x4<f32>(); var acc62 = mat4x4<f32>(); var acc63 = mat4x4<f32>();
  var acc70 = mat4x4<f32>(); var acc71 = mat4x4<f32>(); var acc72 = mat4x4<f32>(); var acc73 = mat4x4<f32>();
  for (var k = 0u; k < params.K; k += 4u) {
    let kl = k + t.lane;
    let ka = min(kl, params.K - 1u) * params.sak;
    let valid = kl < params.K;
    let b0 = b_block(k, t.lane, bc0);
    let b1 = b_block(k, t.lane, bc1);
    let b2 = b_block(k, t.lane, bc2);
    let b3 = b_block(k, t.lane, bc3);
    var ab = a_block(ar0, ka, valid);  acc00 += b0 * ab;  acc01 += b1 * ab;  acc02 += b2 * ab;  acc03 += b3 * ab;
    ab = a_block(ar1, ka, valid);      acc10 += b0 * ab;  acc11 += b1 * ab;  acc12 += b2 * ab;  acc13 += b3 * ab;
    ab = a_block(ar2, ka, valid);      acc20 += b0 * ab;  acc21 += b1 * ab;  acc22 += b2 * ab;  acc23 += b3 * ab;
    ab = a_block(ar3, ka, valid);      acc30 += b0 * ab;  acc31 += b1 * ab;  acc32 += b2 * ab;  acc33 += b3 * ab;
    ab = a_block(ar4, ka, valid);      acc40 += b0 * ab;  acc41 += b1 * ab;  acc42 += b2 * ab;  acc43 += b3 * ab;
    ab = a_block(ar5, ka, valid);      acc50 += b0 * ab;  acc51 += b1 * ab;  acc52 += b2 * ab;  acc53 += b3 * ab;
    ab = a_block(ar6, ka, valid);      acc60 += b0 * ab;  acc61 += b1 * ab;  acc62 += b2 * ab;  acc63 += b3 * ab;
    ab = a_block(ar7, ka, valid);      acc70 += b0 * ab;  acc71 += b1 * ab;  acc72 += b2 * ab;  acc73 += b3 * ab;
  }
  var out = array<mat4x4<f32>, 32>();
  out[0] = acc00; out[1] = acc01; out[2] = acc02; out[3] = acc03;
  out[4] = acc10; out[5] = acc11; out[6] = acc12; out[7] = acc13;
  out[8] = acc20; out[9] = acc21; out[10] = acc22; out[11] = acc23;
  out[12] = acc30; out[13] = acc31; out[14] = acc32; out[15] = acc33;
  out[16] = acc40; out[17] = acc41; out[18] = acc42; out[19] = acc43;
  out[20] = acc50; out[21] = acc51; out[22] = acc52; out[23] = acc53;
  out[24] = acc60; out[25] = acc61; out[26] = acc62; out[27] = acc63;
  out[28] = acc70; out[29] = acc71; out[30] = acc72; out[31] = acc73;
  return out;
}

@compute @workgroup_size(WG)
fn matmul_quad32x16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(subgroup_invocation_id) sid: u32) {
  let t = quad_tile(gid, nwg, sid, 32u, 64u);
  var out = tile_32x16(t);
  store_tile(t, &out, 8u, 4u);
}


// ---- quad32x8: 32 rows x 32 columns per quad tile ----------------------------------------------

// Rows t.r0..t.r0+31 at columns t.c0 + 4j (j < 8): block r * 2 + h of the result holds rows
// t.r0 + 4r.. at columns t.c0 + 16h + 4j (see store_tile).
fn tile_32x8(t: QuadTile) -> array<mat4x4<f32>, 32> {
  let ar0 = a_rows(t, 0u);    let ar1 = a_rows(t, 4u);
  let ar2 = a_rows(t, 8u);    let ar3 = a_rows(t, 12u);
  let ar4 = a_rows(t, 16u);   let ar5 = a_rows(t, 20u);
  let ar6 = a_rows(t, 24u);   let ar7 = a_rows(t, 28u);
  let bc0 = b_cols(t, 0u);    let bc1 = b_cols(t, 16u);
  var acc00 = mat4x4<f32>(); var acc01 = mat4x4<f32>();
  var acc10 = mat4x4<f32>(); var acc11 = mat4x4<f32>();
  var acc20 = mat4x4<f32>(); var acc21 = mat4x4<f32>();
  var acc30 = mat4x4<f32>(); var acc31 = mat4x4<f32>();
  var acc40 = mat4x4<f32>(); var acc41 = mat4x4<f32>();
  var acc50 = mat4x4<f32>(); var acc51 = mat4x4<f32>();
  var acc60 = mat4x4<f32>(); var acc61 = mat4x4<f32>();
  var acc70 = mat4x4<f32>(); var acc71 = mat4x4<f32>();
  for (var k = 0u; k < params.K; k += 4u) {
    let kl = k + t.lane;
    let ka = min(kl, params.K - 1u) * params.sak;
    let valid = kl < params.K;
    let b0 = b_block(k, t.lane, bc0);
    let b1 = b_block(k, t.lane, bc1);
    var ab = a_block(ar0, ka, valid);  acc00 += b0 * ab;  acc01 += b1 * ab;
    ab = a_block(ar1, ka, valid);      acc10 += b0 * ab;  acc11 += b1 * ab;
    ab = a_block(ar2, ka, valid);      acc20 += b0 * ab;  acc21 += b1 * ab;
    ab = a_block(ar3, ka, valid);      acc30 += b0 * ab;  acc31 += b1 * ab;
    ab = a_block(ar4, ka, valid);      acc40 += b0 * ab;  acc41 += b1 * ab;
    ab = a_block(ar5, ka, valid);      acc50 += b0 * ab;  acc51 += b1 * ab;
    ab = a_block(ar6, ka, valid);      acc60 += b0 * ab;  acc61 += b1 * ab;
    ab = a_block(ar7, ka, valid);      acc70 += b0 * ab;  acc71 += b1 * ab;
  }
  var out = array<mat4x4<f32>, 32>();
  out[0] = acc00; out[1] = acc01; out[2] = acc10; out[3] = acc11;
  out[4] = acc20; out[5] = acc21; out[6] = acc30; out[7] = acc31;
  out[8] = acc40; out[9] = acc41; out[10] = acc50; out[11] = acc51;
  out[12] = acc60; out[13] = acc61; out[14] = acc70; out[15] = acc71;
  return out;
}

@compute @workgroup_size(WG)
fn matmul_quad32x8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(subgroup_invocation_id) sid: u32) {
  let t = quad_tile(gid, nwg, sid, 32u, 32u);
  var out = tile_32x8(t);
  store_tile(t, &out, 8u, 2u);
}


// ---- quad16x8: 16 rows x 32 columns per quad tile ----------------------------------------------

// Rows t.r0..t.r0+15 at columns t.c0 + 4j (j < 8): block r * 2 + h of the result holds rows
// t.r0 + 4r.. at columns t.c0 + 16h + 4j (see store_tile).
fn tile_16x8(t: QuadTile) -> array<mat4x4<f32>, 32> {
  let ar0 = a_rows(t, 0u);    let ar1 = a_rows(t, 4u);
  let ar2 = a_rows(t, 8u);    let ar3 = a_rows(t, 12u);
  let bc0 = b_cols(t, 0u);    let bc1 = b_cols(t, 16u);
  var acc00 = mat4x4<f32>(); var acc01 = mat4x4<f32>();
  var acc10 = mat4x4<f32>(); var acc11 = mat4x4<f32>();
  var acc20 = mat4x4<f32>(); var acc21 = mat4x4<f32>();
  var acc30 = mat4x4<f32>(); var acc31 = mat4x4<f32>();
  for (var k = 0u; k < params.K; k += 4u) {
    let kl = k + t.lane;
    let ka = min(kl, params.K - 1u) * params.sak;
    let valid = kl < params.K;
    let b0 = b_block(k, t.lane, bc0);
    let b1 = b_block(k, t.lane, bc1);
    var ab = a_block(ar0, ka, valid);  acc00 += b0 * ab;  acc01 += b1 * ab;
    ab = a_block(ar1, ka, valid);      acc10 += b0 * ab;  acc11 += b1 * ab;
    ab = a_block(ar2, ka, valid);      acc20 += b0 * ab;  acc21 += b1 * ab;
    ab = a_block(ar3, ka, valid);      acc30 += b0 * ab;  acc31 += b1 * ab;
  }
  var out = array<mat4x4<f32>, 32>();
  out[0] = acc00; out[1] = acc01; out[2] = acc10; out[3] = acc11;
  out[4] = acc20; out[5] = acc21; out[6] = acc30; out[7] = acc31;
  return out;
}

@compute @workgroup_size(WG)
fn matmul_quad16x8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(subgroup_invocation_id) sid: u32) {
  let t = quad_tile(gid, nwg, sid, 16u, 32u);
  var out = tile_16x8(t);
  store_tile(t, &out, 4u, 2u);
}
