// The safetensors checkpoint format, as bytes in and bytes out (no file system, so the same code
// runs in Node and in the browser). Layout: an 8-byte little-endian u64 header length N, N bytes
// of UTF-8 JSON header padded with spaces to a multiple of 8, then the data buffer. The header
// maps each tensor name to {dtype, shape, data_offsets: [begin, end]} with offsets relative to the
// data buffer, plus an optional "__metadata__" object of string values. Tensors are contiguous,
// little-endian, with no holes. We write F32 only; reading also accepts the dtypes PyTorch tends
// to save and converts them to Float32 (see READ_DTYPES).

/** A named tensor as stored in a checkpoint: row-major float32 data of the given shape. */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

/** A checkpoint that cannot be read or does not fit: the message names the file and what is wrong. */
export class CheckpointError extends Error {
  /** The file label passed to the decoder (usually its path). */
  readonly file: string;
  constructor(file: string, what: string) {
    super(`Checkpoint ${file}: ${what}`);
    this.name = 'CheckpointError';
    this.file = file;
  }
}

/**
 * Dtypes the decoder accepts, with their element size in bytes. F16, BF16, I8, U8, I16 and BOOL
 * convert to float32 exactly. F64 rounds to the nearest float32; I32 and I64 are exact only up to
 * 2^24 in magnitude. The decoder reports each tensor's stored dtype so a caller can warn.
 */
export const READ_DTYPES = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
} as const;

/** A dtype the decoder can convert to float32. */
export type ReadDtype = keyof typeof READ_DTYPES;

/** The result of decoding: tensors in file order, metadata, and each tensor's stored dtype. */
export interface DecodedSafetensors {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
  /** Stored dtype per tensor; anything other than F32 was converted to float32 on read. */
  dtypes: Map<string, ReadDtype>;
}

const METADATA_KEY = '__metadata__';
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isDim(d: unknown): d is number {
  return typeof d === 'number' && Number.isSafeInteger(d) && d >= 0;
}

/**
 * Encode float32 tensors and string metadata as a safetensors file. Tensors are laid out in the
 * given order (insertion order for a record). Throws on an invalid name, shape or data length.
 */
export function encodeSafetensors(tensors: Record<string, NamedTensor> | [string, NamedTensor][], metadata: Record<string, string> = {}): Uint8Array {
  const entries = Array.isArray(tensors) ? tensors : Object.entries(tensors);
  // Null prototype, so a tensor named "__proto__" is stored as a key like any other.
  const header: Record<string, unknown> = Object.create(null);
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw new Error(`safetensors metadata "${key}" must be a string, got ${typeof value}: encode it as JSON first.`);
  }
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;

  const seen = new Set<string>();
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '' || name === METADATA_KEY) throw new Error(`safetensors: "${name}" is not a valid tensor name.`);
    if (seen.has(name)) throw new Error(`safetensors: tensor "${name}" appears twice.`);
    seen.add(name);
    if (!t.shape.every(isDim)) throw new Error(`safetensors: tensor "${name}" has shape ${shapeText(t.shape)}, not all non-negative integers.`);
    const n = product(t.shape);
    if (t.data.length !== n) throw new Error(`safetensors: tensor "${name}" has shape ${shapeText(t.shape)} (${n} elements) but ${t.data.length} values.`);
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  out.fill(0x20, 8 + json.length, 8 + padded);
  out.set(json, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);

  let at = 8 + padded;
  for (const [, t] of entries) {
    writeF32(out, at, t.data);
    at += 4 * t.data.length;
  }
  return out;
}

function writeF32(out: Uint8Array, at: number, data: Float32Array): void {
  if (LITTLE_ENDIAN_HOST) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < data.length; i++) view.setFloat32(at + 4 * i, data[i], true);
}

