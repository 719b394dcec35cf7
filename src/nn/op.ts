// The op contract: what a node of the graph must provide so that a model can be planned. An op
// is planned once per batch size against tensors the planner made (activations, gradients,
// scratch), returning the dispatches of its forward and backward passes; the planner decides
// which gradients are written and which are added to (see GradOut), and shares memory between
// tensors whose lifetimes do not overlap.
import type { BufferArg, Dispatch, Engine } from '../gpu/engine.ts';
import type { Shape, Tensor } from '../gpu/tensor.ts';
import type { OpSpec } from '../ops/graph.ts';
import type { Epilogue, Node } from './graph.ts';

/** A trainable tensor and its gradient (same shape). */
export interface Param {
  /** Name in checkpoints: the module path, e.g. `blocks.0.conv1.weight` (set when the model is built). */
  name: string;
  value: Tensor;
  grad: Tensor;
  /** Whether weight decay / L2 applies (weights yes, biases and norm scales no). */
  decay: boolean;
}

/** Non-trainable state saved in checkpoints (e.g. BatchNorm running statistics). */
export interface StateTensor {
  name: string;
  value: Tensor;
}

/**
 * Where a backward pass puts a gradient. `accumulate` false: overwrite `tensor` (the first
 * contribution to it in a step); true: add to what it holds (a later contribution, when a value
 * or a parameter is used more than once). Ops whose kernels cannot add only ever get false.
 */
export interface GradOut {
  tensor: Tensor;
  accumulate: boolean;
}

/** Everything an op plans against, for one batch size. Tensors have the batch dimension first. */
export interface OpIO {
  batch: number;
  /** The node's module path, for messages and labels. */
  path: string;
  inputs: Tensor[];
  /** inputs[0]. */
  x: Tensor;
  outputs: Tensor[];
  /** outputs[0]. */
  y: Tensor;
  /** Gradients of the outputs, read by backward; null when the node needs no backward pass. */
  dys: (Tensor | null)[];
  dy: Tensor | null;
  /** Where each input's gradient goes; null where that input needs none. */
  dxs: (GradOut | null)[];
  dx: GradOut | null;
  /** Where a parameter's gradient goes (its grad tensor, or a scratch that the planner adds in). */
  grad(p: Param): GradOut;
  /** A tensor for the op's own use (saved for backward, or temporary); the planner shares its memory by lifetime. */
  scratch(shape: Shape, label: string): Tensor;
  /** An activation fused into this node (see Op.absorb). */
  epilogue: Epilogue | null;
  /** The per-step values uniform (step, flags, learning rate, ...), bound as `step` by kernels that read it. */
  stepValues: BufferArg;
  /**
   * The backward pass is of the evaluation forward (a plan for input gradients, see
   * PlanOptions.inputGradient): an op whose forwardEval differs from its forward plans the
   * backward of forwardEval. Others can ignore it.
   */
  evalBackward?: boolean;
}

export interface OpPlan {
  /** Training-mode forward. */
  forward: Dispatch[];
  /** Evaluation-mode forward (dropout off, running statistics); defaults to `forward`. */
  forwardEval?: Dispatch[];
  /** Writes (or adds into) every non-null dx and every parameter gradient. */
  backward: Dispatch[];
  /** Called before each training step is recorded: checks only (per-step values live in the step uniform). */
  beforeStep?(step: number): void;
  /** Frees what the plan made (dispatch uniforms, unplanned tensors). */
  dispose(): void;
  /**
   * Tensors of the op's own worth reading after a pass (e.g. a fused attention's weights,
   * [batch, heads, T, T]): kept readable when the node's output is asked for with PlanOptions.keep.
   */
  inspect?: Record<string, Tensor>;
}

export interface Op {
  /** Shown in summaries and errors, e.g. "Dense", "add". */
  readonly kind: string;
  /** Parameters this op reads; its backward pass writes their gradients. */
  params(): Param[];
  /** Whether its backward kernels honour GradOut.accumulate (else the planner adds through a scratch). */
  readonly accumulates: boolean;
  /** The output is input 0 under another shape: no dispatch forward, and backward can be a view too. */
  readonly isView?: boolean;
  /** Whether input `i`'s gradient is exactly the output's (as for an addition): the planner may alias it. */
  passthrough?(i: number): boolean;
  /** Fusion: the epilogue this op can apply for `consumer` (its output's only reader), or null. */
  absorb?(node: Node, consumer: Node): Epilogue | null;
  plan(e: Engine, io: OpIO): Promise<OpPlan>;
  /** The op as plain data (kind, attributes, parameter names), for the CPU reference and exporters. */
  spec?(node: Node): OpSpec;
}
