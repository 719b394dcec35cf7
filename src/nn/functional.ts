// Primitive ops for writing models as code: each function, called inside a model's forward on
// symbolic values, adds one node to the graph being traced. Their backward passes are written
// once here, over the primitive kernels, so new layers compose from them without new WGSL.
// Shapes are per sample (the batch dimension is implicit and first); a mismatch fails while the
// model is built, naming the op by module path and the shapes.
import type { Dispatch, Engine } from '../gpu/engine.ts';
import { shapeSize, shapeStr, type Shape, type Tensor } from '../gpu/tensor.ts';
import { activationBackward, activationForward } from '../kernels/activation.ts';
import { addForward, fillForward, mulForward, scaleForward } from '../kernels/elementwise.ts';
import { batchedMatmul, biasGrad, stridedMatmul, type StridedDims, type StridedOperand } from '../kernels/matmul.ts';
import { inversePermutation, permute as permuteKernel } from '../kernels/permute.ts';
import { broadcastAxes, reduceAxes } from '../kernels/reduce.ts';
import { sliceFrom, sliceInto } from '../kernels/slice.ts';
import { scaledSoftmaxBackward, scaledSoftmaxForward, softmaxBackward, softmaxForward } from '../kernels/softmax.ts';
import type { Activation as ActivationKind } from '../ops/activation.ts';
import type { OpSpec } from '../ops/graph.ts';
import { GraphError, opPath, trace, Value, type Node } from './graph.ts';
import type { Op, OpIO, OpPlan, Param } from './op.ts';

/** Add a node for `op` under the current module's path, checking that inputs are values of the trace. */
function apply(name: string, op: Op, inputs: Value[], outputShapes: Shape[]): Value[] {
  const ctx = trace(`${name}()`);
  return ctx.graph.node(op, inputs, outputShapes, opPath(ctx, name));
}

/** The path a new op would get, for errors raised before it exists. */
function pathFor(name: string): string {
  const ctx = trace(`${name}()`);
  const parent = ctx.paths.at(-1) ?? '';
  return parent ? `${parent}.${name}` : name;
}

function expectValue(name: string, v: unknown, what: string): Value {
  if (!(v instanceof Value)) throw new GraphError(`${pathFor(name)}: ${what} is not a value of the model being built.`);
  return v;
}

function isParam(v: unknown): v is Param {
  return typeof v === 'object' && v !== null && 'value' in v && 'grad' in v && !(v instanceof Value);
}

const plan = (forward: Dispatch[], backward: Dispatch[], forwardEval?: Dispatch[]): OpPlan => ({
  forward,
  backward,
  forwardEval,
  dispose: () => [...forward, ...backward, ...(forwardEval ?? [])].forEach((d) => d.dispose()),
});

/** Ops without parameters whose backward kernels all honour accumulate. */
abstract class Primitive implements Op {
  abstract readonly kind: string;
  readonly accumulates = true;
  params(): Param[] {
    return [];
  }
  abstract plan(e: Engine, io: OpIO): Promise<OpPlan>;
  abstract spec(node: Node): OpSpec;
}

// ---- elementwise ----------------------------------------------------------------------------

class AddOp extends Primitive {
  readonly kind = 'add';
  passthrough(): boolean {
    return true;
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward = [await addForward(e, io.inputs[0], io.inputs[1], io.y)];
    const backward: Dispatch[] = [];
    // The planner shares dy's memory with an input's gradient when nothing else adds to it; an
    // input that also feeds other ops gets dy copied (first contribution) or added.
    for (const dx of io.dxs) if (io.dy && dx) backward.push(await scaleForward(e, io.dy, dx.tensor, 1, { accumulate: dx.accumulate }));
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'add' };
  }
}

class MulOp extends Primitive {
  readonly kind = 'mul';
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const [a, b] = io.inputs;
    const forward = [await mulForward(e, a, b, io.y)];
    const backward: Dispatch[] = [];
    if (io.dy) {
      if (io.dxs[0]) backward.push(await mulForward(e, io.dy, b, io.dxs[0].tensor, { accumulate: io.dxs[0].accumulate }));
      if (io.dxs[1]) backward.push(await mulForward(e, io.dy, a, io.dxs[1].tensor, { accumulate: io.dxs[1].accumulate }));
    }
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'mul' };
  }
}

