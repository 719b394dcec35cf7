// CPU reference for shaders/elementwise.wgsl: add, multiply and scale with b broadcast along a's
// leading dimensions, and their backward passes, in plain loops (float64 sums). Same names and
// argument order as src/kernels/elementwise.ts (minus the engine). The broadcast rule lives in
// src/ops/elementwise.ts.
import type { AccumulateOptions } from '../ops/accumulate.ts';
import { broadcastGeometry, type AddOptions } from '../ops/elementwise.ts';
import { expectShape, describe } from '../ops/shape.ts';
import { store, type HostTensor } from './host.ts';

const REF = (name: string) => `Reference ${name}`;

/** y = alpha·a + beta·b, b repeating along a's leading dimensions (y += with accumulate). */
export function addForward(a: HostTensor, b: HostTensor, y: HostTensor, opts: AddOptions & AccumulateOptions = {}): void {
  const { n, nb } = broadcastGeometry(REF('addForward'), a, b, y);
  const { alpha = 1, beta = 1 } = opts;
  for (let i = 0; i < n; i++) store(y.data, i, alpha * a.data[i] + beta * b.data[i % nb], opts.accumulate);
}

/** y = a·b elementwise, b repeating along a's leading dimensions (y += with accumulate). */
export function mulForward(a: HostTensor, b: HostTensor, y: HostTensor, opts: AccumulateOptions = {}): void {
  const { n, nb } = broadcastGeometry(REF('mulForward'), a, b, y);
  for (let i = 0; i < n; i++) store(y.data, i, a.data[i] * b.data[i % nb], opts.accumulate);
}

/** y = s·x (y += with accumulate). */
export function scaleForward(x: HostTensor, y: HostTensor, s: number, opts: AccumulateOptions = {}): void {
  expectShape(REF('scaleForward'), y, x.shape, `(the shape of ${describe(x)})`);
  for (let i = 0; i < x.data.length; i++) store(y.data, i, s * x.data[i], opts.accumulate);
}

/** y = value everywhere (y += value with accumulate). */
export function fillForward(y: HostTensor, value: number, opts: AccumulateOptions = {}): void {
  for (let i = 0; i < y.data.length; i++) store(y.data, i, value, opts.accumulate);
}

/**
 * Gradients of y = alpha·a + beta·b from dy (a's shape): da = alpha·dy, db = beta · the sum of dy
 * over the dimensions b repeats along. Either output may be null (not needed); with accumulate
 * they are added to.
 */
export function addBackward(dy: HostTensor, da: HostTensor | null, db: HostTensor | null, opts: AddOptions & AccumulateOptions = {}): void {
  const { alpha = 1, beta = 1 } = opts;
  if (da) scaleForward(dy, da, alpha, opts);
  if (db) {
    const { n, nb } = broadcastGeometry(REF('addBackward'), dy, db, dy);
    const sums = new Float64Array(nb);
    for (let i = 0; i < n; i++) sums[i % nb] += dy.data[i];
    for (let j = 0; j < nb; j++) store(db.data, j, beta * sums[j], opts.accumulate);
  }
}

/**
 * Gradients of y = a·b (b broadcast) from dy: da = dy·b (b broadcast again), db = the sum of dy·a
 * over the dimensions b repeats along. Either output may be null; with accumulate they are added to.
 */
export function mulBackward(a: HostTensor, b: HostTensor, dy: HostTensor, da: HostTensor | null, db: HostTensor | null, opts: AccumulateOptions = {}): void {
  const { n, nb } = broadcastGeometry(REF('mulBackward'), a, b, dy);
  if (da) {
    expectShape(REF('mulBackward'), da, a.shape, `(the shape of ${describe(a)})`);
    for (let i = 0; i < n; i++) store(da.data, i, dy.data[i] * b.data[i % nb], opts.accumulate);
  }
  if (db) {
    expectShape(REF('mulBackward'), db, b.shape, `(the shape of ${describe(b)})`);
    const sums = new Float64Array(nb);
    for (let i = 0; i < n; i++) sums[i % nb] += dy.data[i] * a.data[i];
    for (let j = 0; j < nb; j++) store(db.data, j, sums[j], opts.accumulate);
  }
}
