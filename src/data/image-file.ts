// One image file, before and after decoding, the same in Node and in the browser: what its header
// says (format, size, grey or colour, alpha) read from the bytes themselves, the checks that tell
// a corrupt or truncated file from a good one before any decoder sees it, and the resampling that
// brings a decoded image to the model's input size. Decoders differ by platform (pngjs and jpeg-js
// in Node, createImageBitmap in the browser); everything around them is here, so that both name
// the same files for the same reasons and give the same pixels for the same decoded image.

/** File name endings read as images. Other files in a class folder are skipped, and named. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.jpe', '.jfif'];

export type ImageFormat = 'png' | 'jpeg';

/** What an image file's header says. */
export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** The file stores one grey channel (PNG colour types 0 and 4, JPEG with one component). */
  grey: boolean;
  /** The file may hold transparency (PNG colour types 4 and 6, or a tRNS chunk). */
  alpha: boolean;
  /** Bits per sample (PNG 1..16; JPEG 8 or 12). */
  bitDepth: number;
}

/** A file that cannot be read as an image: why, in words that name no file (the caller adds it). */
export class ImageFileError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'ImageFileError';
  }
}

/** A decoded image: 8-bit RGBA, row-major, `width * height * 4` bytes. */
export interface RgbaImage {
  width: number;
  height: number;
  rgba: Uint8Array | Uint8ClampedArray;
}

export function hasImageExtension(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Names of formats people put in image folders that this reader does not take, by their first bytes. */
function otherFormat(b: Uint8Array): string | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (ascii(0, 4) === 'GIF8') return 'GIF';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'WebP';
  if (ascii(0, 2) === 'BM') return 'BMP';
  if ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0x2a)) return 'TIFF';
  if (ascii(4, 12) === 'ftypheic' || ascii(4, 12) === 'ftypavif' || ascii(4, 12) === 'ftypmif1') return 'HEIC/AVIF';
  return null;
}

/**
 * Read an image file's header and check that the file is whole: a PNG must end with its IEND
 * chunk, a JPEG with its end-of-image marker. Throws ImageFileError saying what is wrong.
 */
export function readImageHeader(b: Uint8Array): ImageHeader {
  if (b.length === 0) throw new ImageFileError('the file is empty');
  if (PNG_SIGNATURE.every((v, i) => b[i] === v)) return pngHeader(b);
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return jpegHeader(b);
  const other = otherFormat(b);
  if (other) throw new ImageFileError(`a ${other} image: only PNG and JPEG are read (convert it, or remove it)`);
  throw new ImageFileError('not a PNG or JPEG file (its first bytes are neither signature)');
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function pngHeader(b: Uint8Array): ImageHeader {
  if (b.length < 33 || String.fromCharCode(...b.subarray(12, 16)) !== 'IHDR') throw new ImageFileError('a PNG without its IHDR header (the file is cut short or damaged)');
  const width = u32(b, 16);
  const height = u32(b, 20);
  const bitDepth = b[24];
  const colorType = b[25];
  if (width === 0 || height === 0) throw new ImageFileError(`a PNG of ${width}x${height} pixels`);
  if (![0, 2, 3, 4, 6].includes(colorType)) throw new ImageFileError(`a PNG with an invalid colour type ${colorType}`);
  // Walk the chunks: the last must be IEND (a cut file loses it), and tRNS means transparency.
  let at = 8;
  let trns = false;
  let ended = false;
  while (at + 8 <= b.length) {
    const len = u32(b, at);
    const type = String.fromCharCode(...b.subarray(at + 4, at + 8));
    if (at + 12 + len > b.length) break;
    if (type === 'tRNS') trns = true;
    if (type === 'IEND') {
      ended = true;
      break;
    }
    at += 12 + len;
  }
  if (!ended) throw new ImageFileError('a truncated PNG: the file ends before its IEND chunk');
  return { format: 'png', width, height, grey: colorType === 0 || colorType === 4, alpha: colorType === 4 || colorType === 6 || trns, bitDepth };
}

function jpegHeader(b: Uint8Array): ImageHeader {
  // Segments from SOI: each marker FFxx then a 2-byte length (markers D0..D9 and 01 have none);
  // the frame header (SOF0..SOF15 but C4, C8, CC) gives the size and the component count.
  let at = 2;
  let frame: { width: number; height: number; components: number; precision: number } | null = null;
  while (at + 4 <= b.length && !frame) {
    if (b[at] !== 0xff) throw new ImageFileError(`a damaged JPEG: expected a marker at byte ${at}`);
    const m = b[at + 1];
    if (m === 0xff) {
      at++; // fill byte
      continue;
    }
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      at += 2;
      continue;
    }
    if (m === 0xd9 || m === 0xda) break; // end of image, or scan data before any frame header
    const len = (b[at + 2] << 8) | b[at + 3];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (at + 10 > b.length) break;
      frame = { precision: b[at + 4], height: (b[at + 5] << 8) | b[at + 6], width: (b[at + 7] << 8) | b[at + 8], components: b[at + 9] };
    }
    at += 2 + len;
  }
  if (!frame) throw new ImageFileError('a damaged JPEG: no frame header (SOF) before the image data');
  if (frame.width === 0 || frame.height === 0) throw new ImageFileError(`a JPEG of ${frame.width}x${frame.height} pixels`);
  // A cut file loses the end-of-image marker; some cameras append bytes after it, so look near the end.
  let ended = false;
  for (let i = b.length - 2; i >= Math.max(2, b.length - 4096); i--) {
    if (b[i] === 0xff && b[i + 1] === 0xd9) {
      ended = true;
      break;
    }
  }
  if (!ended) throw new ImageFileError('a truncated JPEG: the file ends without its end-of-image marker');
  return { format: 'jpeg', width: frame.width, height: frame.height, grey: frame.components === 1, alpha: false, bitDepth: frame.precision };
}

