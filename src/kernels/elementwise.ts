// Elementwise primitive kernels (shaders/elementwise.wgsl): add, multiply and scale, with b
// broadcast along a's leading dimensions, as validated, replayable dispatches. With accumulate they
// add into y: a gradient that accumulates, or an add in place (scaleForward(e, x, y, 1, { accumulate: true })).
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { broadcastGeometry, type AddOptions } from '../ops/elementwise.ts';
import { expectShape, describe } from '../ops/shape.ts';
import { withAccumulate } from './accumulate.ts';

export type { AddOptions } from '../ops/elementwise.ts';

const WG = 256;

async function binary(e: Engine, entry: string, a: Tensor, b: Tensor, y: Tensor, alpha: number, beta: number, opts: AccumulateOptions): Promise<Dispatch> {
  const { n, nb } = broadcastGeometry(`Kernel elementwise.${entry}`, a, b, y);
  const constants: Record<string, number> = { WG };
  if (nb !== n) constants.BROADCAST = 1;
  const k = await e.kernel('elementwise', entry, withAccumulate(constants, opts));
  return e.dispatch(k, { a, b, y }, grid1d(n, WG), { n, nb, alpha, beta });
}

/**
 * y = alpha·a + beta·b (y += ... with accumulate). b has a's shape or a trailing part of it and
 * repeats along a's leading dimensions (a [B, T, D], b [T, D]); y has a's shape. For b's gradient
 * when it broadcasts, sum dy's rows with `biasGrad` (dy viewed as [rows, b.size]).
 */
export async function addForward(e: Engine, a: Tensor, b: Tensor, y: Tensor, opts: AddOptions & AccumulateOptions = {}): Promise<Dispatch> {
  return binary(e, 'add_forward', a, b, y, opts.alpha ?? 1, opts.beta ?? 1, opts);
}

/** y = a·b elementwise (y += ... with accumulate), b broadcast as in `addForward`. */
export async function mulForward(e: Engine, a: Tensor, b: Tensor, y: Tensor, opts: AccumulateOptions = {}): Promise<Dispatch> {
  return binary(e, 'mul_forward', a, b, y, 1, 1, opts);
}

/** y = s·x (a copy when s = 1; y += s·x with accumulate). x and y have one shape. */
export async function scaleForward(e: Engine, x: Tensor, y: Tensor, s: number, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const what = 'Kernel elementwise.scale_forward';
  expectShape(what, y, x.shape, `(the shape of ${describe(x)})`);
  if (!Number.isFinite(s)) throw new Error(`${what}: the scale ${s} must be a finite number (scaling ${describe(x)}).`);
  const k = await e.kernel('elementwise', 'scale_forward', withAccumulate({ WG }, opts));
  return e.dispatch(k, { x, y }, grid1d(x.size, WG), { n: x.size, nb: x.size, alpha: s, beta: 0 });
}

/** y = value everywhere (y += value with accumulate). */
export async function fillForward(e: Engine, y: Tensor, value: number, opts: AccumulateOptions = {}): Promise<Dispatch> {
  if (!Number.isFinite(value)) throw new Error(`Kernel elementwise.fill_forward: the value ${value} must be a finite number (filling ${describe(y)}).`);
  const k = await e.kernel('elementwise', 'fill_forward', withAccumulate({ WG }, opts));
  return e.dispatch(k, { y }, grid1d(y.size, WG), { n: y.size, nb: y.size, alpha: value, beta: 0 });
}
