// Elementwise activation kernels (shaders/activation.wgsl): build validated dispatches.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import { shaderSource } from '../gpu/shaders.ts';
import { shapeStr, type Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import type { Activation } from '../ops/activation.ts';
import { withAccumulate } from './accumulate.ts';

export { ACTIVATIONS, type Activation } from '../ops/activation.ts';

const WG = 256;

/**
 * The id of an activation in kernels that take it as an override constant (matmul's ACT): the
 * `ACT_<NAME>` constant of shaders/_activation.wgsl, where the ids are defined and nowhere else.
 */
export function activationId(act: Activation): number {
  const name = `ACT_${act.toUpperCase()}`;
  const m = new RegExp(`^const ${name}: u32 = (\\d+)u;`, 'm').exec(shaderSource('_activation'));
  if (!m) throw new Error(`shaders/_activation.wgsl declares no ${name} (the id of activation "${act}").`);
  return Number(m[1]);
}

function sameSize(kernel: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) {
    throw new Error(`Kernel ${kernel}: "${a.label}" ${shapeStr(a.shape)} and "${b.label}" ${shapeStr(b.shape)} must have the same number of elements.`);
  }
}

/** y = act(x). `alpha` is LeakyReLU's negative slope (ignored by the others). */
export async function activationForward(e: Engine, act: Activation, x: Tensor, y: Tensor, alpha = 0.01): Promise<Dispatch> {
  const k = await e.kernel('activation', `${act}_forward`, { WG });
  sameSize(k.name, x, y);
  const params: Record<string, number> = { n: x.size };
  if (k.uniform?.members.has('alpha')) params.alpha = alpha;
  return e.dispatch(k, { x, y }, grid1d(x.size, WG), params);
}

/** dx = dy * act'(x), with x the forward input (dx += ... with accumulate). */
export async function activationBackward(e: Engine, act: Activation, x: Tensor, dy: Tensor, dx: Tensor, alpha = 0.01, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const k = await e.kernel('activation', `${act}_backward`, withAccumulate({ WG }, opts));
  sameSize(k.name, x, dy);
  sameSize(k.name, x, dx);
  const params: Record<string, number> = { n: x.size };
  if (k.uniform?.members.has('alpha')) params.alpha = alpha;
  return e.dispatch(k, { x, dy, dx }, grid1d(x.size, WG), params);
}

export const reluForward = (e: Engine, x: Tensor, y: Tensor) => activationForward(e, 'relu', x, y);
export const reluBackward = (e: Engine, x: Tensor, dy: Tensor, dx: Tensor, opts?: AccumulateOptions) => activationBackward(e, 'relu', x, dy, dx, 0.01, opts);
export const leakyReluForward = (e: Engine, x: Tensor, y: Tensor, alpha = 0.01) => activationForward(e, 'leaky_relu', x, y, alpha);
export const leakyReluBackward = (e: Engine, x: Tensor, dy: Tensor, dx: Tensor, alpha = 0.01, opts?: AccumulateOptions) => activationBackward(e, 'leaky_relu', x, dy, dx, alpha, opts);
export const sigmoidForward = (e: Engine, x: Tensor, y: Tensor) => activationForward(e, 'sigmoid', x, y);
export const sigmoidBackward = (e: Engine, x: Tensor, dy: Tensor, dx: Tensor, opts?: AccumulateOptions) => activationBackward(e, 'sigmoid', x, dy, dx, 0.01, opts);
export const tanhForward = (e: Engine, x: Tensor, y: Tensor) => activationForward(e, 'tanh', x, y);
export const tanhBackward = (e: Engine, x: Tensor, dy: Tensor, dx: Tensor, opts?: AccumulateOptions) => activationBackward(e, 'tanh', x, dy, dx, 0.01, opts);
export const geluForward = (e: Engine, x: Tensor, y: Tensor) => activationForward(e, 'gelu', x, y);
export const geluBackward = (e: Engine, x: Tensor, dy: Tensor, dx: Tensor, opts?: AccumulateOptions) => activationBackward(e, 'gelu', x, dy, dx, 0.01, opts);
