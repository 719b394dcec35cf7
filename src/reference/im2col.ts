// CPU reference for shaders/im2col.wgsl: im2col (unfold an NCHW image batch into the [M, K] matrix
// of a convolution as a matmul), col2im (its adjoint, folding [M, K] back into [B, C, H, W] by
// summing) and a batched transpose, in plain loops (col2im sums in float64). Same names and
// argument order as src/kernels/im2col.ts (minus the engine). The shape rules live in
// src/ops/conv.ts.
import { checkCol, checkTranspose, colShape, im2colGeometry, type Conv2dGeometry, type Im2colOptions } from '../ops/conv.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { storeAll, type HostTensor } from './host.ts';

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

/** dx [B, IC, H, W] = the sum of every dcol entry that im2col would have copied from that pixel; overwritten (added to with accumulate). */
export function col2im(dcol: HostTensor, dx: HostTensor, opts: Im2colOptions & AccumulateOptions): void {
  const g = im2colGeometry(REF('col2im'), dx, opts);
  checkCol(REF('col2im'), g, dx, dcol);
  // Scatter form (the GPU gathers): every dcol entry adds itself to the pixel it came from.
  const acc = new Float64Array(dx.data.length);
  colSources(g).forEach((i, o) => {
    if (i >= 0) acc[i] += dcol.data[o];
  });
  storeAll(dx.data, acc, opts.accumulate);
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
