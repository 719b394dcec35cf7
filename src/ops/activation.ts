// The activation functions every layer of the system knows by name: the kernels (shaders/
// activation.wgsl and the matmul/conv epilogues), the layers and the CPU reference.

export type Activation = 'relu' | 'leaky_relu' | 'sigmoid' | 'tanh' | 'gelu';
export const ACTIVATIONS: readonly Activation[] = ['relu', 'leaky_relu', 'sigmoid', 'tanh', 'gelu'];

/** Activations whose derivative can be read off their output (so a producer can fuse them). */
export const OUTPUT_DIFFERENTIABLE: readonly Activation[] = ['relu', 'leaky_relu'];