class ScaleOp extends Primitive {
  readonly kind = 'scale';
  constructor(readonly factor: number) {
    super();
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward = [await scaleForward(e, io.x, io.y, this.factor)];
    const backward = io.dy && io.dx ? [await scaleForward(e, io.dy, io.dx.tensor, this.factor, { accumulate: io.dx.accumulate })] : [];
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'scale', factor: this.factor };
  }
}

/**
 * x + p or x * p with p a parameter whose shape is a trailing part of x's per-sample shape (a
 * position embedding [T, D] added to tokens [T, D], a per-feature scale [D]), repeated over the
 * batch and the leading dimensions. Its gradient sums dy (times x) over those repeats.
 */
class ParamOp implements Op {
  readonly accumulates = true;
  constructor(
    readonly kind: 'add_param' | 'mul_param',
    readonly param: Param,
  ) {}
  params(): Param[] {
    return [this.param];
  }
  passthrough(): boolean {
    return this.kind === 'add_param';
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const p = this.param;
    const rows = io.x.size / p.value.size;
    const forward = [this.kind === 'add_param' ? await addForward(e, io.x, p.value, io.y) : await mulForward(e, io.x, p.value, io.y)];
    const backward: Dispatch[] = [];
    if (io.dy) {
      const g = io.grad(p);
      if (this.kind === 'add_param') {
        if (io.dx) backward.push(await scaleForward(e, io.dy, io.dx.tensor, 1, { accumulate: io.dx.accumulate }));
        backward.push(await biasGrad(e, io.dy.view([rows, p.value.size], `${io.dy.label} as rows`), g.tensor.view([p.value.size], `${g.tensor.label} flat`), { accumulate: g.accumulate }));
      } else {
        if (io.dx) backward.push(await mulForward(e, io.dy, p.value, io.dx.tensor, { accumulate: io.dx.accumulate }));
        const prod = io.scratch([rows, p.value.size], `${io.path}.dy*x`);
        backward.push(await mulForward(e, io.dy.view(prod.shape, `${io.dy.label} as rows`), io.x.view(prod.shape, `${io.x.label} as rows`), prod));
        backward.push(await biasGrad(e, prod, g.tensor.view([p.value.size], `${g.tensor.label} flat`), { accumulate: g.accumulate }));
      }
    }
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: this.kind, param: this.param.name };
  }
}

function binary(name: 'add' | 'mul', a: Value, b: Value | Param): Value {
  expectValue(name, a, 'its first argument');
  if (isParam(b)) {
    const ps = b.value.shape;
    const tail = a.shape.slice(a.shape.length - ps.length);
    if (ps.length > a.shape.length || ps.some((d, i) => d !== tail[i])) {
      throw new GraphError(`${pathFor(name)}: parameter ${b.name} ${shapeStr(ps)} does not broadcast against ${a}: its shape must be a trailing part of the value's.`);
    }
    return apply(name, new ParamOp(name === 'add' ? 'add_param' : 'mul_param', b), [a], [a.shape])[0];
  }
  expectValue(name, b, 'its second argument');
  if (shapeStr(a.shape) !== shapeStr(b.shape)) {
    throw new GraphError(`${pathFor(name)}: cannot ${name} ${a} and ${b}: the shapes differ (per sample).`);
  }
  return apply(name, name === 'add' ? new AddOp() : new MulOp(), [a, b], [a.shape])[0];
}

/** a + b, elementwise (same shapes), or a + p for a parameter p shaped like a trailing part of a. */
export function add(a: Value, b: Value | Param): Value {
  return binary('add', a, b);
}

/** a * b, elementwise (same shapes), or a * p for a parameter p shaped like a trailing part of a. */
export function mul(a: Value, b: Value | Param): Value {
  return binary('mul', a, b);
}

/** s * x. */
export function scale(x: Value, s: number): Value {
  expectValue('scale', x, 'its argument');
  if (!Number.isFinite(s)) throw new GraphError(`${pathFor('scale')}: the factor ${s} is not a finite number.`);
  return apply('scale', new ScaleOp(s), [x], [x.shape])[0];
}

// ---- activations and softmax ------------------------------------------------------------------

class ActivationOp extends Primitive {
  readonly kind: string;
  constructor(
    readonly activation: ActivationKind,
    readonly alpha: number,
  ) {
    super();
    this.kind = activation;
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward = [await activationForward(e, this.activation, io.x, io.y, this.alpha)];
    const backward = io.dy && io.dx ? [await activationBackward(e, this.activation, io.x, io.dy, io.dx.tensor, this.alpha, { accumulate: io.dx.accumulate })] : [];
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'activation', activation: { kind: this.activation, alpha: this.alpha } };
  }
}

