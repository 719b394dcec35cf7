// Layer normalisation kernels (shaders/layernorm.wgsl): normalisation over the last dimension of a
// tensor of any rank, its input gradient and its parameter gradients, as validated, replayable
// dispatches. Every sum is taken in a fixed order: deterministic.
//
// Forward and backward come in two layouts, chosen per adapter: one invocation per row with no
// barriers (software adapters, whose barriers and workgroup memory are expensive; vec4 loads when
// D is a multiple of 4), or one workgroup per row with a tree in workgroup memory (GPUs). All
// compute the same thing; `variant` forces a layout.
import { grid1d, type Dispatch, type Engine } from '../gpu/engine.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { checkLayerNormEps, layerNormGeometry, type LayerNormGeometry, type LayerNormOptions } from '../ops/layernorm.ts';
import { withAccumulate } from './accumulate.ts';

export type { LayerNormOptions } from '../ops/layernorm.ts';

/** How forward and backward spread a row over invocations: one invocation, or one workgroup. */
export type LayerNormVariant = 'row' | 'workgroup';

export interface LayerNormVariantOptions {
  /** Force a layout (tests, benchmarks); default: 'row' on a software adapter, 'workgroup' elsewhere. */
  variant?: LayerNormVariant;
}

/**
 * Invocations per workgroup of the one-invocation-per-row entries: small, so that a few hundred
 * rows still make enough workgroups to keep every CPU thread of a software adapter busy.
 */
const ROW_WG = 16;
/** Invocations per row of the one-workgroup-per-row entries. */
const GROUP_WG = 64;
/** Invocations per workgroup of the parameter gradients (one per column, or per 4 with vec4): D is only hundreds. */
const PARAM_WG = 8;

/** The binding names of the _vec4 entries: the same tensors, seen as vec4. */
const VEC4_NAMES: Record<string, string> = { x: 'x4', gamma: 'gamma4', beta: 'beta4', y: 'y4', dy: 'dy4', dx: 'dx4', dgamma: 'dgamma4', dbeta: 'dbeta4' };

function asVec4(buffers: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(buffers).map(([name, t]) => [VEC4_NAMES[name] ?? name, t]));
}

interface Layout {
  entry: string;
  WG: number;
  groups: [number, number, number];
  buffers: Record<string, Tensor>;
}

/** Entry point, override constants, workgroup counts and bindings of a forward or backward pass. */
function layout(e: Engine, entry: string, g: LayerNormGeometry, buffers: Record<string, Tensor>, opts: LayerNormVariantOptions): Layout {
  const variant = opts.variant ?? (e.adapter.isSoftware ? 'row' : 'workgroup');
  if (variant === 'workgroup') return { entry: `${entry}_wg`, WG: GROUP_WG, groups: grid1d(g.rows * GROUP_WG, GROUP_WG), buffers };
  const groups = grid1d(g.rows, ROW_WG);
  return g.cols % 4 === 0 ? { entry: `${entry}_vec4`, WG: ROW_WG, groups, buffers: asVec4(buffers) } : { entry, WG: ROW_WG, groups, buffers };
}

function lnParams(g: LayerNormGeometry, eps: number): Record<string, number> {
  return { rows: g.rows, cols: g.cols, eps };
}

/**
 * y = (x - mean) * rstd * gamma + beta over the last dimension, with each row's mean and
 * rstd = 1/sqrt(biased var + eps), which are saved for backward. x, y [..., D]; gamma, beta [D];
 * mean, rstd [R] or x's leading dimensions (R rows = x.size / D).
 */
export async function layerNormForward(e: Engine, x: Tensor, gamma: Tensor, beta: Tensor, y: Tensor, mean: Tensor, rstd: Tensor, opts: LayerNormOptions & LayerNormVariantOptions): Promise<Dispatch> {
  const what = 'Kernel layernorm.layer_norm_forward';
  const g = layerNormGeometry(what, x, [gamma, beta], [mean, rstd], [y]);
  checkLayerNormEps(what, opts.eps);
  const l = layout(e, 'layer_norm_forward', g, { x, gamma, beta, y, mean, rstd }, opts);
  const k = await e.kernel('layernorm', l.entry, { WG: l.WG });
  return e.dispatch(k, l.buffers, l.groups, lnParams(g, opts.eps));
}

/**
 * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) per row, with g = dy * gamma and
 * xhat = (x - mean) * rstd from the forward's saved mean and rstd (dx += ... with accumulate).
 * x, dy, dx [..., D]; gamma [D]; mean, rstd [R] or x's leading dimensions.
 */
export async function layerNormBackward(e: Engine, x: Tensor, dy: Tensor, gamma: Tensor, mean: Tensor, rstd: Tensor, dx: Tensor, opts: AccumulateOptions & LayerNormVariantOptions = {}): Promise<Dispatch> {
  const what = 'Kernel layernorm.layer_norm_backward';
  const g = layerNormGeometry(what, x, [gamma], [mean, rstd], [dy, dx]);
  const l = layout(e, 'layer_norm_backward', g, { x, dy, gamma, saved_mean: mean, saved_rstd: rstd, dx }, opts);
  const k = await e.kernel('layernorm', l.entry, withAccumulate({ WG: l.WG }, opts));
  return e.dispatch(k, l.buffers, l.groups, lnParams(g, 0));
}

/**
 * dgamma = sum over rows of dy * xhat, dbeta = sum over rows of dy (both added to with
 * accumulate), xhat = (x - mean) * rstd from the forward's saved statistics. x, dy [..., D];
 * mean, rstd [R] or x's leading dimensions; dgamma, dbeta [D]. One invocation per column (per
 * four columns when D is a multiple of 4), rows summed in order: a fused column sum, several times
 * faster on a software adapter than forming dy * xhat and summing its columns with `biasGrad`.
 */
export async function layerNormParamGrad(e: Engine, x: Tensor, dy: Tensor, mean: Tensor, rstd: Tensor, dgamma: Tensor, dbeta: Tensor, opts: AccumulateOptions = {}): Promise<Dispatch> {
  const what = 'Kernel layernorm.layer_norm_param_grad';
  const g = layerNormGeometry(what, x, [dgamma, dbeta], [mean, rstd], [dy]);
  const buffers = { x, dy, saved_mean: mean, saved_rstd: rstd, dgamma, dbeta };
  const vec4 = g.cols % 4 === 0;
  const k = await e.kernel('layernorm', vec4 ? 'layer_norm_param_grad_vec4' : 'layer_norm_param_grad', withAccumulate({ WG: PARAM_WG }, opts));
  return e.dispatch(k, vec4 ? asVec4(buffers) : buffers, grid1d(vec4 ? g.cols / 4 : g.cols, PARAM_WG), lnParams(g, 0));
}
