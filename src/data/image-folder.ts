// An image-folder dataset, the layout of Keras' image_dataset_from_directory and torchvision's
// ImageFolder: one subfolder per class (its name is the class name, classes in sorted order),
// PNG and JPEG files inside (nested folders too). Every image is centre-cropped to the target's
// aspect ratio and resized to the model's input size, read as grey or RGB, and a seeded stratified
// share of each class becomes the validation split. Platform code lists the files and decodes
// them (src/data/image-folder-node.ts, the demo's worker); this file decides what is read, checks
// the folder, and names each file it skips with the reason, so that a corrupt file is never given
// a label silently.
import { DataError, type Dataset, type Split } from './dataset.ts';
import { hasImageExtension, imageToSample, ImageFileError, readImageHeader, type ImageHeader, type RgbaImage } from './image-file.ts';
import { mixSeed } from './seed.ts';
import { Rng } from '../util/random.ts';

export interface ImageFolderOptions {
  /** Model input size: a side (square) or [height, width]. Default 32. */
  imageSize?: number | [number, number];
  /** 1: grey, 3: RGB, 'auto' (default): grey when every image is stored grey, else RGB. */
  channels?: 1 | 3 | 'auto';
  /** Share of each class held out for validation, in [0, 1). Default 0.2. */
  valSplit?: number;
  /** Seed of the validation split. Default 0. */
  seed?: number;
  /** Largest size of the decoded dataset in bytes (uint8 samples). Default 2 GiB. */
  maxBytes?: number;
  /** Dataset name; default the folder's name. */
  name?: string;
}

/** What a folder holds, as platform code lists it: file paths relative to the root, '/'-separated. */
export interface FolderContents {
  files: string[];
  /** Folders, relative to the root (an empty class folder holds no file to show it). */
  dirs?: string[];
}

export interface FolderListing {
  /** Class folders in sorted order, each with its image files in sorted order. */
  classes: { name: string; files: string[] }[];
  /** Files not read: not PNG or JPEG by name, or outside any class folder. */
  ignored: { file: string; reason: string }[];
}

export interface ImageFolderReport {
  root: string;
  imageSize: [number, number];
  channels: 1 | 3;
  classes: { name: string; train: number; val: number; skipped: number }[];
  ignored: { file: string; reason: string }[];
  /** Image files that could not be read: skipped, never labelled. */
  corrupt: { file: string; reason: string }[];
  /** Mixed sizes and modes, transparency, 16-bit files, enlarged images: each with an example file. */
  notes: string[];
}

export const DEFAULT_IMAGE_SIZE = 32;
export const DEFAULT_VAL_SPLIT = 0.2;
export const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
/** Bytes in the largest binary unit that keeps the number at 1 or more. */
export function bytesText(b: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (u < units.length - 1 && b >= 1024 ** (u + 1)) u++;
  return `${(b / 1024 ** u).toLocaleString('en-US', { maximumFractionDigits: u ? 1 : 0 })} ${units[u]}`;
}
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** [height, width] from an image size option; refuses what is not a positive whole number. */
export function imageSizeOf(size: ImageFolderOptions['imageSize']): [number, number] {
  const hw: [number, number] = size === undefined ? [DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE] : typeof size === 'number' ? [size, size] : [size[0], size[1]];
  if (!hw.every((v) => Number.isInteger(v) && v >= 1)) throw new Error(`image size must be positive whole numbers of pixels, got ${JSON.stringify(size)}`);
  return hw;
}

/**
 * Sort a folder's files into classes: the first path segment is the class, files directly in the
 * root are not in any class. Refuses, naming the folder, fewer than two classes and a class
 * without images.
 */
