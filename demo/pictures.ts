// What the model has learned, as pictures: the first layer's weights per unit, a grid of test
// images with predicted and true labels (mistakes marked), the confusion matrix, and for test
// images it gets right and wrong, where it looks: saliency maps, and a ViT's attention maps.
// The data comes from the training worker (protocol.ts); this file only draws.
import type { DatasetSummary, Explanation, Explanations, TestPictures } from './protocol.ts';

/** An image of a sample of `shape` [C, H, W] (C = 1 grey, C = 3 RGB planes) from uint8 or [0, 1] values. */
export function imageCanvas(values: ArrayLike<number>, shape: readonly number[], scale255: boolean): HTMLCanvasElement {
  const [c, h, w] = shape.length === 3 ? shape : [1, 1, shape[0]];
  const k = scale255 ? 1 : 255;
  return pixelCanvas(w, h, (p) => {
    const r = values[p] * k;
    return [r, c === 3 ? values[h * w + p] * k : r, c === 3 ? values[2 * h * w + p] * k : r];
  });
}

/** A canvas of `w` x `h` pixels, pixel `p` (row-major) coloured `rgb(p)`, opaque. */
function pixelCanvas(w: number, h: number, rgb: (p: number) => [number, number, number]): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(w, h);
  for (let p = 0; p < h * w; p++) img.data.set([...rgb(p), 255], p * 4);
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/**
 * Weight images of the first `count` units of a weight tensor [units, ...rest] whose rest is one
 * sample ([in] with in = C*H*W of the input) or one convolution kernel ([C, kh, kw]). Each unit is
 * scaled by its own largest |w|: blue negative, red positive (one channel), or min-max per unit (RGB).
 */
export function weightImages(w: Float32Array, shape: readonly number[], inputShape: readonly number[], count: number, first = 0): HTMLCanvasElement[] | null {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  let imgShape: number[];
  if (shape.length === 4) imgShape = [shape[1], shape[2], shape[3]];
  else if (shape.length === 2 && inputShape.length === 3 && per === inputShape.reduce((a, b) => a * b, 1)) imgShape = [...inputShape];
  else return null;
  const [c, h, wd] = imgShape;
  const out: HTMLCanvasElement[] = [];
  for (let u = first; u < Math.min(first + count, shape[0]); u++) {
    const unit = w.subarray(u * per, (u + 1) * per);
    const canvas = document.createElement('canvas');
    canvas.width = wd;
    canvas.height = h;
    const ctx = canvas.getContext('2d')!;
    const img = ctx.createImageData(wd, h);
    if (c === 1) {
      let m = 1e-12;
      for (const v of unit) m = Math.max(m, Math.abs(v));
      for (let p = 0; p < h * wd; p++) {
        const t = unit[p] / m;
        const a = Math.round(255 * Math.min(1, Math.abs(t)));
        const d = img.data;
        d[p * 4] = t >= 0 ? 255 : 255 - a;
        d[p * 4 + 1] = 255 - a;
        d[p * 4 + 2] = t >= 0 ? 255 - a : 255;
        d[p * 4 + 3] = 255;
      }
    } else {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of unit) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      const span = Math.max(hi - lo, 1e-12);
      for (let p = 0; p < h * wd; p++) {
        const ch = (k: number) => Math.round((255 * (unit[Math.min(k, c - 1) * h * wd + p] - lo)) / span);
        img.data.set([ch(0), ch(1), ch(2), 255], p * 4);
      }
    }
    ctx.putImageData(img, 0, 0);
    out.push(canvas);
  }
  return out;
}

export function className(ds: { classNames?: string[] | null }, c: number): string {
  return ds.classNames?.[c] ?? String(c);
}

/** Fill `root` with the grid of test images labelled "predicted (true)"; mistakes get the `wrong` class. */
export function renderTestGrid(root: HTMLElement, ds: DatasetSummary, pics: TestPictures): void {
  const S = ds.inputShape.reduce((a, b) => a * b, 1);
  const shape = ds.inputShape.length === 3 ? ds.inputShape : [1, 1, S];
  const cells = pics.grid.map((i, k) => {
    const p = pics.predicted[i];
    const t = pics.truth[i];
    const cell = document.createElement('figure');
    cell.className = p === t ? 'sample right' : 'sample wrong';
    const img = imageCanvas(pics.gridValues.subarray(k * S, (k + 1) * S), shape, ds.scale255);
    const cap = document.createElement('figcaption');
    cap.textContent = p === t ? className(ds, p) : `${className(ds, p)} (${className(ds, t)})`;
    cap.title = `predicted ${className(ds, p)} with p=${pics.confidence[i].toFixed(2)}; true ${className(ds, t)}`;
    cell.append(img, cap);
    return cell;
  });
  root.replaceChildren(...cells);
}