// ---- resampling --------------------------------------------------------------------------------

/** The centred window of `w x h` with the aspect ratio of `outW x outH`: what is kept before resizing. */
export function centreCrop(w: number, h: number, outW: number, outH: number): { x: number; y: number; width: number; height: number } {
  // Compare w/h with outW/outH without rounding: the crop trims the longer side only.
  if (w * outH > h * outW) {
    const width = (h * outW) / outH;
    return { x: (w - width) / 2, y: 0, width, height: h };
  }
  const height = (w * outH) / outW;
  return { x: 0, y: (h - height) / 2, width: w, height };
}

/**
 * Weights of a 1-D resampling from the source interval [start, start + length) to `out` samples:
 * a triangle (bilinear) filter widened by the scale when shrinking, so that every source pixel
 * counts (antialiasing, as Pillow's BILINEAR resize), cut at the interval's whole pixels. For each output sample: its first source
 * index and normalised weights.
 */
export function resampleWeights(start: number, length: number, srcSize: number, out: number): { first: Int32Array; count: Int32Array; weights: Float64Array; taps: number } {
  const scale = length / out;
  const support = Math.max(1, scale);
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(out);
  const count = new Int32Array(out);
  const weights = new Float64Array(out * taps);
  for (let o = 0; o < out; o++) {
    const centre = start + (o + 0.5) * scale;
    // Pixels outside the crop are not part of the picture: the filter stops at its edges.
    const lo = Math.max(Math.floor(start), Math.floor(centre - support));
    const hi = Math.min(srcSize, Math.ceil(start + length), Math.ceil(centre + support));
    let sum = 0;
    let k = 0;
    for (let i = lo; i < hi && k < taps; i++, k++) {
      const w = Math.max(0, 1 - Math.abs((i + 0.5 - centre) / support));
      weights[o * taps + k] = w;
      sum += w;
    }
    // Near an edge every weight can be 0 (a centre outside all pixel centres): take the nearest pixel.
    if (sum === 0) {
      const nearest = Math.min(srcSize - 1, Math.max(0, Math.floor(centre)));
      first[o] = nearest;
      count[o] = 1;
      weights[o * taps] = 1;
      continue;
    }
    for (let j = 0; j < k; j++) weights[o * taps + j] /= sum;
    first[o] = lo;
    count[o] = k;
  }
  return { first, count, weights, taps };
}

export interface ToSampleOptions {
  width: number;
  height: number;
  /** 1: grey (ITU-R 601 luma, as Pillow's convert('L')); 3: RGB. */
  channels: 1 | 3;
}

/**
 * A decoded image as one model sample: centre-cropped to the target's aspect ratio, resampled to
 * `width x height`, alpha composited over black, as uint8 planes [C, H, W].
 */
export function imageToSample(img: RgbaImage, o: ToSampleOptions): Uint8Array {
  const { width: W, height: H } = o;
  const crop = centreCrop(img.width, img.height, W, H);
  const wx = resampleWeights(crop.x, crop.width, img.width, W);
  const wy = resampleWeights(crop.y, crop.height, img.height, H);
  // Premultiplied RGB (over black): [3, img.height, W] after the horizontal pass.
  const rows = new Float64Array(3 * img.height * W);
  const src = img.rgba;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < W; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < wx.count[x]; k++) {
        const w = wx.weights[x * wx.taps + k];
        const p = (y * img.width + wx.first[x] + k) * 4;
        const a = src[p + 3] / 255;
        r += w * src[p] * a;
        g += w * src[p + 1] * a;
        b += w * src[p + 2] * a;
      }
      const at = y * W + x;
      rows[at] = r;
      rows[img.height * W + at] = g;
      rows[2 * img.height * W + at] = b;
    }
  }
  const plane = img.height * W;
  const out = new Uint8Array(o.channels * H * W);
  const clamp = (v: number) => Math.min(255, Math.max(0, Math.round(v)));
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const rgb = [0, 0, 0];
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let k = 0; k < wy.count[y]; k++) v += wy.weights[y * wy.taps + k] * rows[c * plane + (wy.first[y] + k) * W + x];
        rgb[c] = v;
      }
      if (o.channels === 1) out[y * W + x] = clamp(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
      else for (let c = 0; c < 3; c++) out[c * H * W + y * W + x] = clamp(rgb[c]);
    }
  }
  return out;
}