export function sortImageFolder(root: string, contents: FolderContents): FolderListing {
  const classes = new Map<string, { images: string[]; others: string[] }>();
  const ignored: FolderListing['ignored'] = [];
  const classOf = (name: string) => {
    let c = classes.get(name);
    if (!c) {
      c = { images: [], others: [] };
      classes.set(name, c);
    }
    return c;
  };
  for (const d of contents.dirs ?? []) {
    const top = d.split('/')[0];
    if (top && !top.startsWith('.')) classOf(top);
  }
  for (const f of contents.files) {
    const parts = f.split('/');
    if (parts.length < 2) {
      ignored.push({ file: f, reason: 'not in a class folder (each class is a subfolder)' });
      continue;
    }
    // Hidden folders (.git, __MACOSX's dot files) are not classes.
    if (parts[0].startsWith('.') || parts[0] === '__MACOSX') {
      ignored.push({ file: f, reason: 'in a hidden or system folder' });
      continue;
    }
    const c = classOf(parts[0]);
    if (hasImageExtension(f)) c.images.push(f);
    else {
      c.others.push(f);
      ignored.push({ file: f, reason: 'not a PNG or JPEG file name (.png, .jpg, .jpeg)' });
    }
  }
  const names = [...classes.keys()].sort(compare);
  const empty = names.filter((n) => classes.get(n)!.images.length === 0);
  if (empty.length) {
    const what = empty.map((n) => {
      const others = classes.get(n)!.others;
      return `${n}/ (${
        others.length
          ? `only ${others
              .slice(0, 3)
              .map((o) => o.slice(n.length + 1))
              .join(', ')}${others.length > 3 ? ', ...' : ''}`
          : 'nothing'
      })`;
    });
    throw new DataError(root, `${empty.length === 1 ? 'a class folder holds' : `${empty.length} class folders hold`} no PNG or JPEG images: ${what.join('; ')}. Add images, or remove the folder.`);
  }
  if (names.length < 2) {
    const found = names.length ? `one class folder ("${names[0]}")` : 'no class folders';
    throw new DataError(root, `${found}: a classifier needs two or more classes, one subfolder per class (${root}/cats/1.jpg, ${root}/dogs/2.png, ...)`);
  }
  return { classes: names.map((name) => ({ name, files: classes.get(name)!.images.sort(compare) })), ignored };
}

/** One file read so far: its class and what came of it. */
interface Read {
  cls: number;
  file: string;
  header?: ImageHeader;
  /** RGB [3, H, W] at the target size (reduced to grey in finish when the dataset is grey). */
  rgb?: Uint8Array;
  grey?: Uint8Array;
  error?: string;
}

/**
 * Reads a sorted folder file by file (platform code hands each file's bytes and decoded image, or
 * the error), then makes the dataset and the report. Refuses a folder whose decoded samples would
 * exceed `maxBytes`, before any file is read.
 */
export class ImageFolderReader {
  readonly size: [number, number];
  /** Every image file in reading order: class by class, files sorted. */
  readonly files: { cls: number; file: string }[];
  private readonly reads: Read[] = [];

  constructor(
    readonly root: string,
    readonly listing: FolderListing,
    readonly opts: ImageFolderOptions = {},
  ) {
    this.size = imageSizeOf(opts.imageSize);
    const split = opts.valSplit ?? DEFAULT_VAL_SPLIT;
    if (!(split >= 0 && split < 1)) throw new Error(`the validation split must be in [0, 1), got ${split}`);
    this.files = listing.classes.flatMap((c, cls) => c.files.map((file) => ({ cls, file })));
    const [H, W] = this.size;
    const perImage = (opts.channels === 1 ? 1 : 3) * H * W;
    const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    if (this.files.length * perImage > maxBytes) {
      const fit = Math.floor(maxBytes / perImage);
      throw new DataError(
        root,
        `${plural(this.files.length, 'image')} at ${opts.channels === 1 ? 1 : 3}x${H}x${W} need ${bytesText(this.files.length * perImage)} decoded, over the limit of ${bytesText(maxBytes)}: ` +
          `${plural(fit, 'image')} fit${fit < this.files.length ? ` (the first one past it is ${this.files[fit].file})` : ''}. Use a smaller image size or fewer images.`,
      );
    }
  }

