// Statistics of tensors, for watching training (src/train/stats.ts): for one tensor x, a record of
// figures and a fixed-bin histogram, written into small results buffers that the host reads back
// every few steps. The record layout and the bin rule are in src/ops/stats.ts:
//   values[base + 0] count of finite values      values[base + 5] L2 norm
//   values[base + 1] mean                        values[base + 6] count of values <= 0
//   values[base + 2] std (population)            values[base + 7] count of non-finite values
//   values[base + 3] min                         values[base + 8] ||x - prev|| (delta entries)
//   values[base + 4] max                         values[base + 9] ||prev||     (delta entries)
// Non-finite values (told by their exponent bits: WGSL may assume a float comparison never sees
// NaN) are counted apart and left out of the other figures and of the histogram.
//
// Entries (one tensor each; dispatch them in this order, every later one reading what the earlier
// ones wrote):
//   stats_partials        G workgroups of WG: workgroup g reduces x[i] for i = g*WG + lid + k*G*WG
//                         into partials[g]. Each invocation sums around a shift (its first finite
//                         value) so that a tensor far from zero keeps its variance; the invocations'
//                         partials then combine in a fixed-order tree with Chan's formula.
//   stats_partials_delta  the same, also summing (x - prev)^2 and prev^2 (prev: a copy of x taken
//                         before the optimizer updated it)
//   stats_finish          one workgroup: combines partials[0..G) in a fixed order, writes the record
//                         at `base`, and zeroes the record's `bins` histogram counts at `hist`
//   stats_histogram       G workgroups of WG: counts[hist + bin(x)] += 1 per finite x, bins over
//                         [min, max] of the record; each workgroup counts in workgroup memory first
//   stats_copy            prev[i] = x[i], 1-D (COPY_WG per workgroup, grid1d)
// Every figure is the same bit for bit on every run: the float sums have a fixed order, and the
// histogram's counts are integers (integer atomics add in any order to the same total).
//
// Bindings (params: { n: u32 (elements of x), groups: u32 (G, at most WG), base: u32, hist: u32,
// bins: u32 (0: no histogram) }):
//   x        : array<f32> (n)                read
//   prev     : array<f32> (n)                read (stats_partials_delta)
//   prev_out : array<f32> (n)                written (stats_copy)
//   partials : array<Partial> (>= G)         written (partials), read by stats_finish as partials_in
//   values   : array<f32> (records * 10)     written (finish), read by stats_histogram as values_in
//   counts   : array<atomic<u32>>            zeroed (finish), added to (histogram)

struct Params {
  n: u32,
  groups: u32,
  base: u32,
  hist: u32,
  bins: u32,
}

