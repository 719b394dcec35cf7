// Matrix multiply with fused bias and activation, portable variants (no optional features).
//
//   C[M, N] = act(op(A) · op(B) + bias)
//
// Operands are addressed through strides, so one pipeline serves every transpose combination:
//   op(A)[m, k] = a[m * sam + k * sak]   A stored [M, K]: (sam, sak) = (K, 1); transposed [K, M]: (1, M)
//   op(B)[k, n] = b[k * sbk + n * sbn]   B stored [K, N]: (sbk, sbn) = (N, 1); transposed [N, K]: (1, K)
// Activations use the formulas of shaders/activation.wgsl (tanh-approximated gelu, leaky slope alpha).
//
// A batch of G independent products runs in one dispatch: matrix g is the workgroup id z and its
// operands start g * (bsa, bsb, bsc) elements into a, b, c (stride 0: one matrix shared by all g).
//
// Bindings (f32):
//   params: { M, N, K, sam, sak, sbk, sbn: u32, alpha: f32, bsa, bsb, bsc: u32 }
//   a    : array<f32> (M*K, or G*M*K)   b: (K*N, or G*K*N)   c: (G*M*N), row-major [G, M, N]
//   bias : array<f32> (N)     read only when HAS_BIAS (bind any buffer otherwise)
// Override constants: HAS_BIAS (bool), ACT (an activation id: ACT_* of shaders/_activation.wgsl),
//   ACCUM (bool: add the result into C instead of overwriting it).
//
// Entry points and dispatch geometry:
//   matmul_blocked: every invocation computes a 4x4 block of C from registers, with no workgroup
//     memory and no barriers (what CPU implementations such as SwiftShader run well).
//     Workgroup 8x8; dispatch (ceil(N/32), ceil(M/32), G); x indexes column blocks, y row blocks.
//   matmul_tiled: 64x64 tiles of C per workgroup, staged through workgroup memory 16 k at a time,
//     every invocation accumulating a 4x4 block (what GPUs run well).
//     Workgroup 16x16; dispatch (ceil(N/64), ceil(M/64), G).
// Any M, N, K >= 1 work: loads clamp their indices, out-of-range k contribute zero, and only
// in-range elements of C are written.

#include "_matmul_common.wgsl"

// ---- matmul_blocked ----------------------------------------------------------------------------

// Element offsets of four rows of op(A) (clamped to the last row).
fn a_rows(r0: u32) -> vec4<u32> {
  return min(vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.M - 1u)) * params.sam;
}

// Element offsets of four columns of op(B) (clamped to the last column).
fn b_cols(c0: u32) -> vec4<u32> {
  return min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.N - 1u)) * params.sbn;
}

// Row k of op(B) at four columns; zero when k >= K.
fn b_row(k: u32, cols: vec4<u32>) -> vec4<f32> {
  let o = min(k, params.K - 1u) * params.sbk;
  let v = vec4<f32>(b[o + cols.x], b[o + cols.y], b[o + cols.z], b[o + cols.w]);
  return select(vec4<f32>(0.0), v, k < params.K);
}

// Column k of op(A) at four rows; zero when k >= K.
fn a_col(k: u32, rows: vec4<u32>) -> vec4<f32> {
  let o = min(k, params.K - 1u) * params.sak;
  let v = vec4<f32>(a[rows.x + o], a[rows.y + o], a[rows.z + o], a[rows.w + o]);
  return select(vec4<f32>(0.0), v, k < params.K);
}

