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
//   stats_partials        G workgroups of WG: workgroup g reduces the groups of four x4[j] for
//                         j = g*WG + lid + k*G*WG (and invocation 0 the last n % 4 values, from x)
//                         into partials[g]. Each invocation sums around a shift (its first value)
//                         so that a tensor far from zero keeps its variance; the invocations'
//                         partials then combine in a fixed-order tree with Chan's formula. Four
//                         values per load: about twice as fast as one on a CPU adapter.
//   stats_partials_delta  the same, also summing (x - prev)^2 and prev^2 (prev: a copy of x taken
//                         before the optimizer updated it, e.g. by copyBufferToBuffer)
//   stats_finish          one workgroup: combines partials[0..G) in a fixed order, writes the record
//                         at `base`, and zeroes the record's `bins` histogram counts at `hist`
//   stats_histogram       G workgroups of WG: counts[hist + bin(x)] += 1 per finite x, bins over
//                         [min, max] of the record; each workgroup counts in workgroup memory first
// G is the caller's: a few workgroups on a CPU adapter, where each one's barriers cost, more on a
// GPU (src/kernels/stats.ts).
// Every figure is the same bit for bit on every run: the float sums have a fixed order, and the
// histogram's counts are integers (integer atomics add in any order to the same total).
//
// Bindings (params: { n: u32 (elements of x), groups: u32 (G, at most WG), base: u32, hist: u32,
// bins: u32 (0: no histogram) }):
//   x4, x    : the same n values, as array<vec4<f32>> (floor(n / 4), bound as at least one) and as
//              array<f32> (n, for the last n % 4)                       read
//   prev4, prev: the copy, likewise                                    read (stats_partials_delta)
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
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> prev4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> prev: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<Partial>;
@group(0) @binding(6) var<storage, read> partials_in: array<Partial>;
@group(0) @binding(7) var<storage, read_write> values: array<f32>;
@group(0) @binding(8) var<storage, read> values_in: array<f32>;
@group(0) @binding(9) var<storage, read_write> counts: array<atomic<u32>>;

const WG: u32 = 64u;
const MAX_BINS: u32 = 256u;
const BIG: f32 = 3.4e38;

var<workgroup> tree: array<Partial, WG>;
var<workgroup> local_counts: array<atomic<u32>, MAX_BINS>;

fn finite4(v: vec4<f32>) -> vec4<bool> {
  return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7f800000u)) != vec4<u32>(0x7f800000u);
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

// One invocation's running sums, four lanes wide, around the shift k.
struct Sums {
  count: vec4<u32>,
  nonpos: vec4<u32>,
  nonfinite: vec4<u32>,
  s1: vec4<f32>,
  s2: vec4<f32>,
  lo: vec4<f32>,
  hi: vec4<f32>,
  dsq: vec4<f32>,
  psq: vec4<f32>,
  k: f32,
}

fn new_sums() -> Sums {
  let z = vec4<u32>(0u);
  let f = vec4<f32>(0.0);
  return Sums(z, z, z, f, f, vec4<f32>(BIG), vec4<f32>(-BIG), f, f, 0.0);
}

// Add the lanes of v where `valid` holds; non-finite values are only counted.
fn add4(s: ptr<function, Sums>, v: vec4<f32>, valid: vec4<bool>) {
  let fin = finite4(v);
  let f = fin & valid;
  let d = select(vec4<f32>(0.0), v - (*s).k, f);
  (*s).s1 += d;
  (*s).s2 += d * d;
  (*s).count += select(vec4<u32>(0u), vec4<u32>(1u), f);
  (*s).nonfinite += select(vec4<u32>(0u), vec4<u32>(1u), valid & !fin);
  (*s).nonpos += select(vec4<u32>(0u), vec4<u32>(1u), f & (v <= vec4<f32>(0.0)));
  (*s).lo = min((*s).lo, select(vec4<f32>(BIG), v, f));
  (*s).hi = max((*s).hi, select(vec4<f32>(-BIG), v, f));
}

// The change since the copy, over the lanes where `valid` holds.
fn add_delta4(s: ptr<function, Sums>, v: vec4<f32>, p: vec4<f32>, valid: vec4<bool>) {
  let d = select(vec4<f32>(0.0), v - p, valid);
  let q = select(vec4<f32>(0.0), p, valid);
  (*s).dsq += d * d;
  (*s).psq += q * q;
}

