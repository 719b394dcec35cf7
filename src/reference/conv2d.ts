// CPU reference for shaders/conv2d.wgsl: 2-D convolution over NCHW tensors, forward and backward,
// in plain loops with float64 sums. Same names and argument order as src/kernels/conv2d.ts (minus
// the engine). The shape rules live in src/ops/conv.ts.
import { checkConvTensors, conv2dGeometry, type Conv2dOptions } from '../ops/conv.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { store, storeAll, type HostTensor } from './host.ts';

const REF = (name: string) => `Reference ${name}`;

/** y = conv(x, w) + b, optionally followed by ReLU. x [B, IC, H, W], w [OC, IC, KH, KW], b [OC] or null, y [B, OC, OH, OW]. */
export function conv2dForward(x: HostTensor, w: HostTensor, b: HostTensor | null, y: HostTensor, opts: Conv2dOptions = {}): void {
  const g = conv2dGeometry(REF('conv2dForward'), x, w, opts);
  checkConvTensors(REF('conv2dForward'), g, x, w, y, b);
  for (let n = 0; n < g.batch; n++) {
    for (let oc = 0; oc < g.outC; oc++) {
      for (let oh = 0; oh < g.outH; oh++) {
        for (let ow = 0; ow < g.outW; ow++) {
          let s = b ? b.data[oc] : 0;
          for (let ic = 0; ic < g.inC; ic++) {
            for (let kh = 0; kh < g.kH; kh++) {
              const ih = oh * g.strideH - g.padH + kh;
              if (ih < 0 || ih >= g.inH) continue;
              for (let kw = 0; kw < g.kW; kw++) {
                const iw = ow * g.strideW - g.padW + kw;
                if (iw < 0 || iw >= g.inW) continue;
                s += w.data[((oc * g.inC + ic) * g.kH + kh) * g.kW + kw] * x.data[((n * g.inC + ic) * g.inH + ih) * g.inW + iw];
              }
            }
          }
          if (opts.relu && s < 0) s = 0;
          y.data[((n * g.outC + oc) * g.outH + oh) * g.outW + ow] = s;
        }
      }
    }
  }
}

/** dx from dy: each dy element spreads back through the weights onto the inputs it saw (dx += with accumulate). */
export function conv2dBackwardInput(dy: HostTensor, w: HostTensor, dx: HostTensor, opts: Conv2dOptions & AccumulateOptions = {}): void {
  const g = conv2dGeometry(REF('conv2dBackwardInput'), dx, w, opts);
  checkConvTensors(REF('conv2dBackwardInput'), g, dx, w, dy, null);
  const acc = new Float64Array(dx.data.length); // [B, IC, H, W]
  for (let n = 0; n < g.batch; n++) {
    for (let oc = 0; oc < g.outC; oc++) {
      for (let oh = 0; oh < g.outH; oh++) {
        for (let ow = 0; ow < g.outW; ow++) {
          const d = dy.data[((n * g.outC + oc) * g.outH + oh) * g.outW + ow];
          for (let ic = 0; ic < g.inC; ic++) {
            for (let kh = 0; kh < g.kH; kh++) {
              const ih = oh * g.strideH - g.padH + kh;
              if (ih < 0 || ih >= g.inH) continue;
              for (let kw = 0; kw < g.kW; kw++) {
                const iw = ow * g.strideW - g.padW + kw;
                if (iw < 0 || iw >= g.inW) continue;
                acc[((n * g.inC + ic) * g.inH + ih) * g.inW + iw] += d * w.data[((oc * g.inC + ic) * g.kH + kh) * g.kW + kw];
              }
            }
          }
        }
      }
    }
  }
  storeAll(dx.data, acc, opts.accumulate);
}

/**
 * dw[oc, ic, kh, kw] = sum over b, oh, ow of dy * the input it saw; db[oc] = sum of dy over b, oh, ow.
 * Both overwritten, or both added to with accumulate.
 */
export function conv2dBackwardWeight(x: HostTensor, dy: HostTensor, dw: HostTensor, db: HostTensor | null, opts: Conv2dOptions & AccumulateOptions = {}): void {
  const g = conv2dGeometry(REF('conv2dBackwardWeight'), x, dw, opts);
  checkConvTensors(REF('conv2dBackwardWeight'), g, x, dw, dy, db);
  for (let oc = 0; oc < g.outC; oc++) {
    for (let ic = 0; ic < g.inC; ic++) {
      for (let kh = 0; kh < g.kH; kh++) {
        for (let kw = 0; kw < g.kW; kw++) {
          let s = 0;
          for (let n = 0; n < g.batch; n++) {
            for (let oh = 0; oh < g.outH; oh++) {
              const ih = oh * g.strideH - g.padH + kh;
              if (ih < 0 || ih >= g.inH) continue;
              for (let ow = 0; ow < g.outW; ow++) {
                const iw = ow * g.strideW - g.padW + kw;
                if (iw < 0 || iw >= g.inW) continue;
                s += dy.data[((n * g.outC + oc) * g.outH + oh) * g.outW + ow] * x.data[((n * g.inC + ic) * g.inH + ih) * g.inW + iw];
              }
            }
          }
          store(dw.data, ((oc * g.inC + ic) * g.kH + kh) * g.kW + kw, s, opts.accumulate);
        }
      }
    }
    if (db) {
      let s = 0;
      for (let n = 0; n < g.batch; n++) {
        for (let i = 0; i < g.outH * g.outW; i++) s += dy.data[(n * g.outC + oc) * g.outH * g.outW + i];
      }
      store(db.data, oc, s, opts.accumulate);
    }
  }
}