  /** Read file `i` (its index in `files`) from its bytes with a platform decoder; a bad file is recorded, not thrown. */
  async read(i: number, bytes: Uint8Array, decode: (bytes: Uint8Array, header: ImageHeader) => RgbaImage | Promise<RgbaImage>): Promise<void> {
    const header = this.header(i, bytes);
    if (!header) return;
    let img: RgbaImage;
    try {
      img = await decode(bytes, header);
    } catch (err) {
      return this.reject(i, decodeFailure(err, header));
    }
    this.accept(i, header, img);
  }

  /** Read file `i` synchronously (Node's decoders are synchronous). */
  readSync(i: number, bytes: Uint8Array, decode: (bytes: Uint8Array, header: ImageHeader) => RgbaImage): void {
    const header = this.header(i, bytes);
    if (!header) return;
    let img: RgbaImage;
    try {
      img = decode(bytes, header);
    } catch (err) {
      this.reject(i, decodeFailure(err, header));
      return;
    }
    this.accept(i, header, img);
  }

  /** File `i`'s header, or null when it has none (the file is then recorded as unreadable). */
  private header(i: number, bytes: Uint8Array): ImageHeader | null {
    try {
      return readImageHeader(bytes);
    } catch (err) {
      this.reject(i, (err as Error).message);
      return null;
    }
  }

  /** Record file `i` as unreadable: skipped, with the reason. */
  reject(i: number, reason: string): void {
    this.reads[i] = { ...this.files[i], error: reason };
  }

  private accept(i: number, header: ImageHeader, img: RgbaImage): void {
    if (img.width !== header.width || img.height !== header.height) {
      this.reject(i, `decoded as ${img.width}x${img.height}, but its header says ${header.width}x${header.height}`);
      return;
    }
    const [H, W] = this.size;
    // Kept as RGB until every file is read: 'auto' decides grey or RGB from all of them.
    const rgb = imageToSample(img, { width: W, height: H, channels: 3 });
    this.reads[i] = { ...this.files[i], header, rgb };
  }

  /** The dataset and the report; refuses a class left without readable images. */
  finish(): { dataset: Dataset; report: ImageFolderReport } {
    const [H, W] = this.size;
    const missing = this.files.findIndex((_, i) => !this.reads[i]);
    if (missing >= 0) throw new Error(`image folder: ${this.files[missing].file} was never read`);
    const good = this.reads.filter((r) => r.rgb);
    const corrupt = this.reads.filter((r) => r.error).map((r) => ({ file: r.file, reason: r.error! }));
    const classes = this.listing.classes.map((c, cls) => ({ name: c.name, good: good.filter((r) => r.cls === cls), skipped: corrupt.filter((r) => r.file.startsWith(`${c.name}/`)).length }));
    const dead = classes.filter((c) => c.good.length === 0);
    if (dead.length) {
      const why = dead.map((c) => `${c.name}/ (${plural(c.skipped, 'file')}, none readable; first: ${corrupt.find((k) => k.file.startsWith(`${c.name}/`))?.reason})`);
      throw new DataError(this.root, `no readable image in ${why.join('; ')}`);
    }
    const allGrey = good.every((r) => r.header!.grey);
    const C: 1 | 3 = this.opts.channels === 1 || this.opts.channels === 3 ? this.opts.channels : allGrey ? 1 : 3;
    const S = C * H * W;
    const sample = (r: Read) => (C === 3 ? r.rgb! : toGrey(r.rgb!, H * W));

    // Stratified split: each class shuffled by its own seed, its first share held out.
    const share = this.opts.valSplit ?? DEFAULT_VAL_SPLIT;
    const seed = this.opts.seed ?? 0;
    const train: Read[] = [];
    const val: Read[] = [];
    const counts: ImageFolderReport['classes'] = [];
    const notes: string[] = [];
    classes.forEach((c, cls) => {
      const order = new Rng(mixSeed(seed, cls)).shuffle(c.good.map((_, k) => k));
      const n = c.good.length;
      const k = share > 0 && n >= 2 ? Math.min(n - 1, Math.max(1, Math.round(n * share))) : 0;
      if (share > 0 && n === 1) notes.push(`class "${c.name}" has 1 readable image (${c.good[0].file}): it is in the training split only, none to validate on`);
      // Within each split, files keep their sorted order: the split is a choice of files, not an order.
      const held = new Set(order.slice(0, k));
      c.good.forEach((r, j) => (held.has(j) ? val : train).push(r));
      counts.push({ name: c.name, train: n - k, val: k, skipped: c.skipped });
    });
    const makeSplit = (rs: Read[]): Split => {
      const x = new Uint8Array(rs.length * S);
      const y = this.listing.classes.length <= 256 ? new Uint8Array(rs.length) : new Int32Array(rs.length);
      rs.forEach((r, i) => {
        x.set(sample(r), i * S);
        y[i] = r.cls;
      });
      return { n: rs.length, x, y };
    };
    notes.unshift(...describeImages(good, this.size, C));
    const report: ImageFolderReport = { root: this.root, imageSize: [H, W], channels: C, classes: counts, ignored: this.listing.ignored, corrupt, notes };
    const name = this.opts.name ?? (this.root.replace(/\/+$/, '').split('/').pop() || 'images');
    const dataset: Dataset = {
      name,
      task: 'classification',
      inputShape: [C, H, W],
      numClasses: classes.length,
      classNames: classes.map((c) => c.name),
      train: makeSplit(train),
      test: makeSplit(val),
      normalization: { kind: 'scale255' },
      source:
        `${this.root}: ${plural(classes.length, 'class', 'classes')}, ${plural(good.length, 'image')} at ${W}x${H} ${C === 1 ? 'grey' : 'RGB'} ` +
        `(${train.length} train, ${val.length} validation: ${Math.round(share * 100)}% of each class, seed ${seed})` +
        (corrupt.length ? `; ${plural(corrupt.length, 'unreadable file')} skipped` : ''),
    };
    return { dataset, report };
  }
}