fn sum4u(v: vec4<u32>) -> u32 {
  return (v.x + v.y) + (v.z + v.w);
}

fn sum4f(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

fn sums_partial(s: Sums) -> Partial {
  var p = empty();
  p.count = sum4u(s.count);
  p.nonpos = sum4u(s.nonpos);
  p.nonfinite = sum4u(s.nonfinite);
  p.lo = min(min(s.lo.x, s.lo.y), min(s.lo.z, s.lo.w));
  p.hi = max(max(s.hi.x, s.hi.y), max(s.hi.z, s.hi.w));
  p.dsq = sum4f(s.dsq);
  p.psq = sum4f(s.psq);
  if (p.count > 0u) {
    let c = f32(p.count);
    let s1 = sum4f(s.s1);
    p.mean = s.k + s1 / c;
    p.m2 = max(0.0, sum4f(s.s2) - s1 * s1 / c);
  }
  return p;
}

// The last n % 4 values (from the scalar bindings), lanes past n invalid.
fn tail_valid() -> vec4<bool> {
  let start = (params.n / 4u) * 4u;
  return vec4<u32>(start) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.n);
}

fn tail_x() -> vec4<f32> {
  let start = (params.n / 4u) * 4u;
  var t = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (start + j < params.n) { t[j] = x[start + j]; }
  }
  return t;
}

fn tail_prev() -> vec4<f32> {
  let start = (params.n / 4u) * 4u;
  var t = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (start + j < params.n) { t[j] = prev[start + j]; }
  }
  return t;
}

// The shift of invocation `first`: its first value, if finite (else 0).
fn shift_of(first: u32) -> f32 {
  var v = 0.0;
  if (first < params.n / 4u) { v = x4[first].x; } else if (params.n > 0u) { v = x[(params.n / 4u) * 4u]; }
  return select(0.0, v, finite4(vec4<f32>(v)).x);
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
  let first = wid.x * WG + lid;
  var s = new_sums();
  s.k = shift_of(first);
  let n4 = params.n / 4u;
  for (var j = first; j < n4; j += params.groups * WG) {
    add4(&s, x4[j], vec4<bool>(true));
  }
  if (first == 0u && n4 * 4u < params.n) { add4(&s, tail_x(), tail_valid()); }
  reduce_tree(lid, sums_partial(s));
  if (lid == 0u) { partials[wid.x] = tree[0]; }
}

@compute @workgroup_size(WG)
fn stats_partials_delta(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let first = wid.x * WG + lid;
  var s = new_sums();
  s.k = shift_of(first);
  let n4 = params.n / 4u;
  let all = vec4<bool>(true);
  for (var j = first; j < n4; j += params.groups * WG) {
    let v = x4[j];
    add4(&s, v, all);
    add_delta4(&s, v, prev4[j], all);
  }
  if (first == 0u && n4 * 4u < params.n) {
    let t = tail_x();
    add4(&s, t, tail_valid());
    add_delta4(&s, t, tail_prev(), tail_valid());
  }
  reduce_tree(lid, sums_partial(s));
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

// Count the lanes of v where `valid` holds and the value is finite, in bins over [lo, lo + bins / scale].
fn count4(v: vec4<f32>, valid: vec4<bool>, lo: f32, scale: f32) {
  let f = finite4(v) & valid;
  let last = f32(params.bins - 1u);
  let t = clamp(floor((v - vec4<f32>(lo)) * scale), vec4<f32>(0.0), vec4<f32>(last));
  for (var j = 0u; j < 4u; j++) {
    if (f[j]) { atomicAdd(&local_counts[min(u32(t[j]), params.bins - 1u)], 1u); }
  }
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
  let first = wid.x * WG + lid;
  let n4 = params.n / 4u;
  for (var j = first; j < n4; j += params.groups * WG) {
    count4(x4[j], vec4<bool>(true), lo, scale);
  }
  if (first == 0u && n4 * 4u < params.n) { count4(tail_x(), tail_valid(), lo, scale); }
  workgroupBarrier();
  for (var b = lid; b < bins; b += WG) {
    let c = atomicLoad(&local_counts[b]);
    if (c > 0u) { atomicAdd(&counts[params.hist + b], c); }
  }
}