const activation =
  (kind: ActivationKind, alpha = 0.01) =>
  (x: Value) => {
    expectValue(kind, x, 'its argument');
    return apply(kind, new ActivationOp(kind, alpha), [x], [x.shape])[0];
  };

export const relu = activation('relu');
export const sigmoid = activation('sigmoid');
export const tanh = activation('tanh');
export const gelu = activation('gelu');
export const leakyRelu = (x: Value, alpha = 0.01) => activation('leaky_relu', alpha)(x);

class SoftmaxOp extends Primitive {
  readonly kind = 'softmax';
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward = [await softmaxForward(e, io.x, io.y)];
    const backward = io.dy && io.dx ? [await softmaxBackward(e, io.y, io.dy, io.dx.tensor, { accumulate: io.dx.accumulate })] : [];
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'softmax' };
  }
}

/** Softmax over the last dimension. */
export function softmax(x: Value): Value {
  expectValue('softmax', x, 'its argument');
  if (!x.shape.length) throw new GraphError(`${pathFor('softmax')}: ${x} has no dimension to take the softmax over.`);
  return apply('softmax', new SoftmaxOp(), [x], [x.shape])[0];
}

// ---- matmul -----------------------------------------------------------------------------------

class MatmulOp extends Primitive {
  readonly kind = 'matmul';
  constructor(
    readonly transA: boolean,
    readonly transB: boolean,
  ) {
    super();
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const [a, b] = io.inputs;
    // Every sample and leading dimension is one independent product: [G, rows, cols].
    const as3 = (t: Tensor) => t.view([t.size / (t.shape.at(-2)! * t.shape.at(-1)!), t.shape.at(-2)!, t.shape.at(-1)!], `${t.label} as [G, r, c]`);
    const A = as3(a);
    const B = as3(b);
    const C = as3(io.y);
    const { transA: tA, transB: tB } = this;
    const forward = [await batchedMatmul(e, A, B, C, { transA: tA, transB: tB })];
    const backward: Dispatch[] = [];
    if (io.dy) {
      const dC = as3(io.dy);
      // C = op(A) op(B): d op(A) = dC op(B)ᵀ and d op(B) = op(A)ᵀ dC, transposed back where an
      // operand is stored transposed.
      const [da, db] = io.dxs;
      if (da) {
        const dA = as3(da.tensor);
        backward.push(tA ? await batchedMatmul(e, B, dC, dA, { transA: tB, transB: true, accumulate: da.accumulate }) : await batchedMatmul(e, dC, B, dA, { transB: !tB, accumulate: da.accumulate }));
      }
      if (db) {
        const dB = as3(db.tensor);
        backward.push(tB ? await batchedMatmul(e, dC, A, dB, { transA: true, transB: tA, accumulate: db.accumulate }) : await batchedMatmul(e, A, dC, dB, { transA: !tA, accumulate: db.accumulate }));
      }
    }
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'matmul', transA: this.transA, transB: this.transB };
  }
}

/**
 * A batch of independent products: a [..., M, K] · b [..., K, N] -> [..., M, N] (per sample, with
 * equal leading dimensions), either operand transposed in its last two dimensions with transA /
 * transB (attention's scores are q · kᵀ: matmul(q, k, { transB: true })).
 */
export function matmul(a: Value, b: Value, opts: { transA?: boolean; transB?: boolean } = {}): Value {
  expectValue('matmul', a, 'its first argument');
  expectValue('matmul', b, 'its second argument');
  const where = pathFor('matmul');
  if (a.shape.length < 2 || b.shape.length < 2) throw new GraphError(`${where}: ${a} and ${b} must both have at least 2 dimensions per sample ([..., rows, cols]).`);
  const lead = (v: Value) => v.shape.slice(0, -2);
  if (shapeStr(lead(a)) !== shapeStr(lead(b))) throw new GraphError(`${where}: the leading dimensions of ${a} and ${b} differ.`);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = opts.transA ? [ac, ar] : [ar, ac];
  const [K2, N] = opts.transB ? [bc, br] : [br, bc];
  if (K !== K2) throw new GraphError(`${where}: inner dimensions differ (${K} and ${K2}) in ${a}${opts.transA ? 'ᵀ' : ''} · ${b}${opts.transB ? 'ᵀ' : ''}.`);
  return apply('matmul', new MatmulOp(Boolean(opts.transA), Boolean(opts.transB)), [a, b], [[...lead(a), M, N]])[0];
}

