// CPU reference for shaders/pool.wgsl: max, average and global average pooling over NCHW tensors,
// forward and backward, in plain loops with float64 sums. Same names and argument order as
// src/kernels/pool.ts (minus the engine). The shape rules live in src/ops/pooling.ts.
import { checkGlobalPool, checkPoolOutput, pool2dGeometry, type AvgPool2dOptions, type Pool2dGeometry, type Pool2dOptions } from '../ops/pooling.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { store, storeAll, type HostTensor } from './host.ts';

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

/** dx = dy routed back to each window's argmax (summed where windows overlap); dx is overwritten (added to with accumulate). */
export function maxPool2dBackward(dy: HostTensor, argmax: HostTensor, dx: HostTensor, opts: Pool2dOptions & AccumulateOptions): void {
  const what = REF('maxPool2dBackward');
  const g = pool2dGeometry(what, dx, opts);
  checkPoolOutput(what, g, dx, dy);
  checkPoolOutput(what, g, dx, argmax);
  const acc = new Float64Array(dx.data.length); // [B, C, H, W]
  const plane = g.outH * g.outW;
  for (let o = 0; o < dy.data.length; o++) {
    const bc = Math.floor(o / plane);
    acc[bc * g.inH * g.inW + argmax.data[o]] += dy.data[o];
  }
  storeAll(dx.data, acc, opts.accumulate);
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

/** dx = each window's dy / divisor spread over the window's input elements; dx is overwritten (added to with accumulate). */
export function avgPool2dBackward(dy: HostTensor, dx: HostTensor, opts: AvgPool2dOptions & AccumulateOptions): void {
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
  storeAll(dx.data, acc, opts.accumulate);
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

/** dx[b, c, h, w] = dy[b, c] / (H*W) (dx += with accumulate). */
export function globalAvgPoolBackward(dy: HostTensor, dx: HostTensor, opts: AccumulateOptions = {}): void {
  checkGlobalPool(REF('globalAvgPoolBackward'), dx, dy);
  const hw = dx.shape[2] * dx.shape[3];
  for (let i = 0; i < dx.data.length; i++) store(dx.data, i, dy.data[Math.floor(i / hw)] / hw, opts.accumulate);
}
