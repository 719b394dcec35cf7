// Image folders: headers and whole-file checks, the resampling against a plain 2-D reference, the
// folder's classes, split and report on folders this test writes (PNG and JPEG, mixed sizes and
// modes, bad files), and the refusals that name the folder or file and the reason.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../src/data/dataset.ts';
import { centreCrop, imageToSample, readImageHeader, type RgbaImage } from '../src/data/image-file.ts';
import { formatImageFolderReport, inputLimitProblem, sortImageFolder } from '../src/data/image-folder.ts';
import { readImageFolder } from '../src/data/image-folder-node.ts';
import { loadDataset } from '../src/data/node.ts';
import { jpegBytes, pngBytes, rgbaAround, writeImageFolder } from './image-fixtures.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'image-folder-test-'));
  dirs.push(d);
  return d;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('image file headers', () => {
  it('reads size and mode from PNG and JPEG headers', () => {
    const px = rgbaAround(7, 5, [100, 150, 200], 1);
    expect(readImageHeader(pngBytes(7, 5, px))).toEqual({ format: 'png', width: 7, height: 5, grey: false, alpha: true, bitDepth: 8 });
    expect(readImageHeader(pngBytes(7, 5, px, { grey: true }))).toMatchObject({ format: 'png', width: 7, height: 5, grey: true, alpha: false });
    expect(readImageHeader(jpegBytes(7, 5, px))).toMatchObject({ format: 'jpeg', width: 7, height: 5, grey: false, alpha: false, bitDepth: 8 });
  });

  it('tells truncated, empty and foreign files apart, saying why', () => {
    const png = pngBytes(9, 9, rgbaAround(9, 9, [1, 2, 3], 2));
    const jpg = jpegBytes(9, 9, rgbaAround(9, 9, [1, 2, 3], 2));
    expect(() => readImageHeader(png.subarray(0, png.length - 20))).toThrow(/truncated PNG/);
    expect(() => readImageHeader(jpg.subarray(0, jpg.length - 10))).toThrow(/truncated JPEG/);
    expect(() => readImageHeader(new Uint8Array(0))).toThrow(/empty/);
    expect(() => readImageHeader(new TextEncoder().encode('GIF89a....'))).toThrow(/GIF image: only PNG and JPEG/);
    expect(() => readImageHeader(new TextEncoder().encode('hello, world'))).toThrow(/not a PNG or JPEG/);
  });
});

/** Plain reference: every output pixel a triangle-weighted mean over the whole crop's pixels, in float64. */
function referenceResize(img: RgbaImage, W: number, H: number, c: number): number[] {
  const crop = centreCrop(img.width, img.height, W, H);
  const sx = crop.width / W;
  const sy = crop.height / H;
  const out: number[] = [];
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const cx = crop.x + (x + 0.5) * sx;
      const cy = crop.y + (y + 0.5) * sy;
      let sum = 0;
      let wsum = 0;
      for (let j = Math.floor(crop.y); j < Math.ceil(crop.y + crop.height); j++) {
        const wy = Math.max(0, 1 - Math.abs((j + 0.5 - cy) / Math.max(1, sy)));
        for (let i = Math.floor(crop.x); i < Math.ceil(crop.x + crop.width); i++) {
          const wx = Math.max(0, 1 - Math.abs((i + 0.5 - cx) / Math.max(1, sx)));
          sum += wx * wy * img.rgba[(j * img.width + i) * 4 + c];
          wsum += wx * wy;
        }
      }
      out.push(sum / wsum);
    }
  }
  return out;
}

describe('resampling to the model input', () => {
  const img = (w: number, h: number, seed: number): RgbaImage => ({ width: w, height: h, rgba: rgbaAround(w, h, [128, 128, 128], seed, 127) });

  it('matches a plain 2-D triangle-filter reference when shrinking, enlarging and cropping', () => {
    for (const [w, h, W, H] of [
      [37, 29, 8, 8],
      [5, 7, 12, 12],
      [40, 20, 10, 10],
      [13, 31, 9, 6],
    ]) {
      const src = img(w, h, w * 100 + h);
      const got = imageToSample(src, { width: W, height: H, channels: 3 });
      for (let c = 0; c < 3; c++) {
        const want = referenceResize(src, W, H, c);
        const plane = Array.from(got.subarray(c * W * H, (c + 1) * W * H));
        // Rounding to uint8 is the only difference: at most 0.5, plus float noise.
        const worst = Math.max(...plane.map((v, i) => Math.abs(v - want[i])));
        expect(worst, `${w}x${h} -> ${W}x${H}, channel ${c}`).toBeLessThanOrEqual(0.5 + 1e-9);
      }
    }
  });

  it('keeps an image of the target size as it is, and crops the centre of a wide one', () => {
    const src = img(6, 4, 3);
    const same = imageToSample(src, { width: 6, height: 4, channels: 3 });
    for (let p = 0; p < 24; p++) expect(same[p]).toBe(src.rgba[p * 4]);
    // 30x10: red thirds either side of a green middle; a square crop keeps the green only.
    const wide = new Uint8Array(30 * 10 * 4);
    for (let p = 0; p < 300; p++) wide.set(p % 30 >= 10 && p % 30 < 20 ? [0, 255, 0, 255] : [255, 0, 0, 255], p * 4);
    const sq = imageToSample({ width: 30, height: 10, rgba: wide }, { width: 5, height: 5, channels: 3 });
    expect(Math.max(...sq.subarray(0, 25))).toBe(0);
    expect(Math.min(...sq.subarray(25, 50))).toBe(255);
  });

  it('composites transparency over black and makes grey as luma', () => {
    const half = new Uint8Array([200, 100, 50, 128]);
    expect(Array.from(imageToSample({ width: 1, height: 1, rgba: half }, { width: 1, height: 1, channels: 3 }))).toEqual([100, 50, 25]);
    const opaque = new Uint8Array([200, 100, 50, 255]);
    expect(imageToSample({ width: 1, height: 1, rgba: opaque }, { width: 1, height: 1, channels: 1 })[0]).toBe(Math.round(0.299 * 200 + 0.587 * 100 + 0.114 * 50));
  });
});