interface Entry {
  name: string;
  dtype: ReadDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Decode a safetensors file into float32 tensors and its metadata. Validates the whole layout
 * and throws CheckpointError naming `fileLabel`, what is wrong and at which byte: a file too short
 * or truncated (expected vs actual size), a header that is not a JSON object, an incomplete or
 * unsupported tensor entry, a shape that does not match its byte span, overlapping tensors, and
 * holes or trailing bytes in the data buffer.
 */
export function decodeSafetensors(bytes: Uint8Array, fileLabel: string): DecodedSafetensors {
  const fail = (what: string): never => {
    throw new CheckpointError(fileLabel, what);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length at byte 0: not a safetensors file, or truncated.`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(bytes.length - 8)) {
    fail(`header length ${headerLen} (bytes 0-7) runs past the end of the file: the header would end at byte ${8n + headerLen} ` + `but the file is ${bytes.length} bytes (truncated, or not a safetensors file).`);
  }
  const n = Number(headerLen);
  const dataStart = 8 + n;
  const header = parseHeader(bytes.subarray(8, dataStart), fail);

  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) metadata = parseMetadata(value, fail);
    else entries.push(parseEntry(name, value, fail));
  }
  checkLayout(entries, bytes.length, dataStart, fail);

  const tensors = new Map<string, NamedTensor>();
  const dtypes = new Map<string, ReadDtype>();
  for (const e of entries) {
    tensors.set(e.name, { shape: e.shape, data: toFloat32(bytes, dataStart + e.begin, product(e.shape), e.dtype) });
    dtypes.set(e.name, e.dtype);
  }
  return { tensors, metadata, dtypes };
}

function parseHeader(raw: Uint8Array, fail: (what: string) => never): Record<string, unknown> {
  const where = raw.length > 0 ? `header (bytes 8-${7 + raw.length})` : 'header (0 bytes)';
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return fail(`${where} is not valid UTF-8.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return fail(`${where} is not valid JSON (${(err as Error).message}); it starts ${JSON.stringify(text.slice(0, 40))}.`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return fail(`${where} is JSON but not an object (got ${Array.isArray(parsed) ? 'an array' : String(parsed)}).`);
  }
  return parsed as Record<string, unknown>;
}

function parseMetadata(value: unknown, fail: (what: string) => never): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`"${METADATA_KEY}" in the header is not an object.`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') fail(`metadata "${k}" is a ${typeof v}, but metadata values must be strings.`);
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function parseEntry(name: string, value: unknown, fail: (what: string) => never): Entry {
  const at = `tensor "${name}" in the header`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail(`${at} is not an object.`);
  const v = value as Record<string, unknown>;
  const missing = ['dtype', 'shape', 'data_offsets'].filter((k) => !(k in v));
  if (missing.length > 0) fail(`${at} is missing ${missing.join(', ')}.`);
  if (typeof v.dtype !== 'string' || !Object.hasOwn(READ_DTYPES, v.dtype)) {
    fail(`${at} has dtype ${JSON.stringify(v.dtype)}, which is not supported (supported: ${Object.keys(READ_DTYPES).join(', ')}).`);
  }
  const dtype = v.dtype as ReadDtype;
  if (!Array.isArray(v.shape) || !v.shape.every(isDim)) fail(`${at} has shape ${JSON.stringify(v.shape)}, not a list of non-negative integers.`);
  const shape = v.shape as number[];
  const offs = v.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isDim) || offs[0] > offs[1]) {
    fail(`${at} has data_offsets ${JSON.stringify(offs)}, not [begin, end] with 0 <= begin <= end.`);
  }
  const [begin, end] = offs as number[];
  const need = product(shape) * READ_DTYPES[dtype];
  if (need !== end - begin) {
    fail(`${at}: shape ${shapeText(shape)} of ${dtype} needs ${need} bytes, but data_offsets [${begin}, ${end}] span ${end - begin} bytes.`);
  }
  return { name, dtype, shape, begin, end };
}

