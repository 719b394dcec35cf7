// Pooling geometry: window sizes, output shapes and the checks the pooling kernels share, for
// the GPU wrappers, the layers and the CPU reference alike.
import { describe, expectRank, expectShape, pair, windowPositions, type Shaped } from './shape.ts';

export interface Pool2dOptions {
  /** Window (kh, kw), or one number for both. */
  kernel: number | readonly [number, number];
  /** Stride (sh, sw) or one number; default: the window size. */
  stride?: number | readonly [number, number];
  /** Padding on each side (ph, pw) or one number; default 0. At most half the window, as in PyTorch. */
  padding?: number | readonly [number, number];
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /**
   * Divide by the whole window, padding included (PyTorch's count_include_pad=True, the default),
   * or only by the window elements inside the input (false). Same thing when padding is 0.
   */
  countIncludePad?: boolean;
}

/** Every size a pooling kernel needs. */
export interface Pool2dGeometry {
  batch: number;
  channels: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
}

/** Check x [B, C, H, W] against the window and derive OH = floor((H + 2 PH - KH) / SH) + 1 (same for W). */
export function pool2dGeometry(what: string, x: Shaped, opts: Pool2dOptions): Pool2dGeometry {
  expectRank(what, x, 4, 'NCHW: [B, C, H, W]');
  const [batch, channels, inH, inW] = x.shape;
  const [kH, kW] = pair(opts.kernel, 1, what, 'kernel', 1);
  const [strideH, strideW] = opts.stride === undefined ? [kH, kW] : pair(opts.stride, 1, what, 'stride', 1);
  const [padH, padW] = pair(opts.padding, 0, what, 'padding', 0);
  if (2 * padH > kH || 2 * padW > kW) {
    throw new Error(`${what}: padding [${padH}, ${padW}] is more than half the ${kH}x${kW} window (for ${describe(x)}).`);
  }
  if (inH + 2 * padH < kH || inW + 2 * padW < kW) {
    throw new Error(`${what}: ${describe(x)} padded by [${padH}, ${padW}] is ${inH + 2 * padH}x${inW + 2 * padW}, smaller than the ${kH}x${kW} window.`);
  }
  const outH = windowPositions(inH, kH, strideH, padH);
  const outW = windowPositions(inW, kW, strideW, padW);
  return { batch, channels, inH, inW, outH, outW, kH, kW, strideH, strideW, padH, padW };
}

/** [B, C, OH, OW] for x [B, C, H, W]. */
export function pool2dOutputShape(xShape: readonly number[], opts: Pool2dOptions): [number, number, number, number] {
  const g = pool2dGeometry('pool2d', { shape: xShape, label: 'x' }, opts);
  return [g.batch, g.channels, g.outH, g.outW];
}

/** Throws unless `out` is [B, C, OH, OW] for x. */
export function checkPoolOutput(what: string, g: Pool2dGeometry, x: Shaped, out: Shaped): void {
  const why = `for ${describe(x)} with a ${g.kH}x${g.kW} window, stride [${g.strideH}, ${g.strideW}], padding [${g.padH}, ${g.padW}]`;
  expectShape(what, out, [g.batch, g.channels, g.outH, g.outW], why);
}

/** Throws unless x is [B, C, H, W] and y is [B, C]. */
export function checkGlobalPool(what: string, x: Shaped, y: Shaped): void {
  expectRank(what, x, 4, 'NCHW: [B, C, H, W]');
  expectShape(what, y, [x.shape[0], x.shape[1]], `for ${describe(x)} (one value per image and channel)`);
}
