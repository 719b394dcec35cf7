// 2-D convolution kernels over NCHW tensors (shaders/conv2d.wgsl): shape checks and validated,
// replayable dispatches for the forward pass and both gradients. Direct convolution with register
// blocks of 8x8 outputs per invocation; no scratch buffers, no atomics.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { checkConvTensors, conv2dGeometry, type Conv2dGeometry, type Conv2dOptions } from '../ops/conv.ts';
import { withAccumulate } from './accumulate.ts';

export { conv2dOutputShape, type Conv2dOptions } from '../ops/conv.ts';

/** Invocations per workgroup of the forward and input-gradient kernels. */
const WG = 64;
/**
 * Invocations per workgroup of the weight-gradient kernels (RW in the shader): how many split one
 * 8x8 block's sum before the workgroup tree adds them. On a CPU adapter the tree's workgroup
 * memory and barriers cost more than they save: 4 (one SIMD group) measured fastest on
 * SwiftShader (figures in bench/README.md). GPUs want many more threads per block; 64 there is a
 * guess, not a measurement.
 */
function weightGradInvocations(e: Engine): number {
  return e.adapter.isSoftware ? 4 : 64;
}
/** Each invocation owns an 8 (channels) x 8 (columns) block of outputs; BS in the shader. */
const BLOCK = 8;

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** The shader's params uniform for a geometry (for callers that dispatch conv2d entries themselves: tests, tuners). */
export function conv2dParams(g: Conv2dGeometry, relu = false): Record<string, number> {
  return {
    batch: g.batch,
    in_c: g.inC,
    in_h: g.inH,
    in_w: g.inW,
    out_c: g.outC,
    out_h: g.outH,
    out_w: g.outW,
    k_h: g.kH,
    k_w: g.kW,
    stride_h: g.strideH,
    stride_w: g.strideW,
    pad_h: g.padH,
    pad_w: g.padW,
    relu: relu ? 1 : 0,
  };
}

/**
 * y = conv2d(x, w) + b (ReLU'd when `opts.relu`).
 * x [B, IC, H, W], w [OC, IC, KH, KW], b [OC] or null, y [B, OC, OH, OW] with
 * OH = floor((H + 2 ph - KH) / sh) + 1 (same for W); zero padding.
 */
export async function conv2dForward(e: Engine, x: Tensor, w: Tensor, b: Tensor | null, y: Tensor, opts: Conv2dOptions = {}): Promise<Dispatch> {
  const entry = b ? 'conv2d_forward_bias' : 'conv2d_forward';
  const what = `Kernel conv2d.${entry}`;
  const g = conv2dGeometry(what, x, w, opts);
  checkConvTensors(what, g, x, w, y, b);
  const k = await e.kernel('conv2d', entry, { WG });
  const invocations = g.batch * ceilDiv(g.outC, BLOCK) * g.outH * ceilDiv(g.outW, BLOCK);
  const buffers: Record<string, Tensor> = b ? { x, w, bias: b, y } : { x, w, y };
  return e.dispatch(k, buffers, grid1d(invocations, WG), conv2dParams(g, opts.relu));
}

/**
 * dx = gradient of the loss with respect to the convolution's input, from dy [B, OC, OH, OW] and
 * w [OC, IC, KH, KW]; dx [B, IC, H, W] is overwritten (added to with accumulate). Gather form: each
 * dx element is summed by one invocation. `opts.relu` is ignored (apply the ReLU gradient to dy first).
 */
export async function conv2dBackwardInput(e: Engine, dy: Tensor, w: Tensor, dx: Tensor, opts: Conv2dOptions & AccumulateOptions = {}): Promise<Dispatch> {
  const what = 'Kernel conv2d.conv2d_backward_input';
  const g = conv2dGeometry(what, dx, w, opts);
  checkConvTensors(what, g, dx, w, dy, null);
  const k = await e.kernel('conv2d', 'conv2d_backward_input', withAccumulate({ WG }, opts));
  const invocations = g.batch * ceilDiv(g.inC, BLOCK) * g.inH * ceilDiv(g.inW, BLOCK);
  return e.dispatch(k, { dy, w, dx }, grid1d(invocations, WG), conv2dParams(g));
}

/**
 * dw [OC, IC, KH, KW] = sum over B, OH, OW of dy times the input each weight saw; db [OC] (when
 * given) = sum of dy over B, OH, OW. Both are overwritten, or both added to with accumulate.
 * x [B, IC, H, W], dy [B, OC, OH, OW].
 */
export async function conv2dBackwardWeight(e: Engine, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor | null, opts: Conv2dOptions & AccumulateOptions = {}): Promise<Dispatch> {
  const entry = db ? 'conv2d_backward_weight_bias' : 'conv2d_backward_weight';
  const what = `Kernel conv2d.${entry}`;
  const g = conv2dGeometry(what, x, dw, opts);
  checkConvTensors(what, g, x, dw, dy, db);
  const RW = weightGradInvocations(e);
  const k = await e.kernel('conv2d', entry, withAccumulate({ RW }, opts));
  const blocks = ceilDiv(g.outC, BLOCK) * ceilDiv(g.inC * g.kH * g.kW, BLOCK);
  const buffers: Record<string, Tensor> = db ? { x, dy, dw, db } : { x, dy, dw };
  return e.dispatch(k, buffers, grid1d(blocks * RW, RW), conv2dParams(g));
}
