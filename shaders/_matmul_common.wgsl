// Shared by shaders/matmul.wgsl and shaders/matmul_quad.wgsl (through #include): the params, the
// bindings, the HAS_BIAS, ACT and ACCUM override constants, and the epilogue that adds the bias,
// applies the activation (shaders/_activation.wgsl) and stores an element of C.
//
// Batches of G matrices, in groups of gi (attention's heads within a sample): matrix g's operands
// start oa + (g / gi) * bsa2 + (g % gi) * bsa elements into a (likewise b with ob, bsb2, bsb and c
// with oc, bsc2, bsc); a batch stride of 0 makes every g share one matrix (a 2-D operand of a
// batched product). C's rows are ldc elements apart (N for a packed C). With these, a product can
// read and write matrices that are strided views of larger tensors (one head of a [T, 3D] qkv).
// Which invocations compute matrix g is the entry point's business: the workgroup id z in
// shaders/matmul.wgsl, the quad numbering in shaders/matmul_quad.wgsl.

#include "_activation.wgsl"

struct Params {
  M: u32, N: u32, K: u32,
  sam: u32, sak: u32, sbk: u32, sbn: u32,
  alpha: f32,
  bsa: u32, bsb: u32, bsc: u32,
  G: u32,
  gi: u32,
  bsa2: u32, bsb2: u32, bsc2: u32,
  oa: u32, ob: u32, oc: u32,
  ldc: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

override HAS_BIAS: bool = false;
override ACT: u32 = 0u;
// C = C + act(op(A)·op(B) + bias) instead of C = act(...): gradients that accumulate. Only this
// path reads C.
override ACCUM: bool = false;

// Element offsets of matrix g of A, B and C in their buffers.
struct BatchBase { a: u32, b: u32, c: u32 }

fn batch_base(g: u32) -> BatchBase {
  let outer = g / params.gi;
  let inner = g % params.gi;
  return BatchBase(
    params.oa + outer * params.bsa2 + inner * params.bsa,
    params.ob + outer * params.bsb2 + inner * params.bsb,
    params.oc + outer * params.bsc2 + inner * params.bsc,
  );
}

// ---- epilogue: bias and activation (ACT: an id of shaders/_activation.wgsl) -----------------

fn activate(v: f32) -> f32 {
  return activation_f(ACT, v, params.alpha);
}

// Bias for column `col` (clamped, so that any column may be asked for).
fn bias_at(col: u32) -> f32 {
  if (HAS_BIAS) { return bias[min(col, params.N - 1u)]; }
  return 0.0;
}

// Stores C[row, col] of the matrix that starts `base` elements into c (BatchBase.c).
fn store_c(base: u32, row: u32, col: u32, v: f32) {
  if (row < params.M && col < params.N) {
    let i = base + row * params.ldc + col;
    let r = activate(v + bias_at(col));
    if (ACCUM) {
      c[i] = c[i] + r;
    } else {
      c[i] = r;
    }
  }
}
