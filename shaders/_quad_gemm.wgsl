// Quad-cooperative register tiles for GEMMs whose operands are gathered (shaders/conv_gemm.wgsl,
// through #include). The scheme is the tuned matmul's (shaders/matmul_quad.wgsl): the four lanes
// of a quad compute one tile of C; each lane loads op(A) at its own k (k + lane) for the tile's
// rows, and quad swaps hand it to the other three lanes, so one load feeds four; columns are
// interleaved over the lanes (lane l owns columns l, l+4, l+8, l+12 of every 16), so every op(B)
// load serves exactly one lane. Per step of four k, a lane loads 4 RB values of A and 16 CB of B
// for 64 RB CB multiply-adds.
//
// The tile shape is set by override constants: RB blocks of 4 rows (1 to 8) and CB blocks of 16
// columns (1, 2 or 4), so a quad tile is 4 RB x 16 CB. Unused blocks are cut by constant
// conditions (`if (RB > 4u)`), which the compiler folds once the overrides are known.
//
// Here only the arithmetic lives; the including family provides the loads (where op(A) and op(B)
// come from) and the epilogue (where C goes).

override RB: u32 = 8u;
override CB: u32 = 2u;

const LANES = vec4<u32>(0u, 1u, 2u, 3u);

// A quad's tile: first row, this lane's first column (tile column + lane), and the lane.
struct QuadTile { r0: u32, c0: u32, lane: u32 }

// Tile `q` of tiles numbered row-major, `tiles_n` per row of tiles.
fn quad_tile(q: u32, tiles_n: u32, lane: u32) -> QuadTile {
  return QuadTile((q / tiles_n) * 4u * RB, (q % tiles_n) * 16u * CB + lane, lane);
}

// Four values of this lane (one per row of a row block, at k + lane) spread over the quad: column
// i of the result holds row i at k + (lane ^ s) for s = 0..3. Swaps are register shuffles.
fn spread(v: vec4<f32>) -> mat4x4<f32> {
  return transpose(mat4x4<f32>(v, quadSwapX(v), quadSwapY(v), quadSwapDiagonal(v)));
}

// A per-lane value at k + (lane ^ s), s = 0..3: what the B blocks below are indexed with.
fn quad_u32(v: u32) -> vec4<u32> {
  return vec4<u32>(v, quadSwapX(v), quadSwapY(v), quadSwapDiagonal(v));
}

fn quad_f32(v: f32) -> vec4<f32> {
  return vec4<f32>(v, quadSwapX(v), quadSwapY(v), quadSwapDiagonal(v));
}

// The RB spread blocks of op(A) for one step of four k (blocks past RB are left zero and unused).
struct ABlocks {
  a0: mat4x4<f32>, a1: mat4x4<f32>, a2: mat4x4<f32>, a3: mat4x4<f32>,
  a4: mat4x4<f32>, a5: mat4x4<f32>, a6: mat4x4<f32>, a7: mat4x4<f32>,
}

// One column block's accumulators, one per row block: column i of m<r> holds C at row 4r + i and
// the lane's four columns of the block (component j: column 4j of the block, plus the lane).
struct Acc {
  m0: mat4x4<f32>, m1: mat4x4<f32>, m2: mat4x4<f32>, m3: mat4x4<f32>,
  m4: mat4x4<f32>, m5: mat4x4<f32>, m6: mat4x4<f32>, m7: mat4x4<f32>,
}

// A tile's accumulators, one Acc per column block.
struct Tile { c0: Acc, c1: Acc, c2: Acc, c3: Acc }

