// CPU reference for shaders/im2col.wgsl: im2col (unfold an NCHW image batch into the [M, K] matrix
// of a convolution as a matmul), col2im (its adjoint, folding [M, K] back into [B, C, H, W] by
// summing) and a batched transpose, in plain loops (col2im sums in float64). Same names and
// argument order as src/kernels/im2col.ts (minus the engine). Also home of their shape rules,
// which the GPU wrappers share.
import { conv2dGeometry, describe, expectRank, expectShape, pair, type Conv2dGeometry, type HostTensor, type Shaped } from './conv2d.ts';

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

const REF = (name: string) => `Reference ${name}`;

/**
 * For each entry of col, in order, the index into x it copies, or -1 where its window lies in
 * the padding: the one mapping that im2col reads through and col2im sums back through.
 */
function colSources(g: Conv2dGeometry): Int32Array {
  const src = new Int32Array(colShape(g).reduce((a, b) => a * b, 1));
  let o = 0;
  for (let b = 0; b < g.batch; b++) {
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        for (let ic = 0; ic < g.inC; ic++) {
          for (let kh = 0; kh < g.kH; kh++) {
            const ih = oh * g.strideH - g.padH + kh;
            for (let kw = 0; kw < g.kW; kw++) {
              const iw = ow * g.strideW - g.padW + kw;
              const inside = ih >= 0 && ih < g.inH && iw >= 0 && iw < g.inW;
              src[o++] = inside ? ((b * g.inC + ic) * g.inH + ih) * g.inW + iw : -1;
            }
          }
        }
      }
    }
  }
  return src;
}

/** col[(b, oh, ow), (ic, kh, kw)] = x[b, ic, oh*SH - PH + kh, ow*SW - PW + kw], 0 in the padding. */
export function im2col(x: HostTensor, col: HostTensor, opts: Im2colOptions): void {
  const g = im2colGeometry(REF('im2col'), x, opts);
  checkCol(REF('im2col'), g, x, col);
  colSources(g).forEach((i, o) => {
    col.data[o] = i >= 0 ? x.data[i] : 0;
  });
}

/** dx [B, IC, H, W] = the sum of every dcol entry that im2col would have copied from that pixel; overwritten. */
export function col2im(dcol: HostTensor, dx: HostTensor, opts: Im2colOptions): void {
  const g = im2colGeometry(REF('col2im'), dx, opts);
  checkCol(REF('col2im'), g, dx, dcol);
  // Scatter form (the GPU gathers): every dcol entry adds itself to the pixel it came from.
  const acc = new Float64Array(dx.data.length);
  colSources(g).forEach((i, o) => {
    if (i >= 0) acc[i] += dcol.data[o];
  });
  dx.data.set(acc);
}

/** dst [batch, cols, rows] = src [batch, rows, cols] transposed per batch. */
export function transposeBatched(src: HostTensor, dst: HostTensor): void {
  const [batch, rows, cols] = checkTranspose(REF('transposeBatched'), src, dst);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) dst.data[(b * cols + c) * rows + r] = src.data[(b * rows + r) * cols + c];
    }
  }
}