// ---- attention -------------------------------------------------------------------------------

class AttentionOp extends Primitive {
  readonly kind = 'attention';
  constructor(
    readonly heads: number,
    readonly factor: number,
  ) {
    super();
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const qkv = io.x; // [B, T, 3D]
    const [B, T, D3] = qkv.shape;
    const D = D3 / 3;
    const H = this.heads;
    const dh = D / H;
    const dims = (M: number, N: number, K: number): StridedDims => ({ M, N, K, groups: B, perGroup: H });
    // Head h of sample b: q, k, v are dh columns of the qkv rows (3D apart); its output and output
    // gradient are dh columns of [B, T, D]; its scores, weights and their gradients a packed T x T.
    const part = (t: Tensor, i: number, transposed = false): StridedOperand => ({ tensor: t, offset: i * D, group: T * D3, matrix: dh, row: transposed ? 1 : D3, col: transposed ? D3 : 1 });
    const heads = (t: Tensor, transposed = false): StridedOperand => ({ tensor: t, offset: 0, group: T * D, matrix: dh, row: transposed ? 1 : D, col: transposed ? D : 1 });
    const square = (t: Tensor, transposed = false): StridedOperand => ({ tensor: t, offset: 0, group: H * T * T, matrix: T * T, row: transposed ? 1 : T, col: transposed ? T : 1 });
    const rows = (t: Tensor) => t.view([B * H * T, T], `${t.label} rows`);
    const scores = io.scratch([B, H, T, T], `${io.path}.scores`);
    const weights = io.scratch([B, H, T, T], `${io.path}.weights`); // saved for backward
    const forward = [
      await stridedMatmul(e, part(qkv, 0), part(qkv, 1, true), square(scores), dims(T, T, dh)),
      await scaledSoftmaxForward(e, rows(scores), rows(weights), this.factor),
      await stridedMatmul(e, square(weights), part(qkv, 2), heads(io.y), dims(T, dh, T)),
    ];
    const backward: Dispatch[] = [];
    if (io.dy && io.dx) {
      const { tensor: dqkv, accumulate } = io.dx;
      const dWeights = io.scratch([B, H, T, T], `${io.path}.dweights`);
      const dScores = io.scratch([B, H, T, T], `${io.path}.dscores`);
      backward.push(
        // dP = dO · vᵀ; dS = the scaled softmax's backward; then dq = dS · k, dk = dSᵀ · q and
        // dv = Pᵀ · dO, each written into its own columns of the qkv gradient.
        await stridedMatmul(e, heads(io.dy), part(qkv, 2, true), square(dWeights), dims(T, T, dh)),
        await scaledSoftmaxBackward(e, rows(weights), rows(dWeights), rows(dScores), this.factor),
        await stridedMatmul(e, square(dScores), part(qkv, 1), part(dqkv, 0), dims(T, dh, T), { accumulate }),
        await stridedMatmul(e, square(dScores, true), part(qkv, 0), part(dqkv, 1), dims(T, dh, T), { accumulate }),
        await stridedMatmul(e, square(weights, true), heads(io.dy), part(dqkv, 2), dims(T, dh, T), { accumulate }),
      );
    }
    // The attention weights, for pictures of where each token looks (see PlanOptions.keep).
    return { ...plan(forward, backward), inspect: { weights } };
  }
  spec(): OpSpec {
    return { kind: 'attention', heads: this.heads, factor: this.factor };
  }
}

/**
 * Multi-head scaled dot-product attention over a [T, 3D] projection holding q, k and v side by
 * side (head h in columns h*dh .. h*dh+dh-1 of each): softmax(factor · q kᵀ) v per head, the heads'
 * outputs side by side in [T, D]. One node: the heads are read out of qkv and written into the
 * output in place (no permutes), and only the attention weights are kept for the backward pass.
 * `factor` defaults to 1/sqrt(dh).
 */
