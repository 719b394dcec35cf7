// Softmax kernels (shaders/softmax.wgsl): row-wise softmax over [B, C] and its backward pass.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import { shapeStr, type Tensor } from '../gpu/tensor.ts';

const WG = 64;

function tensorStr(t: Tensor): string {
  return `"${t.label}" ${shapeStr(t.shape)}`;
}

/** Throws unless `a` is 2-D and `b` has its shape; returns [rows, cols]. */
function sameMatrix(kernel: string, a: Tensor, b: Tensor): [number, number] {
  if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[0] !== b.shape[0] || a.shape[1] !== b.shape[1]) {
    throw new Error(`Kernel ${kernel}: ${tensorStr(a)} and ${tensorStr(b)} must both be [B, C] with the same shape.`);
  }
  return [a.shape[0], a.shape[1]];
}

/** y = softmax(x) over each row (stable: the row maximum is subtracted first). x, y: [B, C]. */
export async function softmaxForward(e: Engine, x: Tensor, y: Tensor): Promise<Dispatch> {
  const [B, C] = sameMatrix('softmax.softmax_forward', x, y);
  const k = await e.kernel('softmax', 'softmax_forward', { WG });
  return e.dispatch(k, { x, y }, grid1d(B, WG), { rows: B, cols: C });
}

/** dx = y * (dy - sum_c dy*y) per row, with y the forward output. y, dy, dx: [B, C]. */
export async function softmaxBackward(e: Engine, y: Tensor, dy: Tensor, dx: Tensor): Promise<Dispatch> {
  const name = 'softmax.softmax_backward';
  const [B, C] = sameMatrix(name, y, dy);
  sameMatrix(name, y, dx);
  const k = await e.kernel('softmax', 'softmax_backward', { WG });
  return e.dispatch(k, { y_in: y, dy, dx }, grid1d(B, WG), { rows: B, cols: C });
}