@compute @workgroup_size(8, 8)
fn matmul_blocked(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r0 = gid.y * 4u;
  let c0 = gid.x * 4u;
  let base = batch_base(gid.z);
  // The batch offsets ride in the operand offsets, so the k loop is the same as a 2-D product's.
  let rows = a_rows(r0) + vec4<u32>(base.a);
  let cols = b_cols(c0) + vec4<u32>(base.b);
  // acc[j][i] = C[r0 + i, c0 + j]: column j of the matrix is four rows of output column c0 + j.
  var acc = mat4x4<f32>();
  for (var k = 0u; k < params.K; k += 4u) {
    // a_t = op(A)[r0.., k + t] and b_t = op(B)[k + t, c0..]; as matrices with those columns,
    // (a_0 a_1 a_2 a_3) * transpose(b_0 b_1 b_2 b_3) is the 4x4 block of sum_t op(A) op(B).
    let a0 = a_col(k, rows);
    let a1 = a_col(k + 1u, rows);
    let a2 = a_col(k + 2u, rows);
    let a3 = a_col(k + 3u, rows);
    let b0 = b_row(k, cols);
    let b1 = b_row(k + 1u, cols);
    let b2 = b_row(k + 2u, cols);
    let b3 = b_row(k + 3u, cols);
    acc += mat4x4<f32>(a0, a1, a2, a3) * transpose(mat4x4<f32>(b0, b1, b2, b3));
  }
  // One store site for all 16 values keeps the (activation) epilogue code single.
  var out = acc;
  for (var e = 0u; e < 16u; e++) {
    store_c(base.c, r0 + e % 4u, c0 + e / 4u, out[e / 4u][e % 4u]);
  }
}

// ---- matmul_tiled ------------------------------------------------------------------------------

const TILE: u32 = 64u;   // rows and columns of C per workgroup
const TK: u32 = 16u;     // k per stage

var<workgroup> a_tile: array<array<f32, 64>, 16>;   // [TK][TILE]: a_tile[k][m] = op(A)[m0 + m, k0 + k]
var<workgroup> b_tile: array<array<f32, 64>, 16>;   // [TK][TILE]: b_tile[k][n] = op(B)[k0 + k, n0 + n]

// op(A)[m, k] of the matrix starting `base` elements into a, or zero outside the matrix.
fn load_a(base: u32, m: u32, k: u32) -> f32 {
  let v = a[base + min(m, params.M - 1u) * params.sam + min(k, params.K - 1u) * params.sak];
  return select(0.0, v, m < params.M && k < params.K);
}

fn load_b(base: u32, k: u32, n: u32) -> f32 {
  let v = b[base + min(k, params.K - 1u) * params.sbk + min(n, params.N - 1u) * params.sbn];
  return select(0.0, v, k < params.K && n < params.N);
}

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
  let m0 = wid.y * TILE;
  let n0 = wid.x * TILE;
  let base = batch_base(wid.z);
  // This invocation owns rows m0 + lid.y + 16 i and columns n0 + lid.x + 16 j (i, j < 4): strided,
  // so that neighbouring invocations read neighbouring workgroup-memory words.
  var acc0 = vec4<f32>(0.0);   // acc_i[j]
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < params.K; k0 += TK) {
    // 256 invocations stage 16x64 values of each operand, 4 each. Neighbouring invocations read
    // neighbouring addresses: they walk k when k is the operand's contiguous dimension.
    for (var t = 0u; t < 4u; t++) {
      let e = li + 256u * t;           // 0..1023
      let ka = select(e / TILE, e % TK, params.sak == 1u);
      let ma = select(e % TILE, e / TK, params.sak == 1u);
      a_tile[ka][ma] = load_a(base.a, m0 + ma, k0 + ka);
      let kb = select(e / TILE, e % TK, params.sbn != 1u);
      let nb = select(e % TILE, e / TK, params.sbn != 1u);
      b_tile[kb][nb] = load_b(base.b, k0 + kb, n0 + nb);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let bv = vec4<f32>(b_tile[kk][lid.x], b_tile[kk][lid.x + 16u], b_tile[kk][lid.x + 32u], b_tile[kk][lid.x + 48u]);
      acc0 += a_tile[kk][lid.y] * bv;
      acc1 += a_tile[kk][lid.y + 16u] * bv;
      acc2 += a_tile[kk][lid.y + 32u] * bv;
      acc3 += a_tile[kk][lid.y + 48u] * bv;
    }
    workgroupBarrier();
  }
  // out[i][j] = C[m0 + lid.y + 16 i, n0 + lid.x + 16 j]; one store site (see matmul_blocked).
  var out = mat4x4<f32>(acc0, acc1, acc2, acc3);
  for (var e = 0u; e < 16u; e++) {
    store_c(base.c, m0 + lid.y + 16u * (e / 4u), n0 + lid.x + 16u * (e % 4u), out[e / 4u][e % 4u]);
  }
}
