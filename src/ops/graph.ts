// A model's graph as plain data: every op by kind with its attributes, the values between ops by
// id with their per-sample shapes, and parameters and saved tensors by name. Models export it
// (Model.spec); the CPU reference trains from it, and exporters translate it. Nothing here refers
// to the GPU.

/** One op of the graph: its kind, attributes, and the names of the parameters it reads. */
export type OpSpec =
  | { kind: 'dense'; weight: string; bias: string | null; activation: ActivationSpec | null }
  | { kind: 'conv2d'; weight: string; bias: string | null; stride: [number, number]; padding: [number, number]; relu: boolean }
  | { kind: 'batchnorm2d'; weight: string; bias: string; runningMean: string; runningVar: string; eps: number; momentum: number; relu: boolean }
  | { kind: 'activation'; activation: ActivationSpec }
  | { kind: 'maxpool2d'; kernel: [number, number]; stride: [number, number]; padding: [number, number] }
  | { kind: 'avgpool2d'; kernel: [number, number]; stride: [number, number]; padding: [number, number]; countIncludePad: boolean }
  | { kind: 'globalavgpool' }
  | { kind: 'reshape' }
  | { kind: 'dropout'; p: number; seedBase: number }
  | { kind: 'softmax' }
  | { kind: 'scaled_softmax'; factor: number }
  | { kind: 'add' }
  | { kind: 'mul' }
  | { kind: 'scale'; factor: number }
  | { kind: 'param'; param: string }
  | { kind: 'layernorm'; weight: string; bias: string; eps: number }
  | { kind: 'add_param'; param: string }
  | { kind: 'mul_param'; param: string }
  | { kind: 'matmul'; transA: boolean; transB: boolean }
  | { kind: 'attention'; heads: number; factor: number }
  | { kind: 'permute'; dims: number[] }
  | { kind: 'concat'; axis: number }
  | { kind: 'split'; axis: number; sizes: number[] }
  | { kind: 'slice'; axis: number; start: number; length: number }
  | { kind: 'reduce'; axis: number; count: number; mean: boolean };

/** An activation applied by an op (its own, or fused into it). */
export interface ActivationSpec {
  kind: 'relu' | 'leaky_relu' | 'sigmoid' | 'tanh' | 'gelu';
  alpha: number;
}

export interface NodeSpec {
  /** Module path of the op, e.g. `blocks.0.conv1`. */
  path: string;
  op: OpSpec;
  /** Value ids read, in order. */
  inputs: number[];
  /** Value ids written. */
  outputs: number[];
}

export interface GraphSpec {
  /** Model inputs: value ids and per-sample shapes. */
  inputs: { id: number; shape: number[] }[];
  /** Every value's per-sample shape, by id. */
  shapes: Record<number, number[]>;
  /** Nodes in execution order. */
  nodes: NodeSpec[];
  /** The output value's id. */
  output: number;
  /** Trainable parameters: name, shape, and whether weight decay applies. */
  params: { name: string; shape: number[]; decay: boolean }[];
  /** Saved non-trainable tensors (running statistics). */
  buffers: { name: string; shape: number[] }[];
}
