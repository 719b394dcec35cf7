// CPU reference for shaders/layernorm.wgsl: layer normalisation over the last dimension, its input
// gradient and its parameter gradients, in plain loops with float64 sums (two passes for the
// variance). Same names and argument order as src/kernels/layernorm.ts (minus the engine). The
// shape rules live in src/ops/layernorm.ts.
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { layerNormGeometry, type LayerNormOptions } from '../ops/layernorm.ts';
import { store, type HostTensor } from './host.ts';

const REF = (name: string) => `Reference ${name}`;

/**
 * y = (x - mean) * rstd * gamma + beta per row of x [..., D]; saves each row's mean and
 * rstd = 1/sqrt(biased var + eps). gamma, beta [D]; mean, rstd [R] or x's leading dimensions.
 */
export function layerNormForward(x: HostTensor, gamma: HostTensor, beta: HostTensor, y: HostTensor, mean: HostTensor, rstd: HostTensor, opts: LayerNormOptions): void {
  const { rows, cols: D } = layerNormGeometry(REF('layerNormForward'), x, [gamma, beta], [mean, rstd], [y]);
  for (let r = 0; r < rows; r++) {
    const base = r * D;
    let s = 0;
    for (let d = 0; d < D; d++) s += x.data[base + d];
    const m = s / D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x.data[base + d] - m) ** 2;
    const inv = 1 / Math.sqrt(v / D + opts.eps);
    for (let d = 0; d < D; d++) y.data[base + d] = (x.data[base + d] - m) * inv * gamma.data[d] + beta.data[d];
    mean.data[r] = m;
    rstd.data[r] = inv;
  }
}

/**
 * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) per row, g = dy * gamma, xhat = (x - mean) * rstd
 * (dx += ... with accumulate). x, dy, dx [..., D]; gamma [D]; mean, rstd as the forward saved them.
 */
export function layerNormBackward(x: HostTensor, dy: HostTensor, gamma: HostTensor, mean: HostTensor, rstd: HostTensor, dx: HostTensor, opts: AccumulateOptions = {}): void {
  const { rows, cols: D } = layerNormGeometry(REF('layerNormBackward'), x, [gamma], [mean, rstd], [dy, dx]);
  for (let r = 0; r < rows; r++) {
    const base = r * D;
    const m = mean.data[r];
    const inv = rstd.data[r];
    let sg = 0;
    let sgx = 0;
    for (let d = 0; d < D; d++) {
      const g = dy.data[base + d] * gamma.data[d];
      sg += g;
      sgx += g * (x.data[base + d] - m) * inv;
    }
    for (let d = 0; d < D; d++) {
      const xhat = (x.data[base + d] - m) * inv;
      store(dx.data, base + d, inv * (dy.data[base + d] * gamma.data[d] - sg / D - (xhat * sgx) / D), opts.accumulate);
    }
  }
}

/**
 * dgamma = sum over rows of dy * xhat, dbeta = sum over rows of dy (both added to with accumulate).
 * x, dy [..., D]; mean, rstd as the forward saved them; dgamma, dbeta [D].
 */
export function layerNormParamGrad(x: HostTensor, dy: HostTensor, mean: HostTensor, rstd: HostTensor, dgamma: HostTensor, dbeta: HostTensor, opts: AccumulateOptions = {}): void {
  const { rows, cols: D } = layerNormGeometry(REF('layerNormParamGrad'), x, [dgamma, dbeta], [mean, rstd], [dy]);
  for (let d = 0; d < D; d++) {
    let sg = 0;
    let sb = 0;
    for (let r = 0; r < rows; r++) {
      const i = r * D + d;
      sb += dy.data[i];
      sg += dy.data[i] * (x.data[i] - mean.data[r]) * rstd.data[r];
    }
    store(dgamma.data, d, sg, opts.accumulate);
    store(dbeta.data, d, sb, opts.accumulate);
  }
}
