// Batched transpose: dst [batch, cols, rows] = src [batch, rows, cols], each batch on its own.
// The im2col convolution (src/nn/conv.ts) uses it to move the matmul's [B, OH*OW, OC] rows into
// NCHW and the output gradient back.
//
// Dispatch (src/kernels/im2col.ts, as for shaders/im2col.wgsl): a 3-D grid of WX x WY workgroups;
// x is the source row r, y a block of TC consecutive columns, z the batch; y and z loop with the
// grid's stride, so any size fits the 65,535-workgroups-per-dimension limit. TC columns per
// invocation because on a CPU adapter the cost is per invocation, not per element.

struct Params { batch: u32, rows: u32, cols: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

override WX: u32 = 16u;
override WY: u32 = 4u;
// Columns per invocation (the wrapper picks it per adapter).
override TC: u32 = 1u;

@compute @workgroup_size(WX, WY)
fn transpose_batched(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = params;
  let r = gid.x;
  if (r >= p.rows) { return; }
  for (var b = gid.z; b < p.batch; b += nwg.z) {
    // Lanes take consecutive r: each lane reads along its own source row, and the lanes write
    // consecutive addresses of each destination row.
    let s0 = (b * p.rows + r) * p.cols;
    let d0 = b * p.cols * p.rows + r;
    for (var c = gid.y * TC; c < p.cols; c += nwg.y * WY * TC) {
      let n = min(TC, p.cols - c);
      for (var j = 0u; j < n; j++) {
        dst[d0 + (c + j) * p.rows] = src[s0 + c + j];
      }
    }
  }
}
