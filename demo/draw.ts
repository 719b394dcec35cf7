// The drawing pad: a canvas a person draws on with mouse, pen or finger (pointer events), and the
// preprocessing that turns the drawing into a model input the way MNIST digits were made:
//   1. crop to the bounding box of the ink;
//   2. scale it (keeping its aspect ratio) so that its longer side is 20 px of a 28 px field,
//      averaging the source pixels that fall in each target pixel (anti-aliased, like MNIST);
//   3. place it in the 28x28 field so that its centre of mass lands on the field's centre.
// For other single-channel image sizes the same is done with the box scaled by size/28.

export interface DrawPadOptions {
  /** Called (at most once per animation frame) after each change to the drawing. */
  onChange(): void;
  /** Line width in canvas pixels. */
  lineWidth?: number;
}

/** Attach drawing to a canvas; returns a function that clears it. */
export function attachDrawPad(canvas: HTMLCanvasElement, opts: DrawPadOptions): { clear(): void } {
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let drawing = false;
  let last: [number, number] | null = null;
  let queued = false;
  const changed = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      opts.onChange();
    });
  };
  const at = (ev: PointerEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [((ev.clientX - r.left) / r.width) * canvas.width, ((ev.clientY - r.top) / r.height) * canvas.height];
  };
  const stroke = (to: [number, number]) => {
    ctx.strokeStyle = '#fff';
    ctx.fillStyle = '#fff';
    ctx.lineWidth = opts.lineWidth ?? canvas.width / 12;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    if (last) {
      ctx.moveTo(last[0], last[1]);
      ctx.lineTo(to[0], to[1]);
      ctx.stroke();
    } else {
      ctx.arc(to[0], to[1], ctx.lineWidth / 2, 0, Math.PI * 2);
      ctx.fill();
    }
    last = to;
    changed();
  };
  canvas.addEventListener('pointerdown', (ev) => {
    drawing = true;
    last = null;
    canvas.setPointerCapture?.(ev.pointerId);
    stroke(at(ev));
    ev.preventDefault();
  });
  canvas.addEventListener('pointermove', (ev) => {
    if (!drawing) return;
    // Coalesced events keep fast strokes smooth where the browser batches them.
    const events = ev.getCoalescedEvents?.() ?? [ev];
    for (const e of events.length ? events : [ev]) stroke(at(e));
    ev.preventDefault();
  });
  const end = () => {
    drawing = false;
    last = null;
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  return {
    clear: () => {
      clear();
      changed();
    },
  };
}

/**
 * The drawing as an h x w image of intensities in [0, 1] (ink = 1), MNIST-style (see the file
 * header); null when nothing is drawn.
 */
export function drawingToInput(canvas: HTMLCanvasElement, h: number, w: number): Float32Array | null {
  const W = canvas.width;
  const H = canvas.height;
  const rgba = canvas.getContext('2d', { willReadFrequently: true })!.getImageData(0, 0, W, H).data;
  const ink = new Float32Array(W * H);
  let x0 = W;
  let y0 = H;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const v = rgba[(y * W + x) * 4] / 255;
      ink[y * W + x] = v;
      if (v > 0.05) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const box = Math.max(1, Math.round((20 / 28) * Math.min(h, w)));
  const scale = box / Math.max(bw, bh);
  const sw = Math.max(1, Math.round(bw * scale));
  const sh = Math.max(1, Math.round(bh * scale));
  // Area average: each small pixel is the mean of the source pixels it covers.
  const small = new Float32Array(sw * sh);
  for (let ty = 0; ty < sh; ty++) {
    const sy0 = y0 + Math.floor((ty * bh) / sh);
    const sy1 = Math.max(sy0 + 1, y0 + Math.floor(((ty + 1) * bh) / sh));
    for (let tx = 0; tx < sw; tx++) {
      const sx0 = x0 + Math.floor((tx * bw) / sw);
      const sx1 = Math.max(sx0 + 1, x0 + Math.floor(((tx + 1) * bw) / sw));
      let sum = 0;
      for (let y = sy0; y < sy1; y++) for (let x = sx0; x < sx1; x++) sum += ink[y * W + x];
      small[ty * sw + tx] = sum / ((sy1 - sy0) * (sx1 - sx0));
    }
  }
  // Centre of mass (pixel centres at +0.5), moved to the centre of the h x w field.
  let mass = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      const v = small[y * sw + x];
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  const ox = Math.round(w / 2 - mx / mass);
  const oy = Math.round(h / 2 - my / mass);
  const out = new Float32Array(h * w);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      const X = x + ox;
      const Y = y + oy;
      if (X >= 0 && X < w && Y >= 0 && Y < h) out[Y * w + X] = Math.min(1, small[y * sw + x]);
    }
  }
  return out;
}
