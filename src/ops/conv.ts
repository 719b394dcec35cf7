// Convolution geometry: output sizes from a window (kernel, stride, padding), the checks every
// conv entry shares, and the shape rules of im2col / col2im and the batched transpose. Kernel
// wrappers, layers and the CPU reference all use these.
import { describe, expectRank, expectShape, pair, windowPositions, type Shaped } from './shape.ts';

export interface Conv2dOptions {
  /** Stride (sh, sw) or one number for both; default 1. */
  stride?: number | readonly [number, number];
  /** Zero padding on each side (ph, pw) or one number for both; default 0. */
  padding?: number | readonly [number, number];
  /** Apply ReLU to the forward output (fused); default false. */
  relu?: boolean;
}

/** Every size a convolution needs, derived from x [B, IC, H, W] and w [OC, IC, KH, KW]. */
export interface Conv2dGeometry {
  batch: number;
  inC: number;
  inH: number;
  inW: number;
  outC: number;
  outH: number;
  outW: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
}

/**
 * Check x [B, IC, H, W] against w [OC, IC, KH, KW] and derive the output size
 * OH = floor((H + 2 PH - KH) / SH) + 1 (same for W). Errors start with `what` (the kernel's name)
 * and name both tensors with their shapes.
 */
export function conv2dGeometry(what: string, x: Shaped, w: Shaped, opts: Conv2dOptions = {}): Conv2dGeometry {
  expectRank(what, x, 4, 'NCHW: [B, C, H, W]');
  expectRank(what, w, 4, 'weights: [OC, IC, KH, KW]');
  const [batch, inC, inH, inW] = x.shape;
  const [outC, wIC, kH, kW] = w.shape;
  if (wIC !== inC) throw new Error(`${what}: ${describe(x)} has ${inC} channels but ${describe(w)} ([OC, IC, KH, KW]) takes ${wIC}.`);
  const [strideH, strideW] = pair(opts.stride, 1, what, 'stride', 1);
  const [padH, padW] = pair(opts.padding, 0, what, 'padding', 0);
  if (inH + 2 * padH < kH || inW + 2 * padW < kW) {
    throw new Error(`${what}: ${describe(x)} padded by [${padH}, ${padW}] is ${inH + 2 * padH}x${inW + 2 * padW}, smaller than the ${kH}x${kW} kernel of ${describe(w)}.`);
  }
  const outH = windowPositions(inH, kH, strideH, padH);
  const outW = windowPositions(inW, kW, strideW, padW);
  return { batch, inC, inH, inW, outC, outH, outW, kH, kW, strideH, strideW, padH, padW };
}

/** [B, OC, OH, OW] for x [B, IC, H, W] and w [OC, IC, KH, KW]. */
export function conv2dOutputShape(xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): [number, number, number, number] {
  const g = conv2dGeometry('conv2d', { shape: xShape, label: 'x' }, { shape: wShape, label: 'w' }, opts);
  return [g.batch, g.outC, g.outH, g.outW];
}

/** The checks every conv entry shares: dy/y is [B, OC, OH, OW], bias/db is [OC]. */
export function checkConvTensors(what: string, g: Conv2dGeometry, x: Shaped, w: Shaped, out: Shaped, bias: Shaped | null): void {
  expectShape(what, out, [g.batch, g.outC, g.outH, g.outW], `for ${describe(x)} and ${describe(w)}`);
  if (bias) expectShape(what, bias, [g.outC], `(one per output channel of ${describe(w)})`);
}

/** A convolution's window: the kernel size, stride and padding (no channels: im2col does not need them). */
export interface Im2colOptions {
  /** Kernel (KH, KW) or one number for both. */
  kernel: number | readonly [number, number];
  /** Stride (SH, SW) or one number for both; default 1. */
  stride?: number | readonly [number, number];
  /** Zero padding on each side (PH, PW) or one number for both; default 0. */
  padding?: number | readonly [number, number];
}

/**
 * The convolution geometry of x [B, IC, H, W] under a KH x KW window (out_c is 1: unused), checked
 * by conv2dGeometry, so the size rules and their errors are the convolution's. `what` names the
 * kernel in errors.
 */
export function im2colGeometry(what: string, x: Shaped, opts: Im2colOptions): Conv2dGeometry {
  expectRank(what, x, 4, 'NCHW: [B, C, H, W]');
  const [kH, kW] = pair(opts.kernel, 1, what, 'kernel', 1);
  const window = { shape: [1, x.shape[1], kH, kW], label: `${kH}x${kW} window` };
  return conv2dGeometry(what, x, window, opts);
}

/** [M, K] = [B*OH*OW, IC*KH*KW]: the shape of col for a geometry. */
export function colShape(g: Conv2dGeometry): [number, number] {
  return [g.batch * g.outH * g.outW, g.inC * g.kH * g.kW];
}

/** col (or dcol) must be [B*OH*OW, IC*KH*KW] for x (or dx). */
export function checkCol(what: string, g: Conv2dGeometry, x: Shaped, col: Shaped): void {
  const [M, K] = colShape(g);
  expectShape(what, col, [M, K], `([B*OH*OW, IC*KH*KW] for ${describe(x)} under a ${g.kH}x${g.kW} window, stride [${g.strideH}, ${g.strideW}], padding [${g.padH}, ${g.padW}])`);
}

/** [batch, rows, cols] of src, checking that dst is [batch, cols, rows]. */
export function checkTranspose(what: string, src: Shaped, dst: Shaped): [number, number, number] {
  expectRank(what, src, 3, '[batch, rows, cols]');
  const [batch, rows, cols] = src.shape;
  expectShape(what, dst, [batch, cols, rows], `(${describe(src)} transposed per batch)`);
  return [batch, rows, cols];
}
