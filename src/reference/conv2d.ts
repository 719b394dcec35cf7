// CPU reference for shaders/conv2d.wgsl: 2-D convolution over NCHW tensors, forward and backward,
// in plain loops with float64 sums. Same names and argument order as src/kernels/conv2d.ts (minus
// the engine). Also home of the convolution shape rules, which the GPU wrappers share, and of the
// host-side tensor type the references take.

/** Anything with a shape and, optionally, a label: a GPU Tensor or a HostTensor. */
export interface Shaped {
  readonly shape: readonly number[];
  readonly label?: string;
}

/**
 * A CPU tensor for the references: row-major data and its shape. float32 data mirrors the GPU;
 * float64 data lets finite-difference checks use tiny steps.
 */
export interface HostTensor extends Shaped {
  readonly data: Float32Array | Float64Array;
}

/** A HostTensor of `shape`, zero-filled or holding a copy of `data`. */
export function hostTensor(shape: readonly number[], data?: ArrayLike<number>, label?: string): HostTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  if (data) {
    if (data.length !== size) throw new Error(`hostTensor "${label ?? 'tensor'}" [${shape.join(', ')}]: ${data.length} values given for ${size}.`);
    out.set(data);
  }
  return { shape: [...shape], data: out, label };
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
    throw new Error(
      `${what}: ${describe(x)} padded by [${padH}, ${padW}] is ${inH + 2 * padH}x${inW + 2 * padW}, smaller than the ${kH}x${kW} kernel of ${describe(w)}.`,
    );
  }
  const outH = Math.floor((inH + 2 * padH - kH) / strideH) + 1;
  const outW = Math.floor((inW + 2 * padW - kW) / strideW) + 1;
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

/** dx from dy: each dy element spreads back through the weights onto the inputs it saw. */
export function conv2dBackwardInput(dy: HostTensor, w: HostTensor, dx: HostTensor, opts: Conv2dOptions = {}): void {
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
  dx.data.set(acc);
}

/** dw[oc, ic, kh, kw] = sum over b, oh, ow of dy * the input it saw; db[oc] = sum of dy over b, oh, ow. Both overwritten. */
export function conv2dBackwardWeight(x: HostTensor, dy: HostTensor, dw: HostTensor, db: HostTensor | null, opts: Conv2dOptions = {}): void {
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
          dw.data[((oc * g.inC + ic) * g.kH + kh) * g.kW + kw] = s;
        }
      }
    }
    if (db) {
      let s = 0;
      for (let n = 0; n < g.batch; n++) {
        for (let i = 0; i < g.outH * g.outW; i++) s += dy.data[(n * g.outC + oc) * g.outH * g.outW + i];
      }
      db.data[oc] = s;
    }
  }
}