describe('image folders', () => {
  const spec = {
    classes: { red: { rgb: [220, 40, 40] as [number, number, number] }, blue: { rgb: [40, 40, 220] as [number, number, number] }, grey: { rgb: [128, 128, 128] as [number, number, number], grey: true } },
    perClass: 10,
    badFiles: true,
  };

  it('reads one class per subfolder, PNG and JPEG of mixed sizes, and splits each class by the seed', () => {
    const root = tempDir();
    const bad = writeImageFolder(root, spec);
    const { dataset: ds, report } = readImageFolder(root, { imageSize: 12, valSplit: 0.3, seed: 5 });
    expect(ds.classNames).toEqual(['blue', 'grey', 'red']);
    expect(ds.inputShape).toEqual([3, 12, 12]); // colour classes make the set RGB
    expect(ds.train.n + ds.test.n).toBe(30);
    expect(report.classes).toEqual([
      { name: 'blue', train: 7, val: 3, skipped: 0 },
      { name: 'grey', train: 7, val: 3, skipped: 0 },
      { name: 'red', train: 7, val: 3, skipped: 2 },
    ]);
    const perClass = (y: ArrayLike<number>) => [0, 1, 2].map((c) => Array.from(y).filter((v) => v === c).length);
    expect(perClass(ds.test.y)).toEqual([3, 3, 3]);
    // Each label's pixels are its folder's colour (JPEG and resampling move them a little).
    const S = 3 * 12 * 12;
    const colours: Record<string, number[]> = { red: [220, 40, 40], blue: [40, 40, 220], grey: [128, 128, 128] };
    for (const split of [ds.train, ds.test]) {
      for (let i = 0; i < split.n; i++) {
        const want = colours[ds.classNames![split.y[i]]];
        for (let c = 0; c < 3; c++) {
          const plane = split.x.subarray(i * S + c * 144, i * S + (c + 1) * 144);
          const mean = Array.from(plane).reduce((a, b) => a + b, 0) / 144;
          expect(Math.abs(mean - want[c]), `sample ${i} of class ${ds.classNames![split.y[i]]}, channel ${c}`).toBeLessThan(12);
        }
      }
    }
    // Bad files: skipped and named with a reason, never labelled.
    expect(report.corrupt.map((c) => c.file).sort()).toEqual(bad.corrupt);
    expect(report.corrupt.find((c) => c.file.endsWith('cut.jpg'))!.reason).toMatch(/truncated JPEG/);
    expect(report.corrupt.find((c) => c.file.endsWith('damaged.png'))!.reason).toMatch(/the PNG decoder failed/);
    expect(report.ignored.map((c) => c.file).sort()).toEqual(bad.ignored.sort());
    const lines = formatImageFolderReport(report).join('\n');
    expect(lines).toMatch(/2 unreadable image files skipped/);
    expect(lines).toMatch(/blue\/blue-00\.png|mixed sizes: 5 different sizes/);
    expect(lines).toMatch(/mixed modes: 10 grey images \(first: grey\/grey-00\.png\) and 20 colour images/);
    expect(ds.source).toMatch(/2 unreadable files skipped/);

    // The same seed gives the same split; another seed another one; the split is stratified either way.
    const again = readImageFolder(root, { imageSize: 12, valSplit: 0.3, seed: 5 }).dataset;
    expect(Buffer.from(again.test.x).equals(Buffer.from(ds.test.x))).toBe(true);
    const other = readImageFolder(root, { imageSize: 12, valSplit: 0.3, seed: 6 }).dataset;
    expect(Buffer.from(other.test.x).equals(Buffer.from(ds.test.x))).toBe(false);
    expect(perClass(other.test.y)).toEqual([3, 3, 3]);
  });

  it('reads an all-grey folder as one channel, and --channels forces either', () => {
    const root = tempDir();
    writeImageFolder(root, { classes: { dark: { rgb: [40, 40, 40], grey: true }, light: { rgb: [210, 210, 210], grey: true } }, perClass: 3 });
    expect(readImageFolder(root, { imageSize: [6, 8] }).dataset.inputShape).toEqual([1, 6, 8]);
    expect(readImageFolder(root, { imageSize: 6, channels: 3 }).dataset.inputShape).toEqual([3, 6, 6]);
  });

  it('is what loadDataset makes of a directory of class folders', () => {
    const root = tempDir();
    writeImageFolder(root, { classes: { a: { rgb: [0, 0, 0] }, b: { rgb: [255, 255, 255] } }, perClass: 4 });
    const lines: string[] = [];
    const ds = loadDataset(root, { images: { imageSize: 8 }, log: (s) => lines.push(s) });
    expect(ds.classNames).toEqual(['a', 'b']);
    expect(ds.train.n + ds.test.n).toBe(8);
    expect(lines[0]).toMatch(/2 classes, 8 images read as 8x8 RGB/);
  });

  it('refuses one class, an empty class, a class of only bad files, and more images than fit, naming them', () => {
    const one = tempDir();
    writeImageFolder(one, { classes: { cats: { rgb: [1, 2, 3] } }, perClass: 2 });
    expect(() => readImageFolder(one)).toThrow(DataError);
    expect(() => readImageFolder(one)).toThrow(/one class folder \("cats"\): a classifier needs two or more classes/);

    const empty = tempDir();
    writeImageFolder(empty, { classes: { cats: { rgb: [1, 2, 3] }, dogs: { rgb: [3, 2, 1] } }, perClass: 2 });
    mkdirSync(join(empty, 'birds'));
    mkdirSync(join(empty, 'fish'));
    writeFileSync(join(empty, 'fish', 'list.txt'), 'x');
    expect(() => readImageFolder(empty)).toThrow(/2 class folders hold no PNG or JPEG images: birds\/ \(nothing\); fish\/ \(only list\.txt\)/);

    const dead = tempDir();
    writeImageFolder(dead, { classes: { cats: { rgb: [1, 2, 3] }, dogs: { rgb: [3, 2, 1] } }, perClass: 2 });
    mkdirSync(join(dead, 'owls'));
    writeFileSync(join(dead, 'owls', 'a.jpg'), 'not really a jpeg');
    expect(() => readImageFolder(dead)).toThrow(/no readable image in owls\/ \(1 file, none readable; first: not a PNG or JPEG file/);

    const big = tempDir();
    writeImageFolder(big, { classes: { cats: { rgb: [1, 2, 3] }, dogs: { rgb: [3, 2, 1] } }, perClass: 3 });
    // 6 images of 3x64x64 = 72 KiB; room for 4.
    expect(() => readImageFolder(big, { imageSize: 64, maxBytes: 4 * 3 * 64 * 64 })).toThrow(/6 images at 3x64x64 need 72 KiB decoded, over the limit of 48 KiB: 4 images fit \(the first one past it is dogs\/dogs-01\.jpg\)/);
  });

  it('sorts files into classes from a browser-style listing, ignoring files outside class folders', () => {
    const l = sortImageFolder('photos', { files: ['cats/b.JPG', 'cats/a.png', 'dogs/x/y.jpeg', 'dogs/z.gif', 'top.png', '.DS_Store', '__MACOSX/cats/._a.png'] });
    expect(l.classes).toEqual([
      { name: 'cats', files: ['cats/a.png', 'cats/b.JPG'] },
      { name: 'dogs', files: ['dogs/x/y.jpeg'] },
    ]);
    expect(l.ignored.map((i) => i.file)).toEqual(['dogs/z.gif', 'top.png', '.DS_Store', '__MACOSX/cats/._a.png']);
  });

  it("says when one sample or one batch exceeds the adapter's buffer limits, and which batch fits", () => {
    const limits = { maxStorageBufferBindingSize: 128 * 1024 ** 2, maxBufferSize: 256 * 1024 ** 2 };
    expect(inputLimitProblem([3, 32, 32], 64, limits)).toBeNull();
    expect(inputLimitProblem([3, 4096, 4096], 1, limits)).toBe("one sample of [3, 4096, 4096] needs 192 MiB as f32, over the adapter's limit of 128 MiB per buffer: use a smaller image size");
    expect(inputLimitProblem([3, 1024, 1024], 64, limits)).toBe("a batch of 64 samples of [3, 1024, 1024] needs 768 MiB as f32, over the adapter's limit of 128 MiB per buffer: use a batch of at most 10");
  });
});