/** Why a decoder refused a file whose header was fine. */
function decodeFailure(err: unknown, header: ImageHeader): string {
  if (err instanceof ImageFileError) return err.message;
  return `the ${header.format === 'png' ? 'PNG' : 'JPEG'} decoder failed: ${(err as Error)?.message ?? String(err)}`;
}

/** Luma of RGB planes (ITU-R 601, as Pillow's convert('L')). */
function toGrey(rgb: Uint8Array, plane: number): Uint8Array {
  const out = new Uint8Array(plane);
  for (let p = 0; p < plane; p++) out[p] = Math.round(0.299 * rgb[p] + 0.587 * rgb[plane + p] + 0.114 * rgb[2 * plane + p]);
  return out;
}

/** Notes on what was done to the images: mixed sizes, mixed modes, transparency, 16-bit, enlarging. */
function describeImages(good: Read[], [H, W]: [number, number], C: 1 | 3): string[] {
  const notes: string[] = [];
  const first = (f: (r: Read) => boolean) => good.find(f)?.file;
  const count = (f: (r: Read) => boolean) => good.filter(f).length;
  const sizes = new Map<string, Read>();
  for (const r of good) {
    const key = `${r.header!.width}x${r.header!.height}`;
    if (!sizes.has(key)) sizes.set(key, r);
  }
  if (sizes.size > 1) {
    const byArea = [...sizes.values()].sort((a, b) => a.header!.width * a.header!.height - b.header!.width * b.header!.height);
    const [lo, hi] = [byArea[0], byArea[byArea.length - 1]];
    notes.push(
      `mixed sizes: ${sizes.size} different sizes, from ${lo.header!.width}x${lo.header!.height} (${lo.file}) to ${hi.header!.width}x${hi.header!.height} (${hi.file}); ` + `each is centre-cropped to ${W}:${H} and resized to ${W}x${H}`,
    );
  }
  const grey = count((r) => r.header!.grey);
  if (grey && grey < good.length) {
    const colour = good.length - grey;
    const as = C === 3 ? 'read as RGB (grey copied to all three channels)' : 'read as grey (colour reduced to luma)';
    notes.push(`mixed modes: ${plural(grey, 'grey image')} (first: ${first((r) => r.header!.grey)}) and ${plural(colour, 'colour image')} (first: ${first((r) => !r.header!.grey)}); all ${as}`);
  } else if (!grey && C === 1) notes.push(`colour images read as grey (luma), as asked (first: ${good[0].file})`);
  const alpha = count((r) => r.header!.alpha);
  if (alpha) notes.push(`${plural(alpha, 'image')} may hold transparency (first: ${first((r) => r.header!.alpha)}): composited over black`);
  const deep = count((r) => r.header!.bitDepth > 8);
  if (deep) notes.push(`${plural(deep, 'image')} with more than 8 bits per sample (first: ${first((r) => r.header!.bitDepth > 8)}): reduced to 8 bits`);
  const small = count((r) => r.header!.width < W || r.header!.height < H);
  if (small) notes.push(`${plural(small, 'image')} smaller than ${W}x${H} (first: ${first((r) => r.header!.width < W || r.header!.height < H)}): enlarged`);
  const misnamed = good.filter((r) => (r.header!.format === 'png') !== r.file.toLowerCase().endsWith('.png'));
  if (misnamed.length) notes.push(`${plural(misnamed.length, 'file')} named as another format (first: ${misnamed[0].file}, a ${misnamed[0].header!.format.toUpperCase()}): read by content`);
  return notes;
}

