// CPU reference for shaders/pool.wgsl: max, average and global average pooling over NCHW tensors,
// forward and backward, in plain loops with float64 sums. Same names and argument order as
// src/kernels/pool.ts (minus the engine). Also home of the pooling shape rules, which the GPU
// wrappers share.
import { describe, expectRank, expectShape, pair, type HostTensor, type Shaped } from './conv2d.ts';

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
  const outH = Math.floor((inH + 2 * padH - kH) / strideH) + 1;
  const outW = Math.floor((inW + 2 * padW - kW) / strideW) + 1;
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

const REF = (name: string) => `Reference ${name}`;

/** Input rows [start, end) that window o covers inside the input, along one axis. */
function windowRange(o: number, k: number, s: number, pad: number, n: number): [number, number] {
  const start = o * s - pad;
  return [Math.max(start, 0), Math.min(start + k, n)];
}

/** y = max over each window; argmax = ih*W + iw of the first maximum, within its (b, c) plane. */
export function maxPool2dForward(x: HostTensor, y: HostTensor, argmax: HostTensor, opts: Pool2dOptions): void {
  const what = REF('maxPool2dForward');
  const g = pool2dGeometry(what, x, opts);
  checkPoolOutput(what, g, x, y);
  checkPoolOutput(what, g, x, argmax);
  for (let bc = 0; bc < g.batch * g.channels; bc++) {
    for (let oh = 0; oh < g.outH; oh++) {
      const [h0, h1] = windowRange(oh, g.kH, g.strideH, g.padH, g.inH);
      for (let ow = 0; ow < g.outW; ow++) {
        const [w0, w1] = windowRange(ow, g.kW, g.strideW, g.padW, g.inW);
        let best = -Infinity;
        let at = h0 * g.inW + w0;
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) {
            const v = x.data[bc * g.inH * g.inW + ih * g.inW + iw];
            if (v > best) {
              best = v;
              at = ih * g.inW + iw;
            }
          }
        }
        const o = (bc * g.outH + oh) * g.outW + ow;
        y.data[o] = best;
        argmax.data[o] = at;
      }
    }
  }
}

/** dx = dy routed back to each window's argmax (summed where windows overlap); dx is overwritten. */
export function maxPool2dBackward(dy: HostTensor, argmax: HostTensor, dx: HostTensor, opts: Pool2dOptions): void {
  const what = REF('maxPool2dBackward');
  const g = pool2dGeometry(what, dx, opts);
  checkPoolOutput(what, g, dx, dy);
  checkPoolOutput(what, g, dx, argmax);
  dx.data.fill(0);
  const plane = g.outH * g.outW;
  for (let o = 0; o < dy.data.length; o++) {
    const bc = Math.floor(o / plane);
    dx.data[bc * g.inH * g.inW + argmax.data[o]] += dy.data[o];
  }
}

function avgDivisor(g: Pool2dGeometry, oh: number, ow: number, countIncludePad: boolean): number {
  if (countIncludePad) return g.kH * g.kW;
  const [h0, h1] = windowRange(oh, g.kH, g.strideH, g.padH, g.inH);
  const [w0, w1] = windowRange(ow, g.kW, g.strideW, g.padW, g.inW);
  return (h1 - h0) * (w1 - w0);
}

/** y = mean over each window (see AvgPool2dOptions.countIncludePad for the divisor). */
export function avgPool2dForward(x: HostTensor, y: HostTensor, opts: AvgPool2dOptions): void {
  const what = REF('avgPool2dForward');
  const g = pool2dGeometry(what, x, opts);
  checkPoolOutput(what, g, x, y);
  for (let bc = 0; bc < g.batch * g.channels; bc++) {
    for (let oh = 0; oh < g.outH; oh++) {
      const [h0, h1] = windowRange(oh, g.kH, g.strideH, g.padH, g.inH);
      for (let ow = 0; ow < g.outW; ow++) {
        const [w0, w1] = windowRange(ow, g.kW, g.strideW, g.padW, g.inW);
        let s = 0;
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) s += x.data[bc * g.inH * g.inW + ih * g.inW + iw];
        }
        y.data[(bc * g.outH + oh) * g.outW + ow] = s / avgDivisor(g, oh, ow, opts.countIncludePad ?? true);
      }
    }
  }
}

/** dx = each window's dy / divisor spread over the window's input elements; dx is overwritten. */
export function avgPool2dBackward(dy: HostTensor, dx: HostTensor, opts: AvgPool2dOptions): void {
  const what = REF('avgPool2dBackward');
  const g = pool2dGeometry(what, dx, opts);
  checkPoolOutput(what, g, dx, dy);
  const acc = new Float64Array(dx.data.length); // [B, C, H, W]
  for (let bc = 0; bc < g.batch * g.channels; bc++) {
    for (let oh = 0; oh < g.outH; oh++) {
      const [h0, h1] = windowRange(oh, g.kH, g.strideH, g.padH, g.inH);
      for (let ow = 0; ow < g.outW; ow++) {
        const [w0, w1] = windowRange(ow, g.kW, g.strideW, g.padW, g.inW);
        const share = dy.data[(bc * g.outH + oh) * g.outW + ow] / avgDivisor(g, oh, ow, opts.countIncludePad ?? true);
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) acc[bc * g.inH * g.inW + ih * g.inW + iw] += share;
        }
      }
    }
  }
  dx.data.set(acc);
}

/** y[b, c] = mean of x[b, c, :, :]. */
export function globalAvgPoolForward(x: HostTensor, y: HostTensor): void {
  checkGlobalPool(REF('globalAvgPoolForward'), x, y);
  const hw = x.shape[2] * x.shape[3];
  for (let i = 0; i < y.data.length; i++) {
    let s = 0;
    for (let j = 0; j < hw; j++) s += x.data[i * hw + j];
    y.data[i] = s / hw;
  }
}

/** dx[b, c, h, w] = dy[b, c] / (H*W). */
export function globalAvgPoolBackward(dy: HostTensor, dx: HostTensor): void {
  checkGlobalPool(REF('globalAvgPoolBackward'), dx, dy);
  const hw = dx.shape[2] * dx.shape[3];
  for (let i = 0; i < dx.data.length; i++) dx.data[i] = dy.data[Math.floor(i / hw)] / hw;
}