// tile += b[c] * a for every column block c < CB and row block r < RB: b[c]'s column s is
// op(B)[k + (lane ^ s), the lane's columns of block c]. In place, through a pointer to the whole
// tile: passing accumulators by value may copy them every step.
fn mac(t: ptr<function, Tile>, a: ABlocks, b: array<mat4x4<f32>, 4>) {
  (*t).c0.m0 += b[0] * a.a0;
  if (RB > 1u) { (*t).c0.m1 += b[0] * a.a1; }
  if (RB > 2u) { (*t).c0.m2 += b[0] * a.a2; }
  if (RB > 3u) { (*t).c0.m3 += b[0] * a.a3; }
  if (RB > 4u) { (*t).c0.m4 += b[0] * a.a4; }
  if (RB > 5u) { (*t).c0.m5 += b[0] * a.a5; }
  if (RB > 6u) { (*t).c0.m6 += b[0] * a.a6; }
  if (RB > 7u) { (*t).c0.m7 += b[0] * a.a7; }
  if (CB > 1u) { (*t).c1.m0 += b[1] * a.a0; }
  if (CB > 1u && RB > 1u) { (*t).c1.m1 += b[1] * a.a1; }
  if (CB > 1u && RB > 2u) { (*t).c1.m2 += b[1] * a.a2; }
  if (CB > 1u && RB > 3u) { (*t).c1.m3 += b[1] * a.a3; }
  if (CB > 1u && RB > 4u) { (*t).c1.m4 += b[1] * a.a4; }
  if (CB > 1u && RB > 5u) { (*t).c1.m5 += b[1] * a.a5; }
  if (CB > 1u && RB > 6u) { (*t).c1.m6 += b[1] * a.a6; }
  if (CB > 1u && RB > 7u) { (*t).c1.m7 += b[1] * a.a7; }
  if (CB > 2u) { (*t).c2.m0 += b[2] * a.a0; }
  if (CB > 2u && RB > 1u) { (*t).c2.m1 += b[2] * a.a1; }
  if (CB > 2u && RB > 2u) { (*t).c2.m2 += b[2] * a.a2; }
  if (CB > 2u && RB > 3u) { (*t).c2.m3 += b[2] * a.a3; }
  if (CB > 2u && RB > 4u) { (*t).c2.m4 += b[2] * a.a4; }
  if (CB > 2u && RB > 5u) { (*t).c2.m5 += b[2] * a.a5; }
  if (CB > 2u && RB > 6u) { (*t).c2.m6 += b[2] * a.a6; }
  if (CB > 2u && RB > 7u) { (*t).c2.m7 += b[2] * a.a7; }
  if (CB > 2u) { (*t).c3.m0 += b[3] * a.a0; }
  if (CB > 2u && RB > 1u) { (*t).c3.m1 += b[3] * a.a1; }
  if (CB > 2u && RB > 2u) { (*t).c3.m2 += b[3] * a.a2; }
  if (CB > 2u && RB > 3u) { (*t).c3.m3 += b[3] * a.a3; }
  if (CB > 2u && RB > 4u) { (*t).c3.m4 += b[3] * a.a4; }
  if (CB > 2u && RB > 5u) { (*t).c3.m5 += b[3] * a.a5; }
  if (CB > 2u && RB > 6u) { (*t).c3.m6 += b[3] * a.a6; }
  if (CB > 2u && RB > 7u) { (*t).c3.m7 += b[3] * a.a7; }
}

// The tile as an array indexed by 4 * row block + column block, for an epilogue that loops over one
// store site (an unrolled epilogue would be compiled once per element).
fn tile_blocks(t: Tile) -> array<mat4x4<f32>, 32> {
  return array<mat4x4<f32>, 32>(
    t.c0.m0, t.c1.m0, t.c2.m0, t.c3.m0, t.c0.m1, t.c1.m1, t.c2.m1, t.c3.m1,
    t.c0.m2, t.c1.m2, t.c2.m2, t.c3.m2, t.c0.m3, t.c1.m3, t.c2.m3, t.c3.m3,
    t.c0.m4, t.c1.m4, t.c2.m4, t.c3.m4, t.c0.m5, t.c1.m5, t.c2.m5, t.c3.m5,
    t.c0.m6, t.c1.m6, t.c2.m6, t.c3.m6, t.c0.m7, t.c1.m7, t.c2.m7, t.c3.m7);
}

// n / d for n < 2^22 and d >= 1 without an integer division, which a CPU adapter emulates lane by
// lane at the cost of dozens of multiply-adds: the f32 estimate is off by at most one, and one
// correction step makes it exact. inv = 1 / f32(d).
fn div_small(n: u32, d: u32, inv: f32) -> u32 {
  let q = u32((f32(n) + 0.5) * inv);
  let r = i32(n) - i32(q * d);
  return q + select(0u, 1u, r >= i32(d)) - select(0u, 1u, r < 0);
}

fn div_small4(n: vec4<u32>, d: u32, inv: f32) -> vec4<u32> {
  let q = vec4<u32>((vec4<f32>(n) + 0.5) * inv);
  let r = vec4<i32>(n) - vec4<i32>(q * d);
  return q + select(vec4<u32>(0u), vec4<u32>(1u), r >= vec4<i32>(i32(d))) - select(vec4<u32>(0u), vec4<u32>(1u), r < vec4<i32>(0));
}