/** counts[t * C + p]: test samples of true class t predicted as p. */
export function confusionMatrix(ds: DatasetSummary, pics: TestPictures): Int32Array {
  const C = ds.numClasses;
  const counts = new Int32Array(C * C);
  for (let i = 0; i < pics.truth.length; i++) counts[pics.truth[i] * C + pics.predicted[i]]++;
  return counts;
}

/** A table: rows true class, columns predicted class; shading by the share of the row. */
export function renderConfusion(root: HTMLElement, ds: DatasetSummary, counts: Int32Array): void {
  const C = ds.numClasses;
  const table = document.createElement('table');
  table.className = 'confusion';
  const head = table.createTHead().insertRow();
  head.insertCell().outerHTML = '<th class="corner">true \\ pred</th>';
  for (let p = 0; p < C; p++) {
    const th = document.createElement('th');
    th.textContent = className(ds, p);
    head.append(th);
  }
  const body = table.createTBody();
  for (let t = 0; t < C; t++) {
    const row = body.insertRow();
    const th = document.createElement('th');
    th.textContent = className(ds, t);
    row.append(th);
    let total = 0;
    for (let p = 0; p < C; p++) total += counts[t * C + p];
    for (let p = 0; p < C; p++) {
      const n = counts[t * C + p];
      const share = total ? n / total : 0;
      const cell = row.insertCell();
      cell.textContent = n ? String(n) : '';
      const hue = t === p ? 140 : 0;
      cell.style.background = n ? `hsla(${hue}, 70%, 45%, ${(0.12 + 0.88 * share).toFixed(3)})` : '';
      cell.title = `true ${className(ds, t)}, predicted ${className(ds, p)}: ${n} (${(share * 100).toFixed(1)}%)`;
    }
  }
  root.replaceChildren(table);
}

/** A heat map [H, W] of values in [0, 1] over the image (grey): dark red to yellow where high. */
export function heatCanvas(values: Float32Array, image: ArrayLike<number>, [c, h, w]: readonly number[], scale255: boolean): HTMLCanvasElement {
  const k = scale255 ? 1 : 255;
  return pixelCanvas(w, h, (p) => {
    let grey = 0;
    for (let ch = 0; ch < c; ch++) grey += image[ch * h * w + p] * k;
    grey /= c;
    const v = Math.min(1, Math.max(0, values[p]));
    // The picture faintly underneath, the heat on top.
    const heat = [255 * Math.min(1, 2 * v), 255 * Math.max(0, 2 * v - 1), 40 * (1 - v)];
    return [0.25 * grey + 0.75 * heat[0], 0.25 * grey + 0.75 * heat[1], 0.25 * grey + 0.75 * heat[2]];
  });
}

/** Test images the model gets right and wrong, each with its saliency map (and attention map for a ViT). */
export function renderExplanations(root: HTMLElement, ds: DatasetSummary, ex: Explanations): void {
  const shape = [ex.channels, ex.height, ex.width];
  const figure = (e: Explanation, outcome: 'right' | 'wrong') => {
    const fig = document.createElement('figure');
    fig.className = `explained ${outcome}`;
    fig.dataset.outcome = outcome;
    const pics: HTMLCanvasElement[] = [imageCanvas(e.image, shape, ds.scale255)];
    pics[0].dataset.kind = 'image';
    const sal = heatCanvas(e.saliency, e.image, shape, ds.scale255);
    sal.dataset.kind = 'saliency';
    sal.title = 'saliency: |d logit / d pixel| of the predicted class';
    pics.push(sal);
    if (e.attention) {
      const att = heatCanvas(e.attention, e.image, shape, ds.scale255);
      att.dataset.kind = 'attention';
      att.title = `attention received by each patch (${ex.attentionPath}, mean over heads)`;
      pics.push(att);
    }
    const cap = document.createElement('figcaption');
    cap.textContent = outcome === 'right' ? `${className(ds, e.predicted)} (${(e.confidence * 100).toFixed(0)}%)` : `${className(ds, e.predicted)}, truly ${className(ds, e.truth)}`;
    fig.append(...pics, cap);
    return fig;
  };
  const group = (title: string, list: Explanation[], outcome: 'right' | 'wrong') => {
    const div = document.createElement('div');
    div.className = 'explain-group';
    const h = document.createElement('h3');
    h.textContent = list.length ? title : `${title}: none in the test split`;
    div.append(h, ...list.map((e) => figure(e, outcome)));
    return div;
  };
  root.replaceChildren(group('Right', ex.right, 'right'), group('Wrong', ex.wrong, 'wrong'));
}