export function attention(qkv: Value, heads: number, factor?: number): Value {
  expectValue('attention', qkv, 'its argument');
  const where = pathFor('attention');
  if (qkv.shape.length !== 2 || qkv.shape[1] % 3 !== 0) throw new GraphError(`${where}: ${qkv} must be [tokens, 3 * width] (q, k and v side by side).`);
  const [T, D3] = qkv.shape;
  const D = D3 / 3;
  if (!Number.isInteger(heads) || heads < 1 || D % heads !== 0) throw new GraphError(`${where}: width ${D} (of ${qkv}) is not a multiple of ${heads} heads.`);
  const f = factor ?? 1 / Math.sqrt(D / heads);
  if (!Number.isFinite(f)) throw new GraphError(`${where}: the scale ${f} is not a finite number.`);
  return apply('attention', new AttentionOp(heads, f), [qkv], [[T, D]])[0];
}

// ---- shapes -----------------------------------------------------------------------------------

class ReshapeOp extends Primitive {
  readonly kind = 'reshape';
  readonly isView = true;
  async plan(): Promise<OpPlan> {
    return plan([], []);
  }
  spec(): OpSpec {
    return { kind: 'reshape' };
  }
}

/** The same values under another per-sample shape (one dimension may be -1: inferred). A view: no copy. */
export function reshape(x: Value, shape: readonly number[]): Value {
  expectValue('reshape', x, 'its argument');
  const where = pathFor('reshape');
  const free = shape.filter((d) => d === -1).length;
  const known = shape.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  if (free > 1 || shape.some((d) => d !== -1 && (!Number.isInteger(d) || d < 1))) throw new GraphError(`${where}: shape ${shapeStr(shape)} must hold positive integers and at most one -1.`);
  const size = shapeSize(x.shape);
  const out = shape.map((d) => (d === -1 ? size / known : d));
  if (shapeSize(out) !== size || out.some((d) => !Number.isInteger(d))) throw new GraphError(`${where}: ${x} (${size} values per sample) cannot be viewed as ${shapeStr(shape)}.`);
  return apply('reshape', new ReshapeOp(), [x], [out])[0];
}

class PermuteOp extends Primitive {
  readonly kind = 'permute';
  constructor(readonly dims: number[]) {
    super();
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    // The batch dimension stays first.
    const perm = [0, ...this.dims.map((d) => d + 1)];
    const forward = [await permuteKernel(e, io.x, io.y, perm)];
    const backward = io.dy && io.dx ? [await permuteKernel(e, io.dy, io.dx.tensor, inversePermutation(perm), { accumulate: io.dx.accumulate })] : [];
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'permute', dims: [...this.dims] };
  }
}

/** The per-sample axes reordered: out.shape[i] = x.shape[dims[i]] (e.g. [T, H, D] -> [H, T, D] with [1, 0, 2]). */
export function permute(x: Value, dims: readonly number[]): Value {
  expectValue('permute', x, 'its argument');
  const r = x.shape.length;
  if (dims.length !== r || [...dims].sort((p, q) => p - q).some((d, i) => d !== i)) {
    throw new GraphError(`${pathFor('permute')}: ${JSON.stringify(dims)} is not a permutation of the ${r} axes of ${x}.`);
  }
  return apply('permute', new PermuteOp([...dims]), [x], [dims.map((d) => x.shape[d])])[0];
}

/** A per-sample axis, negative counting from the end; the batch dimension cannot be named. */
function axisOf(name: string, x: Value, axis: number): number {
  const a = axis < 0 ? axis + x.shape.length : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= x.shape.length) throw new GraphError(`${pathFor(name)}: axis ${axis} is not an axis of ${x} (per sample; the batch dimension cannot be named).`);
  return a;
}

class ConcatOp extends Primitive {
  readonly kind = 'concat';
  constructor(readonly axis: number) {
    super();
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward: Dispatch[] = [];
    const backward: Dispatch[] = [];
    let start = 0;
    for (const [i, x] of io.inputs.entries()) {
      forward.push(await sliceInto(e, x, io.y, this.axis + 1, start));
      const dx = io.dxs[i];
      if (io.dy && dx) backward.push(await sliceFrom(e, io.dy, dx.tensor, this.axis + 1, start, { accumulate: dx.accumulate }));
      start += x.shape[this.axis + 1];
    }
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'concat', axis: this.axis };
  }
}

