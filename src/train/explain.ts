// What a trained model looks at, computed on the GPU by the model's own graph: saliency maps (the
// gradient of a class's output with respect to the input pixels, through the backward pass of the
// evaluation forward) and a vision transformer's attention weights (a fused attention's weights,
// or a scaled softmax's output, kept readable by the plan). Used by the demo's pictures; any model works.
import type { Model } from '../nn/model.ts';
import type { Value } from '../nn/graph.ts';

export interface SaliencyResult {
  /** d output[class] / d input, [n, ...inputShape]. */
  gradients: Float32Array;
  /** The model's outputs (logits) for the inputs, [n, outputs]. */
  outputs: Float32Array;
  /** The class each gradient is of, per sample. */
  classes: Int32Array;
}

/**
 * Saliency of `n` inputs `x` ([n, ...inputShape], normalised as in training): for each sample the
 * gradient of one output (its `classes` entry, or the predicted class when omitted) with respect
 * to the input, in evaluation mode (running statistics, no dropout). Parameters and their
 * optimizer state are not changed; parameter gradients may be (a training step writes them anew).
 */
export async function saliency(model: Model, x: Float32Array, n: number, classes?: ArrayLike<number>): Promise<SaliencyResult> {
  const e = model.engine;
  if (!e) throw new Error('Build the model before asking for saliency.');
  if (model.inputShapes.length !== 1) throw new Error(`saliency: the model has ${model.inputShapes.length} inputs; one is supported.`);
  if (x.length !== n * model.inputSize) throw new Error(`saliency: ${x.length} values are not ${n} samples of [${model.inputShape.join(', ')}].`);
  const plan = await model.plan(n, { inputGradient: true });
  e.write(plan.input, x);
  e.run(...plan.forward);
  const outputs = await plan.output.read();
  const C = outputs.length / n;
  const chosen = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (classes) chosen[i] = classes[i];
    else for (let k = 1; k < C; k++) if (outputs[i * C + k] > outputs[i * C + chosen[i]]) chosen[i] = k;
    if (!(chosen[i] >= 0 && chosen[i] < C)) throw new Error(`saliency: class ${chosen[i]} of sample ${i} is not an output of the model (0..${C - 1}).`);
  }
  // The gradient of output c is the backward pass of a one-hot "loss gradient" at c.
  const onehot = new Float32Array(plan.dOutput.size);
  const perSample = plan.dOutput.size / n;
  for (let i = 0; i < n; i++) onehot[i * perSample + chosen[i]] = 1;
  e.write(plan.dOutput, onehot);
  e.run(...plan.backward);
  const gradients = await plan.dInputs[0].read();
  return { gradients, outputs, classes: chosen };
}

/**
 * The attentions of a model, in graph order: fused attention nodes (whose weights the plan offers
 * to inspect) and scaled-softmax nodes (whose output is the weights), with the weights' shape
 * per sample [heads, T, T].
 */
export function attentionValues(model: Model): { path: string; value: Value; shape: number[] }[] {
  const out: { path: string; value: Value; shape: number[] }[] = [];
  for (const node of model.nodes) {
    const v = node.outputs[0];
    if (node.op.kind === 'scaled_softmax' && v.shape.length >= 2) out.push({ path: node.path, value: v, shape: [...v.shape] });
    else if (node.op.kind === 'attention') {
      const heads = (node.op as unknown as { heads: number }).heads;
      const T = v.shape[0];
      out.push({ path: node.path, value: v, shape: [heads, T, T] });
    }
  }
  return out;
}

export interface AttentionResult {
  /** Module path of each attention (e.g. `blocks.0.attn.attention`). */
  paths: string[];
  /** Per attention: the weights [n, heads, tokens, tokens] (rows: queries, summing to 1). */
  weights: Float32Array[];
  /** Per attention: [heads, tokens, tokens]. */
  shapes: number[][];
}

/** The attention weights of every attention of the model for `n` inputs, in evaluation mode. */
export async function attentionMaps(model: Model, x: Float32Array, n: number): Promise<AttentionResult> {
  const e = model.engine;
  if (!e) throw new Error('Build the model before asking for attention maps.');
  const atts = attentionValues(model);
  if (!atts.length) throw new Error('attentionMaps: the model has no attention (no attention or scaled-softmax node).');
  if (x.length !== n * model.inputSize) throw new Error(`attentionMaps: ${x.length} values are not ${n} samples of [${model.inputShape.join(', ')}].`);
  const plan = await model.plan(n, { keep: atts.map((a) => a.value) });
  e.write(plan.input, x);
  e.run(...plan.forwardEval);
  const weights: Float32Array[] = [];
  for (const a of atts) {
    const t = plan.inspected.get(a.value)?.weights ?? plan.kept.get(a.value)!;
    weights.push(await t.read());
  }
  return { paths: atts.map((a) => a.path), weights, shapes: atts.map((a) => a.shape) };
}
