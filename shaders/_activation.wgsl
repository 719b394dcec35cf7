// The activation functions and their ids, shared (through #include) by shaders/activation.wgsl and
// the matmul epilogue (shaders/_matmul_common.wgsl). The ids are the values of matmul's ACT
// override; src/kernels/activation.ts reads them from the ACT_* constants below, so this file is
// their only definition.
//
// Activations: relu, leaky_relu (negative slope alpha), sigmoid, tanh, gelu (tanh approximation:
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's approximate="tanh").
// `<act>_f(v)` is the function; `<act>_grad(v)` its derivative at the input v, for the smooth ones
// (the ReLUs' backward passes select dy by the sign of the input).

const ACT_NONE: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_LEAKY_RELU: u32 = 2u;
const ACT_SIGMOID: u32 = 3u;
const ACT_TANH: u32 = 4u;
const ACT_GELU: u32 = 5u;

// Saturating tanh: WGSL's tanh of a large argument may return NaN on some drivers.
fn tanh_f(v: f32) -> f32 {
  return tanh(clamp(v, -15.0, 15.0));
}

fn tanh_grad(v: f32) -> f32 {
  let t = tanh_f(v);
  return 1.0 - t * t;
}

fn relu_f(v: f32) -> f32 {
  return max(v, 0.0);
}

fn leaky_relu_f(v: f32, alpha: f32) -> f32 {
  return select(alpha * v, v, v > 0.0);
}

fn sigmoid_f(v: f32) -> f32 {
  // Stable for large |v|: exp of a non-positive number only.
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

fn sigmoid_grad(v: f32) -> f32 {
  let s = sigmoid_f(v);
  return s * (1.0 - s);
}

const GELU_C: f32 = 0.7978845608028654; // sqrt(2/pi)
const GELU_K: f32 = 0.044715;

fn gelu_f(v: f32) -> f32 {
  return 0.5 * v * (1.0 + tanh_f(GELU_C * (v + GELU_K * v * v * v)));
}

fn gelu_grad(v: f32) -> f32 {
  let t = tanh_f(GELU_C * (v + GELU_K * v * v * v));
  return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * v * v);
}

// The activation with id `act` (ACT_NONE: the identity).
fn activation_f(act: u32, v: f32, alpha: f32) -> f32 {
  switch act {
    case ACT_RELU: { return relu_f(v); }
    case ACT_LEAKY_RELU: { return leaky_relu_f(v, alpha); }
    case ACT_SIGMOID: { return sigmoid_f(v); }
    case ACT_TANH: { return tanh_f(v); }
    case ACT_GELU: { return gelu_f(v); }
    default: { return v; }
  }
}