/** Values joined along a per-sample axis (every other dimension equal). */
export function concat(xs: Value[], axis: number): Value {
  if (!Array.isArray(xs) || xs.length < 1) throw new GraphError(`${pathFor('concat')}: give at least one value.`);
  xs.forEach((x, i) => expectValue('concat', x, `value ${i}`));
  const a = axisOf('concat', xs[0], axis);
  for (const x of xs) {
    if (x.shape.length !== xs[0].shape.length || x.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
      throw new GraphError(`${pathFor('concat')}: ${x} and ${xs[0]} must have equal dimensions except along axis ${a}.`);
    }
  }
  const out = [...xs[0].shape];
  out[a] = xs.reduce((s, x) => s + x.shape[a], 0);
  return apply('concat', new ConcatOp(a), xs, [out])[0];
}

class SplitOp extends Primitive {
  readonly kind = 'split';
  constructor(
    readonly axis: number,
    readonly sizes: number[],
  ) {
    super();
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward: Dispatch[] = [];
    const backward: Dispatch[] = [];
    let start = 0;
    for (const [i, y] of io.outputs.entries()) {
      forward.push(await sliceFrom(e, io.x, y, this.axis + 1, start));
      const dy = io.dys[i];
      // Every part of dx is covered by exactly one output: each writes (or adds) its own slice.
      if (dy && io.dx) backward.push(await sliceInto(e, dy, io.dx.tensor, this.axis + 1, start, { accumulate: io.dx.accumulate }));
      start += this.sizes[i];
    }
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'split', axis: this.axis, sizes: [...this.sizes] };
  }
}

/** x cut along a per-sample axis into parts of the given sizes (summing to the axis length). */
export function split(x: Value, sizes: readonly number[], axis: number): Value[] {
  expectValue('split', x, 'its argument');
  const a = axisOf('split', x, axis);
  if (!sizes.length || sizes.some((s) => !Number.isInteger(s) || s < 1) || sizes.reduce((p, s) => p + s, 0) !== x.shape[a]) {
    throw new GraphError(`${pathFor('split')}: sizes ${JSON.stringify(sizes)} must be positive integers summing to ${x.shape[a]} (axis ${a} of ${x}).`);
  }
  return apply(
    'split',
    new SplitOp(a, [...sizes]),
    [x],
    sizes.map((s) => x.shape.map((d, i) => (i === a ? s : d))),
  );
}

// ---- reductions -------------------------------------------------------------------------------

class ReduceOp extends Primitive {
  readonly kind: string;
  constructor(
    readonly axis: number,
    readonly count: number,
    readonly mean: boolean,
  ) {
    super();
    this.kind = mean ? 'mean' : 'sum';
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    // x viewed as [outer, reduce, inner] (outer includes the batch).
    const s = io.x.shape;
    const at = this.axis + 1;
    const geometry = {
      outer: s.slice(0, at).reduce((p, d) => p * d, 1),
      reduce: s.slice(at, at + this.count).reduce((p, d) => p * d, 1),
      inner: s.slice(at + this.count).reduce((p, d) => p * d, 1),
    };
    const scale = this.mean ? 1 / geometry.reduce : 1;
    const forward = [await reduceAxes(e, io.x, io.y, { ...geometry, scale })];
    const backward = io.dy && io.dx ? [await broadcastAxes(e, io.dy, io.dx.tensor, { ...geometry, scale, accumulate: io.dx.accumulate })] : [];
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'reduce', axis: this.axis, count: this.count, mean: this.mean };
  }
}

function reduction(name: 'sum' | 'mean', x: Value, axes: number | readonly number[], keepDims: boolean): Value {
  expectValue(name, x, 'its argument');
  const list = [...new Set((typeof axes === 'number' ? [axes] : axes).map((a) => axisOf(name, x, a)))].sort((p, q) => p - q);
  if (!list.length) throw new GraphError(`${pathFor(name)}: give at least one axis.`);
  // One node per run of adjacent axes, last run first (so earlier axes keep their numbers).
  const runs: [number, number][] = [];
  for (const a of list) {
    const last = runs.at(-1);
    if (last && last[0] + last[1] === a) last[1]++;
    else runs.push([a, 1]);
  }
  let v = x;
  for (const [a, n] of runs.reverse()) {
    const out = [...v.shape.slice(0, a), ...(keepDims ? new Array(n).fill(1) : []), ...v.shape.slice(a + n)];
    v = apply(name, new ReduceOp(a, n, name === 'mean'), [v], [out.length ? out : [1]])[0];
  }
  return v;
}

