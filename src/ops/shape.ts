// Shapes and the checks every layer of the system shares (kernel wrappers, layers, the CPU
// reference): sizes, how error messages name a tensor, and rank and shape expectations.

export type Shape = readonly number[];

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function checkShape(shape: Shape, what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 1) throw new Error(`${what}: shape ${shapeStr(shape)} has a dimension that is not a positive integer.`);
  }
}

/** Anything with a shape and, optionally, a label: a GPU Tensor or a HostTensor. */
export interface Shaped {
  readonly shape: readonly number[];
  readonly label?: string;
}

/** `"x" [2, 3, 8, 8]`: how error messages name a tensor. */
export function describe(t: Shaped): string {
  return `"${t.label ?? 'tensor'}" [${t.shape.join(', ')}]`;
}

/** Throws `<what>: <t> should be <want> <why>` unless t has exactly the shape `want`. */
export function expectShape(what: string, t: Shaped, want: readonly number[], why: string): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new Error(`${what}: ${describe(t)} should be [${want.join(', ')}] ${why}.`);
  }
}

export function expectRank(what: string, t: Shaped, rank: number, layout: string): void {
  if (t.shape.length !== rank) throw new Error(`${what}: ${describe(t)} must have rank ${rank} (${layout}).`);
}

/** A (height, width) pair from a number or a pair; checks that both are integers >= min. */
export function pair(v: number | readonly [number, number] | undefined, fallback: number, what: string, name: string, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  for (const d of p) {
    if (!Number.isInteger(d) || d < min) throw new Error(`${what}: ${name} ${JSON.stringify(v)} must be an integer >= ${min}, or a pair of them.`);
  }
  return p;
}

/**
 * How many positions a window of size k takes along an axis of n values padded by p on each side,
 * moving by s: floor((n + 2p - k) / s) + 1; 0 when the window does not fit. Convolutions, pooling
 * and im2col all use this one rule.
 */
export function windowPositions(n: number, k: number, s: number, p: number): number {
  return n + 2 * p < k ? 0 : Math.floor((n + 2 * p - k) / s) + 1;
}
