// Losses over a batch: per-sample loss AND the gradient of the MEAN loss with respect to the
// network's output, in one pass.
//
// softmax_cross_entropy: rows of C class scores, labels are class indices stored as f32, with
//   label smoothing e = params.smoothing (0: none): the target is q_c = (1 - e) (c == label) + e / C.
//   losses[b]    = logsumexp(z[b, :]) - sum_c q_c z[b, c]         (stable: max subtracted first)
//   dlogits[b,c] = (softmax(z[b, :])[c] - q_c) / B
//   correct[b]   = 1 if the first argmax of z[b, :] is label[b], else 0
//   A label that is not an integer in [0, C) (negative, too large, fractional, NaN, inf) is never
//   used as an index: losses[b] = NaN (so a divergence guard sees it), dlogits[b, :] = 0,
//   correct[b] = 0.
// mse: losses[b] = mean_d (p - t)^2;  dpred[b,d] = 2 (p - t) / (B D)
// bce_logits: binary cross-entropy on logits, stable form
//   l = max(z, 0) - z t + log(1 + exp(-|z|));  losses[b] = mean_d l
//   dlogits[b,d] = (sigmoid(z) - t) / (B D)
//   correct[b]   = fraction of d with (z > 0) == (t > 0.5)
//
// Bindings (f32; B = params.rows >= 1, C or D = params.cols >= 1; row-major):
//   params : { rows: u32, cols: u32, smoothing: f32 (softmax_cross_entropy; 0 for the others) }
//   logits : array<f32> (B*C or B*D)   softmax_cross_entropy, bce_logits
//   labels : array<f32> (B)            softmax_cross_entropy
//   targets: array<f32> (B*D)          mse, bce_logits
//   pred   : array<f32> (B*D)          mse
//   losses : array<f32> (B)            all, written
//   dlogits: array<f32> (B*C or B*D)   softmax_cross_entropy, bce_logits, written
//   dpred  : array<f32> (B*D)          mse, written
//   correct: array<f32> (B)            softmax_cross_entropy, bce_logits, written
// Dispatch: 1-D over rows, one invocation per row (it loops over the row's C or D values, so no
// barriers or workgroup memory: cheap on software adapters, and classification rows are short),
// WG invocations per workgroup, grid split over x and y by grid1d.

struct Params { rows: u32, cols: u32, smoothing: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<f32>;
@group(0) @binding(4) var<storage, read> pred: array<f32>;
@group(0) @binding(5) var<storage, read_write> losses: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(7) var<storage, read_write> dpred: array<f32>;
@group(0) @binding(8) var<storage, read_write> correct: array<f32>;

override WG: u32 = 64;

fn row_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// A quiet NaN built from a runtime value, so that no compiler folds it as a constant.
fn quiet_nan() -> f32 {
  return bitcast<f32>(0x7fc00000u | (params.rows & 0u));
}

// True when v is a finite integer in [0, n); decided on the bits first so NaN and inf are
// rejected even where the compiler assumes floats are finite.
fn is_class_index(v: f32, n: u32) -> bool {
  let bits = bitcast<u32>(v);
  if ((bits & 0x7f800000u) == 0x7f800000u) { return false; }
  return v >= 0.0 && v < f32(n) && floor(v) == v;
}

// log(1 + x) for x in [0, 1], accurate also where 1 + x rounds to 1.
fn log1p_small(x: f32) -> f32 {
  if (x < 1e-4) { return x * (1.0 - x * (0.5 - x / 3.0)); }
  return log(1.0 + x);
}

// sigmoid(z) - t written as (1 - t) sigmoid(z) - t sigmoid(-z): both sigmoids come from exp(-|z|)
// without cancellation, so a confident correct prediction (z = 30, t = 1) keeps its tiny gradient.
fn sigmoid_minus(z: f32, t: f32) -> f32 {
  let e = exp(-abs(z));
  let big = 1.0 / (1.0 + e);
  let small = e * big;
  let s_pos = select(small, big, z >= 0.0);
  let s_neg = select(big, small, z >= 0.0);
  return (1.0 - t) * s_pos - t * s_neg;
}

@compute @workgroup_size(WG)
fn softmax_cross_entropy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = row_index(gid, nwg);
  let B = params.rows;
  let C = params.cols;
  if (b >= B) { return; }
  let base = b * C;

  var zmax = logits[base];
  var arg = 0u;
  for (var c = 1u; c < C; c++) {
    let z = logits[base + c];
    if (z > zmax) { zmax = z; arg = c; }
  }
  var sum = 0.0;
  var zsum = 0.0;
  for (var c = 0u; c < C; c++) {
    let z = logits[base + c];
    sum += exp(z - zmax);
    zsum += z - zmax;
  }
  let e = params.smoothing;

  let label_f = labels[b];
  if (!is_class_index(label_f, C)) {
    losses[b] = quiet_nan();
    correct[b] = 0.0;
    for (var c = 0u; c < C; c++) { dlogits[base + c] = 0.0; }
    return;
  }
  let label = min(u32(label_f), C - 1u);

  // log(sum) - sum_c q_c (z_c - zmax) == logsumexp - sum_c q_c z_c (the q_c sum to 1), without
  // cancelling two large numbers.
  losses[b] = log(sum) - ((1.0 - e) * (logits[base + label] - zmax) + e * zsum / f32(C));
  correct[b] = select(0.0, 1.0, arg == label);
  let inv_sum = 1.0 / sum;
  let inv_b = 1.0 / f32(B);
  let off = e / f32(C);
  for (var c = 0u; c < C; c++) {
    let p = exp(logits[base + c] - zmax) * inv_sum;
    dlogits[base + c] = (p - (off + select(0.0, 1.0 - e, c == label))) * inv_b;
  }
}

@compute @workgroup_size(WG)
fn mse(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = row_index(gid, nwg);
  let D = params.cols;
  if (b >= params.rows) { return; }
  let base = b * D;
  let scale = 2.0 / (f32(params.rows) * f32(D));
  var sum = 0.0;
  for (var d = 0u; d < D; d++) {
    let diff = pred[base + d] - targets[base + d];
    sum += diff * diff;
    dpred[base + d] = scale * diff;
  }
  losses[b] = sum / f32(D);
}

@compute @workgroup_size(WG)
fn bce_logits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = row_index(gid, nwg);
  let D = params.cols;
  if (b >= params.rows) { return; }
  let base = b * D;
  let scale = 1.0 / (f32(params.rows) * f32(D));
  var sum = 0.0;
  var hits = 0u;
  for (var d = 0u; d < D; d++) {
    let z = logits[base + d];
    let t = targets[base + d];
    sum += max(z, 0.0) - z * t + log1p_small(exp(-abs(z)));
    dlogits[base + d] = sigmoid_minus(z, t) * scale;
    if ((z > 0.0) == (t > 0.5)) { hits++; }
  }
  losses[b] = sum / f32(D);
  correct[b] = f32(hits) / f32(D);
}