/** The data buffer must be covered exactly: no byte past the file, no overlap, no hole, no tail. */
function checkLayout(entries: Entry[], fileSize: number, dataStart: number, fail: (what: string) => never): void {
  const dataLen = fileSize - dataStart;
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataEnd = sorted.reduce((m, e) => Math.max(m, e.end), 0);
  if (dataEnd > dataLen) {
    const cut = sorted.filter((e) => e.end > dataLen);
    fail(
      `file is truncated: the header describes ${dataEnd} bytes of tensor data, so the file should be ${dataStart + dataEnd} bytes, ` +
        `but it is ${fileSize} bytes. ${cut.length} tensor(s) incomplete, first "${cut[0].name}" at file bytes ${dataStart + cut[0].begin}-${dataStart + cut[0].end - 1}.`,
    );
  }
  let prev: Entry | null = null;
  let prevEnd = 0;
  for (const e of sorted) {
    if (e.begin < prevEnd) {
      fail(`tensors "${prev!.name}" (data_offsets [${prev!.begin}, ${prev!.end}]) and "${e.name}" (data_offsets [${e.begin}, ${e.end}]) ` + `overlap at file byte ${dataStart + e.begin}.`);
    }
    if (e.begin > prevEnd) {
      fail(`${e.begin - prevEnd} unused bytes at file bytes ${dataStart + prevEnd}-${dataStart + e.begin - 1}, ` + `${prev ? `between "${prev.name}" and "${e.name}"` : `before the first tensor "${e.name}"`} (the format allows no holes).`);
    }
    if (e.end >= prevEnd) {
      prev = e;
      prevEnd = e.end;
    }
  }
  if (dataEnd < dataLen) {
    fail(`${dataLen - dataEnd} trailing bytes at file bytes ${dataStart + dataEnd}-${fileSize - 1} after the last tensor ` + `(the header describes ${dataEnd} bytes of data, so the file should be ${dataStart + dataEnd} bytes).`);
  }
}

function toFloat32(bytes: Uint8Array, at: number, count: number, dtype: ReadDtype): Float32Array {
  const out = new Float32Array(count);
  if (dtype === 'F32' && LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(bytes.subarray(at, at + 4 * count));
    return out;
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset + at, count * READ_DTYPES[dtype]);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = v.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = v.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(v.getUint16(2 * i, true));
      break;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = v.getUint16(2 * i, true) << 16;
      break;
    }
    case 'I64':
      for (let i = 0; i < count; i++) out[i] = Number(v.getBigInt64(8 * i, true));
      break;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = v.getInt32(4 * i, true);
      break;
    case 'I16':
      for (let i = 0; i < count; i++) out[i] = v.getInt16(2 * i, true);
      break;
    case 'I8':
      for (let i = 0; i < count; i++) out[i] = v.getInt8(i);
      break;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < count; i++) out[i] = v.getUint8(i);
      break;
  }
  return out;
}

/** IEEE 754 binary16 bits to a number (exact: every half is a float32). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Check decoded tensors against what a model expects. Throws one CheckpointError listing every
 * mismatch: missing tensors, unexpected tensors, and shape mismatches such as
 * `layers.2.weight: file has [256, 512], model expects [128, 512]`.
 */
export function checkAgainst(expected: readonly { name: string; shape: readonly number[] }[], got: ReadonlyMap<string, NamedTensor>, fileLabel: string): void {
  const problems: string[] = [];
  const wanted = new Set<string>();
  for (const { name, shape } of expected) {
    wanted.add(name);
    const t = got.get(name);
    if (!t) problems.push(`${name}: missing from the file (model expects ${shapeText(shape)})`);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      problems.push(`${name}: file has ${shapeText(t.shape)}, model expects ${shapeText(shape)}`);
    }
  }
  for (const [name, t] of got) {
    if (!wanted.has(name)) problems.push(`${name}: in the file ${shapeText(t.shape)} but not in the model`);
  }
  if (problems.length > 0) {
    throw new CheckpointError(fileLabel, `does not match the model (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${problems.join('\n  ')}`);
  }
}
