// Bias gradient: column sums of a row-major matrix, deterministic (no atomics).
//
//   db[n] = sum over m of dy[m, n]          entry: bias_grad
//   (db[n] += that sum when the override ACCUM is true: gradients that accumulate)
//
// Bindings (f32):
//   params: { M: u32, N: u32 }
//   dy: array<f32> (M*N), row-major [M, N]
//   db: array<f32> (N)
// Dispatch: 1-D, WG invocations per workgroup, one column per invocation (neighbouring invocations
// read neighbouring addresses of each row); the grid may be split over x and y (see grid1d).
// Each invocation sums its column in a fixed order, four independent partial sums, so the result
// does not depend on scheduling.

struct Params { M: u32, N: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;

override WG: u32 = 64u;
override ACCUM: bool = false;

@compute @workgroup_size(WG)
fn bias_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * WG;
  if (n >= params.N) { return; }
  let N = params.N;
  var s = vec4<f32>(0.0);
  var m = 0u;
  for (; m + 4u <= params.M; m += 4u) {
    s += vec4<f32>(dy[m * N + n], dy[(m + 1u) * N + n], dy[(m + 2u) * N + n], dy[(m + 3u) * N + n]);
  }
  for (; m < params.M; m++) {
    s.x += dy[m * N + n];
  }
  let total = (s.x + s.y) + (s.z + s.w);
  if (ACCUM) {
    db[n] = db[n] + total;
  } else {
    db[n] = total;
  }
}