/** The report as lines for a terminal or the page: counts, then every skipped file with its reason. */
export function formatImageFolderReport(r: ImageFolderReport, maxListed = 20): string[] {
  const lines: string[] = [];
  const total = r.classes.reduce((s, c) => s + c.train + c.val, 0);
  lines.push(`${r.root}: ${plural(r.classes.length, 'class', 'classes')}, ${plural(total, 'image')} read as ${r.imageSize[1]}x${r.imageSize[0]} ${r.channels === 1 ? 'grey' : 'RGB'}`);
  lines.push(`  ${r.classes.map((c) => `${c.name}: ${c.train} train + ${c.val} validation${c.skipped ? ` (${c.skipped} skipped)` : ''}`).join('; ')}`);
  if (r.corrupt.length) {
    lines.push(`${plural(r.corrupt.length, 'unreadable image file')} skipped:`);
    for (const c of r.corrupt.slice(0, maxListed)) lines.push(`  ${c.file}: ${c.reason}`);
    if (r.corrupt.length > maxListed) lines.push(`  ... and ${r.corrupt.length - maxListed} more`);
  }
  if (r.ignored.length) {
    lines.push(`${plural(r.ignored.length, 'file')} not read:`);
    for (const c of r.ignored.slice(0, maxListed)) lines.push(`  ${c.file}: ${c.reason}`);
    if (r.ignored.length > maxListed) lines.push(`  ... and ${r.ignored.length - maxListed} more`);
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines;
}

/**
 * Why a batch of `batch` samples of `inputShape` cannot go to the GPU in one input tensor (f32),
 * or null when it can: one sample, then the batch, against the adapter's largest storage binding
 * and buffer. Said before training starts, with the largest batch that fits.
 */
export function inputLimitProblem(inputShape: readonly number[], batch: number, limits: { maxStorageBufferBindingSize?: number; maxBufferSize?: number }): string | null {
  const limit = Math.min(limits.maxStorageBufferBindingSize ?? Infinity, limits.maxBufferSize ?? Infinity);
  const sample = inputShape.reduce((a, b) => a * b, 1) * 4;
  const shape = `[${inputShape.join(', ')}]`;
  if (sample > limit) return `one sample of ${shape} needs ${bytesText(sample)} as f32, over the adapter's limit of ${bytesText(limit)} per buffer: use a smaller image size`;
  if (sample * batch > limit) return `a batch of ${batch} samples of ${shape} needs ${bytesText(sample * batch)} as f32, over the adapter's limit of ${bytesText(limit)} per buffer: use a batch of at most ${Math.floor(limit / sample)}`;
  return null;
}
