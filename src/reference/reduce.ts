// CPU reference for shaders/reduce.wgsl: plain loops, float64 sums, same names and argument order
// as src/kernels/reduce.ts (minus the engine).

/** acc[slot] += sum(x). x: [n], acc: [k] with slot < k. */
export function sumAccumulate(x: ArrayLike<number>, acc: Float32Array | Float64Array, slot: number): void {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  acc[slot] += s;
}

/** out[b] = index of the largest x[b, c] (first one on ties). x: [B, C], out: [B]. */
export function argmaxRows(x: ArrayLike<number>, out: Float32Array | Float64Array): void {
  const B = out.length;
  const C = x.length / B;
  for (let b = 0; b < B; b++) {
    let best = x[b * C];
    let arg = 0;
    for (let c = 1; c < C; c++) {
      if (x[b * C + c] > best) {
        best = x[b * C + c];
        arg = c;
      }
    }
    out[b] = arg;
  }
}
