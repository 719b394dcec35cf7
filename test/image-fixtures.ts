// Small image folders written by the tests themselves: PNG (pngjs) and JPEG (jpeg-js) files of
// mixed sizes and modes, one subfolder per class, plus the bad files a real folder has (corrupt,
// truncated, not an image). Classes differ by colour, so a small model learns them in a few steps.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

/** A seeded generator (LCG) for pixel noise: the same folder on every run. */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** RGBA pixels of `w x h` around a colour, with noise of +-`spread`. */
export function rgbaAround(w: number, h: number, rgb: [number, number, number], seed: number, spread = 40): Uint8Array {
  const rnd = noise(seed);
  const out = new Uint8Array(w * h * 4);
  for (let p = 0; p < w * h; p++) {
    for (let c = 0; c < 3; c++) out[p * 4 + c] = Math.max(0, Math.min(255, Math.round(rgb[c] + (rnd() * 2 - 1) * spread)));
    out[p * 4 + 3] = 255;
  }
  return out;
}

/** PNG bytes: colour type 6 (RGBA) by default, 0 (grey, from the red channel) with `grey`. */
export function pngBytes(w: number, h: number, rgba: Uint8Array, opts: { grey?: boolean } = {}): Buffer {
  const png = new PNG({ width: w, height: h, colorType: opts.grey ? 0 : 6, inputColorType: 6, inputHasAlpha: true, bitDepth: 8 });
  png.data = Buffer.from(rgba);
  return PNG.sync.write(png, { colorType: opts.grey ? 0 : 6, inputColorType: 6, inputHasAlpha: true });
}

/** JPEG bytes (always 3 components from jpeg-js), quality 90. */
export function jpegBytes(w: number, h: number, rgba: Uint8Array): Buffer {
  return jpeg.encode({ width: w, height: h, data: Buffer.from(rgba) }, 90).data;
}

export interface FolderSpec {
  /** Class name -> its colour and whether its PNGs are stored grey. */
  classes: Record<string, { rgb: [number, number, number]; grey?: boolean }>;
  /** Images per class (alternating PNG and JPEG, mixed sizes). */
  perClass: number;
  /** Add a corrupt PNG, a truncated JPEG, a text file and a file outside any class. */
  badFiles?: boolean;
}

const SIZES: [number, number][] = [
  [20, 20],
  [24, 16],
  [40, 30],
  [32, 32],
  [17, 23],
];

/** Write the folder; returns the paths of the bad files (relative), if any. */
export function writeImageFolder(root: string, spec: FolderSpec): { corrupt: string[]; ignored: string[] } {
  let seed = 1;
  for (const [name, c] of Object.entries(spec.classes)) {
    mkdirSync(join(root, name), { recursive: true });
    for (let i = 0; i < spec.perClass; i++) {
      const [w, h] = SIZES[i % SIZES.length];
      const px = rgbaAround(w, h, c.rgb, seed++);
      // Grey classes are all PNG (a JPEG from jpeg-js always has three components).
      const asJpeg = !c.grey && i % 2 === 1;
      writeFileSync(join(root, name, `${name}-${String(i).padStart(2, '0')}.${asJpeg ? 'jpg' : 'png'}`), asJpeg ? jpegBytes(w, h, px) : pngBytes(w, h, px, { grey: c.grey }));
    }
  }
  if (!spec.badFiles) return { corrupt: [], ignored: [] };
  const [first] = Object.keys(spec.classes);
  const good = pngBytes(8, 8, rgbaAround(8, 8, [10, 200, 10], 99));
  // A PNG whose compressed data is overwritten: the header is fine, the decoder fails.
  const damaged = Buffer.from(good);
  damaged.fill(0x55, 41, damaged.length - 12);
  writeFileSync(join(root, first, 'damaged.png'), damaged);
  const jpg = jpegBytes(16, 16, rgbaAround(16, 16, [200, 10, 10], 98));
  writeFileSync(join(root, first, 'cut.jpg'), jpg.subarray(0, Math.floor(jpg.length / 2)));
  writeFileSync(join(root, first, 'notes.txt'), 'not an image\n');
  writeFileSync(join(root, 'README.md'), 'one folder per class\n');
  return { corrupt: [`${first}/cut.jpg`, `${first}/damaged.png`], ignored: [`${first}/notes.txt`, 'README.md'] };
}
