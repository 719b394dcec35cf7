// Matrix multiply with fused bias and activation, quad-cooperative variants (needs 'subgroups').
//
//   C[M, N] = act(op(A) · op(B) + bias)
//
// Same contract as shaders/matmul.wgsl (strided operands, params, bindings, HAS_BIAS and ACT).
//
// Why this shape: on CPU implementations of WebGPU (SwiftShader) every storage-buffer load is a
// per-lane gather that costs as much as a few dozen multiply-adds, and workgroup memory needs
// barriers that are slower still. Four invocations of a quad therefore share the rows of op(A):
// each loads op(A) at a different k and quadBroadcast hands the value to the other three, so one
// load feeds four lanes. Columns are interleaved over the quad (lane l owns columns l, l+4, l+8, ...)
// so every op(B) load is also useful to exactly one lane. Each invocation keeps a block of C in
// registers as 4x4 matrices and folds four k per step with one matrix product per block.
//
// Bindings (f32):
//   params: { M, N, K, sam, sak, sbk, sbn: u32, alpha: f32 }
//   a: (M*K)   b: (K*N)   c: (M*N) row-major [M, N]   bias: (N), read only when HAS_BIAS
// Entry points (rows x columns of C per invocation; a quad covers 4x the columns):
//   matmul_quad32x8: quad tile 32x32    matmul_quad16x8: quad tile 16x32
// Dispatch: 1-D, WG invocations per workgroup (a multiple of 4), 4 invocations per quad tile,
// tiles numbered row-major over ceil(M/TM) x ceil(N/32); split over x and y as by grid1d when
// needed (the kernel linearises with num_workgroups). Any M, N, K >= 1 work.

enable subgroups;

struct Params {
  M: u32, N: u32, K: u32,
  sam: u32, sak: u32, sbk: u32, sbn: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

override HAS_BIAS: bool = false;
override ACT: u32 = 0u;
override WG: u32 = 64u;

// ---- epilogue: bias and activation (formulas as in shaders/activation.wgsl) --------------------

fn tanh_safe(v: f32) -> f32 {
  return tanh(clamp(v, -15.0, 15.0));
}

fn sigmoid_f(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

fn activate(v: f32) -> f32 {
  switch ACT {
    case 1u: { return max(v, 0.0); }
    case 2u: { return select(params.alpha * v, v, v > 0.0); }
    case 3u: { return sigmoid_f(v); }
    case 4u: { return tanh_safe(v); }
    case 5u: { return 0.5 * v * (1.0 + tanh_safe(0.7978845608028654 * (v + 0.044715 * v * v * v))); }
    default: { return v; }
  }
}

fn bias_at(col: u32) -> f32 {
  if (HAS_BIAS) { return bias[min(col, params.N - 1u)]; }
  return 0.0;
}

fn store_c(row: u32, col: u32, v: f32) {
  if (row < params.M && col < params.N) {
    c[row * params.N + col] = activate(v + bias_at(col));
  }
}

// Writes the invocation's blocks: blocks[2r + h] holds rows r0 + 4r + i (its column i) at columns
// c0 + 16h + 4j (component j), for r < row_blocks. One store site for every value, so that the
// epilogue (bias, activation) is compiled once rather than once per value.
fn store_tile(t: QuadTile, blocks: ptr<function, array<mat4x4<f32>, 16>>, row_blocks: u32) {
  for (var e = 0u; e < row_blocks * 32u; e++) {
    let blk = e / 16u;        // 2r + h
    let i = (e / 4u) % 4u;
    let j = e % 4u;
    store_c(t.r0 + 4u * (blk / 2u) + i, t.c0 + 16u * (blk % 2u) + 4u * j, (*blocks)[blk][i][j]);
  }
}

// ---- operand blocks ----------------------------------------------------------------------------

// Element offsets of op(A) rows r0..r0+3, clamped to the last row.
fn a_rows(r0: u32) -> vec4<u32> {
  return min(vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.M - 1u)) * params.sam;
}

// Element offsets of op(B) columns c0, c0+4, c0+8, c0+12 (a lane's interleaved columns), clamped.
fn b_cols(c0: u32) -> vec4<u32> {
  return min(vec4<u32>(c0) + vec4<u32>(0u, 4u, 8u, 12u), vec4<u32>(params.N - 1u)) * params.sbn;
}

// The four lanes' values of v, in lane order.
fn quad_all(v: f32) -> vec4<f32> {
  return vec4<f32>(quadBroadcast(v, 0u), quadBroadcast(v, 1u), quadBroadcast(v, 2u), quadBroadcast(v, 3u));
}

// op(A)[rows, k..k+3] as the matrix whose column i is row i over the four k (so its math form is
// the transposed block). Lane l loads k + l; `ka` is that k's offset, `valid` whether k + l < K.
fn a_block(rows: vec4<u32>, ka: u32, valid: bool) -> mat4x4<f32> {
  let v = select(vec4<f32>(0.0), vec4<f32>(a[rows.x + ka], a[rows.y + ka], a[rows.z + ka], a[rows.w + ka]), valid);
  return mat4x4<f32>(quad_all(v.x), quad_all(v.y), quad_all(v.z), quad_all(v.w));
}

// op(B)[k + t, cols] for one t, zero when k + t >= K.
fn b_row(k: u32, cols: vec4<u32>) -> vec4<f32> {
  let o = min(k, params.K - 1u) * params.sbk;
  let v = vec4<f32>(b[o + cols.x], b[o + cols.y], b[o + cols.z], b[o + cols.w]);
  return select(vec4<f32>(0.0), v, k < params.K);
}

// The matrix whose column t is op(B)[k + t, cols]. For an accumulator whose column i is a row of C
// at this lane's columns, acc += b_block * a_block adds sum_t op(A)[row i, k+t] op(B)[k+t, cols].
fn b_block(k: u32, cols: vec4<u32>) -> mat4x4<f32> {
  return mat4x4<f32>(b_row(k, cols), b_row(k + 1u, cols), b_row(k + 2u, cols), b_row(k + 3u, cols));
}

// Which tile this quad computes and which lane of it this invocation is.
struct QuadTile { r0: u32, c0: u32, lane: u32 }

fn quad_tile(gid: vec3<u32>, nwg: vec3<u32>, sid: u32, rows_per_tile: u32) -> QuadTile {
  let q = (gid.x + gid.y * nwg.x * WG) / 4u;
  let tiles_n = (params.N + 31u) / 32u;
  let lane = sid % 4u;
  return QuadTile((q / tiles_n) * rows_per_tile, (q % tiles_n) * 32u + lane, lane);
}

// ---- matmul_quad32x8: rows r0..r0+31, columns c0 + 4j (j < 8) per invocation -------------------

@compute @workgroup_size(WG)
fn matmul_quad32x8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(subgroup_invocation_id) sid: u32) {
  let t = quad_tile(gid, nwg, sid, 32u);
  let ar0 = a_rows(t.r0);        let ar1 = a_rows(t.r0 + 4u);
  let ar2 = a_rows(t.r0 + 8u);   let ar3 = a_rows(t.r0 + 12u);
  let ar4 = a_rows(t.r0 + 16u);  let ar5 = a_rows(t.r0 + 20u);
  let ar6 = a_rows(t.r0 + 24u);  let ar7 = a_rows(t.r0 + 28u);
  let bc0 = b_cols(t.c0);        let bc1 = b_cols(t.c0 + 16u);
  // acc<r><h>: rows r0+4r.. at columns c0 + 16h + 4j; column i of the matrix is one row.
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
    let b0 = b_block(k, bc0);
    let b1 = b_block(k, bc1);
    var ab = a_block(ar0, ka, valid);  acc00 += b0 * ab;  acc01 += b1 * ab;
    ab = a_block(ar1, ka, valid);      acc10 += b0 * ab;  acc11 += b1 * ab;
    ab = a_block(ar2, ka, valid);      acc20 += b0 * ab;  acc21 += b1 * ab;
    ab = a_block(ar3, ka, valid);      acc30 += b0 * ab;  acc31 += b1 * ab;
    ab = a_block(ar4, ka, valid);      acc40 += b0 * ab;  acc41 += b1 * ab;
    ab = a_block(ar5, ka, valid);      acc50 += b0 * ab;  acc51 += b1 * ab;
    ab = a_block(ar6, ka, valid);      acc60 += b0 * ab;  acc61 += b1 * ab;
    ab = a_block(ar7, ka, valid);      acc70 += b0 * ab;  acc71 += b1 * ab;
  }
  var out = array<mat4x4<f32>, 16>(acc00, acc01, acc10, acc11, acc20, acc21, acc30, acc31,
                                   acc40, acc41, acc50, acc51, acc60, acc61, acc70, acc71);
  store_tile(t, &out, 8u);
}

