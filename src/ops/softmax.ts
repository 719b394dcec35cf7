// Shape rule of the softmax over the last dimension, shared by the kernel wrappers and the layers.
import { describe, type Shaped } from './shape.ts';

/**
 * [rows, cols] of a softmax over the last dimension: every tensor has the shape of the first, of
 * rank >= 1; cols is the last dimension and rows the product of the others (1 for a vector).
 */
export function softmaxRows(what: string, x: Shaped, ...others: Shaped[]): [number, number] {
  const same = (t: Shaped) => t.shape.length === x.shape.length && t.shape.every((d, i) => d === x.shape[i]);
  if (x.shape.length < 1 || !others.every(same)) {
    throw new Error(`${what}: ${[x, ...others].map(describe).join(' and ')} must have one shape, of rank >= 1 (softmax over the last dimension).`);
  }
  const cols = x.shape[x.shape.length - 1];
  return [x.shape.slice(0, -1).reduce((a, b) => a * b, 1), cols];
}

/** The scale of a scaled softmax (softmax(scale * x)) must be a finite number. */
export function checkSoftmaxScale(what: string, scale: number, x: Shaped): void {
  if (!Number.isFinite(scale)) throw new Error(`${what}: the scale ${scale} must be a finite number (softmax of ${describe(x)}).`);
}