// What one invocation, workgroup or tensor has seen: counts, the mean and the sum of squared
// deviations from it (m2), the range, and the delta entries' sums of squares.
struct Partial {
  count: u32,
  nonpos: u32,
  nonfinite: u32,
  mean: f32,
  m2: f32,
  lo: f32,
  hi: f32,
  dsq: f32,
  psq: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> prev: array<f32>;
@group(0) @binding(3) var<storage, read_write> prev_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<Partial>;
@group(0) @binding(5) var<storage, read> partials_in: array<Partial>;
@group(0) @binding(6) var<storage, read_write> values: array<f32>;
@group(0) @binding(7) var<storage, read> values_in: array<f32>;
@group(0) @binding(8) var<storage, read_write> counts: array<atomic<u32>>;

const WG: u32 = 64u;
const MAX_BINS: u32 = 256u;
const BIG: f32 = 3.4e38;
override COPY_WG: u32 = 256;

var<workgroup> tree: array<Partial, WG>;
var<workgroup> local_counts: array<atomic<u32>, MAX_BINS>;

fn is_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

fn empty() -> Partial {
  return Partial(0u, 0u, 0u, 0.0, 0.0, BIG, -BIG, 0.0, 0.0);
}

// Chan et al.'s pairwise update: the mean and m2 of the union of two disjoint sets.
fn combine(a: Partial, b: Partial) -> Partial {
  var r = a;
  r.count = a.count + b.count;
  r.nonpos = a.nonpos + b.nonpos;
  r.nonfinite = a.nonfinite + b.nonfinite;
  r.lo = min(a.lo, b.lo);
  r.hi = max(a.hi, b.hi);
  r.dsq = a.dsq + b.dsq;
  r.psq = a.psq + b.psq;
  if (a.count == 0u) {
    r.mean = b.mean;
    r.m2 = b.m2;
  } else if (b.count != 0u) {
    let na = f32(a.count);
    let nb = f32(b.count);
    let n = na + nb;
    let d = b.mean - a.mean;
    r.mean = a.mean + d * (nb / n);
    r.m2 = a.m2 + b.m2 + d * d * (na * nb / n);
  }
  return r;
}

// One invocation's running sums around its shift k (its first finite value).
struct Sums {
  p: Partial,
  k: f32,
  s1: f32,
  s2: f32,
}

fn add_value(s: ptr<function, Sums>, v: f32) {
  if (!is_finite(v)) {
    (*s).p.nonfinite += 1u;
    return;
  }
  if ((*s).p.count == 0u) { (*s).k = v; }
  (*s).p.count += 1u;
  let d = v - (*s).k;
  (*s).s1 += d;
  (*s).s2 += d * d;
  (*s).p.lo = min((*s).p.lo, v);
  (*s).p.hi = max((*s).p.hi, v);
  if (v <= 0.0) { (*s).p.nonpos += 1u; }
}

fn sums_partial(s: Sums) -> Partial {
  var p = s.p;
  if (p.count > 0u) {
    let c = f32(p.count);
    p.mean = s.k + s.s1 / c;
    p.m2 = max(0.0, s.s2 - s.s1 * s.s1 / c);
  }
  return p;
}

fn new_sums() -> Sums {
  return Sums(empty(), 0.0, 0.0, 0.0);
}

// Combine the workgroup's partials in a fixed-order tree; tree[0] holds the result.
fn reduce_tree(lid: u32, mine: Partial) {
  tree[lid] = mine;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { tree[lid] = combine(tree[lid], tree[lid + stride]); }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn stats_partials(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  var s = new_sums();
  let stride = params.groups * WG;
  for (var i = wid.x * WG + lid; i < params.n; i += stride) {
    add_value(&s, x[i]);
  }
  reduce_tree(lid, sums_partial(s));
  if (lid == 0u) { partials[wid.x] = tree[0]; }
}

@compute @workgroup_size(WG)
fn stats_partials_delta(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  var s = new_sums();
  var dsq = 0.0;
  var psq = 0.0;
  let stride = params.groups * WG;
  for (var i = wid.x * WG + lid; i < params.n; i += stride) {
    let v = x[i];
    let p = prev[i];
    let d = v - p;
    dsq += d * d;
    psq += p * p;
    add_value(&s, v);
  }
  var mine = sums_partial(s);
  mine.dsq = dsq;
  mine.psq = psq;
  reduce_tree(lid, mine);
  if (lid == 0u) { partials[wid.x] = tree[0]; }
}

@compute @workgroup_size(WG)
fn stats_finish(@builtin(local_invocation_index) lid: u32) {
  var mine = empty();
  if (lid < params.groups) { mine = partials_in[lid]; }
  reduce_tree(lid, mine);
  for (var b = lid; b < params.bins; b += WG) {
    atomicStore(&counts[params.hist + b], 0u);
  }
  if (lid != 0u) { return; }
  let t = tree[0];
  let base = params.base;
  let c = f32(t.count);
  var mean = 0.0;
  var sd = 0.0;
  var lo = 0.0;
  var hi = 0.0;
  var norm = 0.0;
  if (t.count > 0u) {
    mean = t.mean;
    sd = sqrt(t.m2 / c);
    lo = t.lo;
    hi = t.hi;
    norm = sqrt(t.m2 + c * t.mean * t.mean);
  }
  values[base + 0u] = c;
  values[base + 1u] = mean;
  values[base + 2u] = sd;
  values[base + 3u] = lo;
  values[base + 4u] = hi;
  values[base + 5u] = norm;
  values[base + 6u] = f32(t.nonpos);
  values[base + 7u] = f32(t.nonfinite);
  values[base + 8u] = sqrt(t.dsq);
  values[base + 9u] = sqrt(t.psq);
}

@compute @workgroup_size(WG)
fn stats_histogram(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let bins = params.bins;
  for (var b = lid; b < bins; b += WG) { atomicStore(&local_counts[b], 0u); }
  workgroupBarrier();
  let lo = values_in[params.base + 3u];
  let hi = values_in[params.base + 4u];
  let width = hi - lo;
  var scale = 0.0;
  if (width > 0.0) { scale = f32(bins) / width; }
  let last = f32(bins - 1u);
  let stride = params.groups * WG;
  for (var i = wid.x * WG + lid; i < params.n; i += stride) {
    let v = x[i];
    if (!is_finite(v)) { continue; }
    let t = clamp(floor((v - lo) * scale), 0.0, last);
    atomicAdd(&local_counts[min(u32(t), bins - 1u)], 1u);
  }
  workgroupBarrier();
  for (var b = lid; b < bins; b += WG) {
    let c = atomicLoad(&local_counts[b]);
    if (c > 0u) { atomicAdd(&counts[params.hist + b], c); }
  }
}

@compute @workgroup_size(COPY_WG)
fn stats_copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * COPY_WG;
  if (i >= params.n) { return; }
  prev_out[i] = x[i];
}