// ---- matmul_quad16x8: rows r0..r0+15, columns c0 + 4j (j < 8) per invocation -------------------

@compute @workgroup_size(WG)
fn matmul_quad16x8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(subgroup_invocation_id) sid: u32) {
  let t = quad_tile(gid, nwg, sid, 16u);
  let ar0 = a_rows(t.r0);        let ar1 = a_rows(t.r0 + 4u);
  let ar2 = a_rows(t.r0 + 8u);   let ar3 = a_rows(t.r0 + 12u);
  let bc0 = b_cols(t.c0);        let bc1 = b_cols(t.c0 + 16u);
  var acc00 = mat4x4<f32>(); var acc01 = mat4x4<f32>();
  var acc10 = mat4x4<f32>(); var acc11 = mat4x4<f32>();
  var acc20 = mat4x4<f32>(); var acc21 = mat4x4<f32>();
  var acc30 = mat4x4<f32>(); var acc31 = mat4x4<f32>();
  for (var k = 0u; k < params.K; k += 4u) {
    let kl = k + t.lane;
    let ka = min(kl, params.K - 1u) * params.sak;
    let valid = kl < params.K;
    let b0 = b_block(k, bc0);
    let b1 = b_block(k, bc1);
    var ab = a_block(ar0, ka, valid);  acc00 += b0 * ab;  acc01 += b1 * ab;
    ab = a_block(ar1, ka, valid);      acc10 += b0 * ab;  acc11 += b1 * ab;
    ab = a_block(ar2, ka, valid);      acc20 += b0 * ab;  acc21 += b1 * ab;
    ab = a_block(ar3, ka, valid);      acc30 += b0 * ab;  acc31 += b1 * ab;
  }
  var out = array<mat4x4<f32>, 16>(acc00, acc01, acc10, acc11, acc20, acc21, acc30, acc31,
                                   mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>(),
                                   mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>());
  store_tile(t, &out, 4u);
}