/** Sum over per-sample axes (keepDims: reduced axes stay with size 1). */
export function sum(x: Value, axes: number | readonly number[], opts: { keepDims?: boolean } = {}): Value {
  return reduction('sum', x, axes, Boolean(opts.keepDims));
}

/** Mean over per-sample axes (keepDims: reduced axes stay with size 1). */
export function mean(x: Value, axes: number | readonly number[], opts: { keepDims?: boolean } = {}): Value {
  return reduction('mean', x, axes, Boolean(opts.keepDims));
}

// ---- parameters as values -------------------------------------------------------------------

/** A parameter repeated for every sample (a class token): its gradient sums over the batch. */
class BroadcastParamOp implements Op {
  readonly kind = 'param';
  readonly accumulates = true;
  constructor(readonly param: Param) {}
  params(): Param[] {
    return [this.param];
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const p = this.param;
    const n = p.value.size;
    const geometry = { outer: 1, reduce: io.batch, inner: n };
    const forward = [await broadcastAxes(e, p.value.view([1, n], `${p.name} as [1, n]`), io.y, geometry)];
    const backward: Dispatch[] = [];
    if (io.dy) {
      const g = io.grad(p);
      backward.push(await reduceAxes(e, io.dy, g.tensor.view([1, n], `${g.tensor.label} as [1, n]`), { ...geometry, accumulate: g.accumulate }));
    }
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'param', param: this.param.name };
  }
}

/** A parameter as a value of every sample (shape: the parameter's), e.g. a class token to concatenate with tokens. */
export function broadcast(p: Param): Value {
  if (!isParam(p)) throw new GraphError(`${pathFor('param')}: broadcast() takes a parameter (made with Module.parameter).`);
  return apply('param', new BroadcastParamOp(p), [], [p.value.shape])[0];
}

class SliceOp extends Primitive {
  readonly kind = 'slice';
  constructor(
    readonly axis: number,
    readonly start: number,
  ) {
    super();
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward = [await sliceFrom(e, io.x, io.y, this.axis + 1, this.start)];
    const backward: Dispatch[] = [];
    if (io.dy && io.dx) {
      // Only the slice's part of dx gets a gradient: a first contribution zeroes the rest.
      if (!io.dx.accumulate) backward.push(await fillForward(e, io.dx.tensor, 0));
      backward.push(await sliceInto(e, io.dy, io.dx.tensor, this.axis + 1, this.start, { accumulate: true }));
    }
    return plan(forward, backward);
  }
  spec(node: Node): OpSpec {
    return { kind: 'slice', axis: this.axis, start: this.start, length: node.outputs[0].shape[this.axis] };
  }
}

/** The part of x along a per-sample axis from `start`, `length` long (the rest gets no gradient). */
export function slice(x: Value, axis: number, start: number, length: number): Value {
  expectValue('slice', x, 'its argument');
  const a = axisOf('slice', x, axis);
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 1 || start + length > x.shape[a]) {
    throw new GraphError(`${pathFor('slice')}: [${start}, ${start + length}) is not a part of axis ${a} of ${x} (0..${x.shape[a]}).`);
  }
  return apply('slice', new SliceOp(a, start), [x], [x.shape.map((d, i) => (i === a ? length : d))])[0];
}

class ScaledSoftmaxOp extends Primitive {
  readonly kind = 'scaled_softmax';
  constructor(readonly factor: number) {
    super();
  }
  async plan(e: Engine, io: OpIO): Promise<OpPlan> {
    const forward = [await scaledSoftmaxForward(e, io.x, io.y, this.factor)];
    const backward = io.dy && io.dx ? [await scaledSoftmaxBackward(e, io.y, io.dy, io.dx.tensor, this.factor, { accumulate: io.dx.accumulate })] : [];
    return plan(forward, backward);
  }
  spec(): OpSpec {
    return { kind: 'scaled_softmax', factor: this.factor };
  }
}

/** softmax(s * x) over the last dimension, in one pass (attention's scaled scores). */
export function scaledSoftmax(x: Value, s: number): Value {
  expectValue('scaledSoftmax', x, 'its argument');
  if (!Number.isFinite(s)) throw new GraphError(`${pathFor('scaled_softmax')}: the scale ${s} is not a finite number.`);
  return apply('scaled_softmax', new ScaledSoftmaxOp(s), [x], [x.shape])[0];
}
