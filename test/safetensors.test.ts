// The safetensors codec (round trip, byte layout, every kind of corruption, reading other dtypes,
// checking against a model) and crash-safe writes (a writer killed mid-write, a write that fails).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileChecked, writeFileAtomic } from '../src/train/atomic.ts';
import { CheckpointError, checkAgainst, decodeSafetensors, encodeSafetensors, type NamedTensor } from '../src/train/safetensors.ts';
import { randomUniform } from '../src/util/random.ts';

const FILE = 'ckpt/model.safetensors';
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHILD = join(REPO, 'test', 'fixtures-save-child.ts');

function tensor(shape: number[], seed: number): NamedTensor {
  return {
    shape,
    data: randomUniform(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
  };
}

/** A file built by hand: header JSON (or raw text) padded to 8 bytes, then `data`. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + data.length).fill(0x20, 8, 8 + n);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.set(data, 8 + n);
  return out;
}

/** Decoding `bytes` throws a CheckpointError naming FILE whose message matches every pattern. */
function expectCorrupt(bytes: Uint8Array, ...patterns: RegExp[]): string {
  let caught: unknown = null;
  try {
    decodeSafetensors(bytes, FILE);
  } catch (err) {
    caught = err;
  }
  expect(caught, 'decoding should have thrown').toBeInstanceOf(CheckpointError);
  const message = (caught as CheckpointError).message;
  expect(message).toContain(FILE);
  expect((caught as CheckpointError).file).toBe(FILE);
  for (const p of patterns) expect(message).toMatch(p);
  return message;
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

describe('safetensors codec', () => {
  it('round-trips names, order, shapes, bit-exact data and metadata', () => {
    const special = new Float32Array([0, -0, NaN, Infinity, -Infinity, 1.401298464324817e-45, 3.4028234663852886e38, -1.5]);
    const tensors: [string, NamedTensor][] = [
      ['layers.0.weight', tensor([127, 33], 1)],
      ['layers.0.bias', tensor([33], 2)],
      ['layers.10.weight', tensor([3, 5, 7], 3)],
      ['layers.2.scale', { shape: [], data: new Float32Array([42.5]) }],
      ['empty', { shape: [0, 3], data: new Float32Array(0) }],
      ['special', { shape: [2, 4], data: special }],
    ];
    const metadata = { format: 'pt', config: JSON.stringify({ layers: [{ kind: 'Dense', units: 33 }] }), note: 'ünïcødé ✓' };
    const { tensors: got, metadata: gotMeta, dtypes } = decodeSafetensors(encodeSafetensors(tensors, metadata), FILE);
    expect([...got.keys()]).toEqual(tensors.map(([n]) => n));
    for (const [name, t] of tensors) {
      expect(got.get(name)!.shape, name).toEqual(t.shape);
      expect(bitsEqual(got.get(name)!.data, t.data), `${name} data bit-exact`).toBe(true);
      expect(dtypes.get(name)).toBe('F32');
    }
    expect(gotMeta).toEqual(metadata);
  });

  it('accepts a record and reads tensors from a Uint8Array that is a view into a larger buffer', () => {
    const bytes = encodeSafetensors({ a: tensor([5], 7), b: tensor([2, 2], 8) });
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    const got = decodeSafetensors(big.subarray(3), FILE).tensors;
    expect(bitsEqual(got.get('a')!.data, randomUniform(5, 7))).toBe(true);
    expect(bitsEqual(got.get('b')!.data, randomUniform(4, 8))).toBe(true);
    expect(decodeSafetensors(bytes, FILE).metadata).toEqual({});
  });

  it('writes the exact bytes of the reference implementation for a small file', () => {
    // Header as written by the Python/Rust safetensors library for {"a": tensor([1.0, 2.0])}:
    // compact JSON, 54 bytes, padded with two spaces to 56.
    const bytes = encodeSafetensors({ a: { shape: [2], data: new Float32Array([1, 2]) } });
    const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  ';
    const want = new Uint8Array([56, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode(header), 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
    expect([...bytes]).toEqual([...want]);
  });

  it('lays out bytes as the spec says (parsed by hand)', () => {
    const tensors: [string, NamedTensor][] = [
      ['w', tensor([3, 5], 11)],
      ['b', tensor([5], 12)],
      ['s', tensor([1], 13)],
    ];
    const bytes = encodeSafetensors(tensors, { epoch: '3' });
    const view = new DataView(bytes.buffer);
    const n = Number(view.getBigUint64(0, true));
    expect(n % 8, 'header length is a multiple of 8').toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd().length, 'padding is spaces only, at most 7').toBeGreaterThan(n - 8);
    expect(text.startsWith('{')).toBe(true);
    const header = JSON.parse(text);
    expect(Object.keys(header)).toEqual(['__metadata__', 'w', 'b', 's']);
    expect(header.__metadata__).toEqual({ epoch: '3' });
    let offset = 0;
    for (const [name, t] of tensors) {
      expect(header[name], name).toEqual({ dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.data.length] });
      for (let i = 0; i < t.data.length; i++) {
        expect(view.getFloat32(8 + n + offset + 4 * i, true), `${name}[${i}] little-endian`).toBe(t.data[i]);
      }
      offset += 4 * t.data.length;
    }
    expect(bytes.length, 'data buffer is contiguous with nothing after it').toBe(8 + n + offset);
  });

  it('refuses to encode bad input', () => {
    expect(() => encodeSafetensors({ a: { shape: [2, 3], data: new Float32Array(5) } })).toThrow(/"a".*\[2, 3\].*6 elements.*5 values/);
    expect(() => encodeSafetensors({ a: { shape: [-1], data: new Float32Array(0) } })).toThrow(/"a"/);
    expect(() =>
      encodeSafetensors([
        ['a', tensor([1], 1)],
        ['a', tensor([1], 1)],
      ]),
    ).toThrow(/"a" appears twice/);
    expect(() => encodeSafetensors({ __metadata__: tensor([1], 1) })).toThrow(/not a valid tensor name/);
    expect(() => encodeSafetensors({}, { epochs: 3 as unknown as string })).toThrow(/metadata "epochs" must be a string/);
  });
});

describe('safetensors corruption gives CheckpointError naming the file and the bytes', () => {
  const good = encodeSafetensors(
    [
      ['layers.0.weight', tensor([4, 8], 21)],
      ['layers.0.bias', tensor([8], 22)],
    ],
    { epoch: '1' },
  );
  const headerLen = Number(new DataView(good.buffer).getBigUint64(0, true));
  const dataStart = 8 + headerLen;

  it('the unmodified file decodes', () => {
    expect(decodeSafetensors(good, FILE).tensors.size).toBe(2);
  });

  it('a file shorter than 8 bytes', () => {
    for (const len of [0, 3, 7]) expectCorrupt(good.slice(0, len), new RegExp(`${len} bytes, shorter than the 8-byte header length`));
  });

  it('a file truncated at any point', () => {
    for (const len of [8, 9, dataStart - 1]) {
      expectCorrupt(good.slice(0, len), new RegExp(`header length ${headerLen} \\(bytes 0-7\\).*file is ${len} bytes`));
    }
    for (const len of [dataStart, dataStart + 1, dataStart + 128, good.length - 1]) {
      expectCorrupt(good.slice(0, len), /truncated/, new RegExp(`should be ${good.length} bytes, but it is ${len} bytes`), /"layers\.0\./);
    }
  });

  it('a corrupted header length', () => {
    const withLen = (n: bigint) => {
      const b = good.slice();
      new DataView(b.buffer).setBigUint64(0, n, true);
      return b;
    };
    expectCorrupt(withLen(2n ** 40n), /header length 1099511627776 .*runs past the end/);
    expectCorrupt(withLen(2n ** 64n - 1n), /runs past the end/);
    expectCorrupt(withLen(BigInt(good.length - 7)), /runs past the end/);
    expectCorrupt(withLen(BigInt(headerLen - 8)), /not valid JSON/);
    expectCorrupt(withLen(BigInt(headerLen + 8)), /not valid (JSON|UTF-8)/);
    expectCorrupt(withLen(0n), /header \(0 bytes\) is not valid JSON/);
  });

  it('a header that is not a JSON object', () => {
    expectCorrupt(rawFile('{"a": {"dtype": "F32", '), /header \(bytes 8-31\) is not valid JSON.*starts "\{\\"a\\"/);
    expectCorrupt(rawFile('[1, 2]'), /not an object \(got an array\)/);
    expectCorrupt(rawFile('null'), /not an object \(got null\)/);
    expectCorrupt(rawFile('42'), /not an object/);
    const badUtf8 = rawFile('{"a":1}');
    badUtf8[10] = 0xff;
    expectCorrupt(badUtf8, /not valid UTF-8/);
  });

  it('incomplete or malformed tensor entries', () => {
    expectCorrupt(rawFile({ w: { dtype: 'F32', shape: [2] } }), /tensor "w" .*missing data_offsets/);
    expectCorrupt(rawFile({ w: { data_offsets: [0, 8] } }), /tensor "w" .*missing dtype, shape/);
    expectCorrupt(rawFile({ w: [1, 2] }), /tensor "w" .*not an object/);
    expectCorrupt(rawFile({ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }), /shape \[2,-1\], not a list of non-negative integers/);
    expectCorrupt(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }), /data_offsets \[8,0\]/);
    expectCorrupt(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }), /data_offsets \[0\]/);
    expectCorrupt(rawFile({ __metadata__: { epoch: 3 } }), /metadata "epoch" is a number/);
    expectCorrupt(rawFile({ __metadata__: 'x' }), /"__metadata__" .*not an object/);
  });

  it('an unknown dtype', () => {
    const data = new Uint8Array(8);
    expectCorrupt(rawFile({ w: { dtype: 'F8_E4M3', shape: [8], data_offsets: [0, 8] } }, data), /tensor "w" .*dtype "F8_E4M3".*not supported \(supported: F32, F16/);
    expectCorrupt(rawFile({ w: { dtype: 'f32', shape: [2], data_offsets: [0, 8] } }, data), /dtype "f32"/);
    expectCorrupt(rawFile({ w: { dtype: 4, shape: [2], data_offsets: [0, 8] } }, data), /dtype 4/);
  });

  it('a shape that does not match its byte span', () => {
    expectCorrupt(rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor "w" .*shape \[3\] of F32 needs 12 bytes, but data_offsets \[0, 8\] span 8 bytes/);
    expectCorrupt(rawFile({ w: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 16] } }, new Uint8Array(16)), /F16 needs 8 bytes/);
  });

  it('overlapping tensors, holes and trailing bytes', () => {
    const f32 = (begin: number, n: number) => ({ dtype: 'F32', shape: [n], data_offsets: [begin, begin + 4 * n] });
    const overlap = rawFile({ a: f32(0, 2), b: f32(4, 2) }, new Uint8Array(12));
    const start = overlap.length - 12;
    expectCorrupt(overlap, new RegExp(`"a" \\(data_offsets \\[0, 8\\]\\) and "b" \\(data_offsets \\[4, 12\\]\\) overlap at file byte ${start + 4}`));
    expectCorrupt(rawFile({ a: f32(0, 2), b: f32(0, 2) }, new Uint8Array(8)), /overlap/);
    const hole = rawFile({ a: f32(0, 2), b: f32(12, 1) }, new Uint8Array(16));
    expectCorrupt(hole, new RegExp(`4 unused bytes at file bytes ${hole.length - 8}-${hole.length - 5}, between "a" and "b"`));
    expectCorrupt(rawFile({ a: f32(4, 1) }, new Uint8Array(8)), /4 unused bytes .*before the first tensor "a"/);
    const tail = new Uint8Array(good.length + 5);
    tail.set(good);
    expectCorrupt(tail, new RegExp(`5 trailing bytes at file bytes ${good.length}-${good.length + 4} after the last tensor`));
    expectCorrupt(rawFile({}, new Uint8Array(3)), /3 trailing bytes/);
  });
});

describe('reading other dtypes converts to float32', () => {
  function typed(dtype: string, shape: number[], data: Uint8Array) {
    const got = decodeSafetensors(rawFile({ t: { dtype, shape, data_offsets: [0, data.length] } }, data), FILE);
    expect(got.dtypes.get('t')).toBe(dtype);
    expect(got.tensors.get('t')!.shape).toEqual(shape);
    return [...got.tensors.get('t')!.data];
  }
  const le16 = (...v: number[]) => new Uint8Array(new Uint16Array(v).buffer);

  it('F16, exactly (normal, subnormal, signed zero, infinity, NaN)', () => {
    const got = typed('F16', [2, 4], le16(0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x7e00, 0x3555));
    expect(got.slice(0, 6)).toEqual([1, -2, 65504, 2 ** -24, -0, Infinity]);
    expect(Object.is(got[4], -0)).toBe(true);
    expect(got[6]).toBeNaN();
    expect(got[7]).toBe(0.333251953125);
  });

  it('BF16, exactly', () => {
    expect(typed('BF16', [4], le16(0x3f80, 0xc0a0, 0x4049, 0xff80))).toEqual([1, -5, 3.140625, -Infinity]);
  });

  it('F64 (rounded to float32), I64, I32, I16, I8, U8, BOOL', () => {
    expect(typed('F64', [3], new Uint8Array(new Float64Array([0.1, -2.5, 1e300]).buffer))).toEqual([Math.fround(0.1), -2.5, Infinity]);
    expect(typed('I64', [3], new Uint8Array(new BigInt64Array([-3n, 2n ** 40n, 7n]).buffer))).toEqual([-3, 2 ** 40, 7]);
    expect(typed('I32', [2], new Uint8Array(new Int32Array([-123456, 2 ** 30]).buffer))).toEqual([-123456, 2 ** 30]);
    expect(typed('I16', [2], new Uint8Array(new Int16Array([-300, 300]).buffer))).toEqual([-300, 300]);
    expect(typed('I8', [2], new Uint8Array(new Int8Array([-128, 127]).buffer))).toEqual([-128, 127]);
    expect(typed('U8', [3], new Uint8Array([0, 200, 255]))).toEqual([0, 200, 255]);
    expect(typed('BOOL', [2], new Uint8Array([1, 0]))).toEqual([1, 0]);
  });

  it('mixed dtypes in one file, each at its own offset', () => {
    const data = new Uint8Array([...le16(0x3c00, 0x4000), 9, ...new Uint8Array(new Float32Array([0.5]).buffer)]);
    const header = {
      h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
      u: { dtype: 'U8', shape: [1], data_offsets: [4, 5] },
      f: { dtype: 'F32', shape: [1], data_offsets: [5, 9] },
    };
    const got = decodeSafetensors(rawFile(header, data), FILE).tensors;
    expect([...got.get('h')!.data, ...got.get('u')!.data, ...got.get('f')!.data]).toEqual([1, 2, 9, 0.5]);
  });
});

describe('checkAgainst', () => {
  const got = new Map<string, NamedTensor>([
    ['layers.0.weight', tensor([4, 8], 1)],
    ['layers.0.bias', tensor([8], 2)],
    ['layers.2.weight', tensor([256, 512], 3)],
    ['layers.2.bias', tensor([1, 512], 4)],
    ['extra.weight', tensor([3], 5)],
  ]);

  it('passes when names and shapes match', () => {
    const expected = [...got].map(([name, t]) => ({ name, shape: t.shape }));
    expect(() => checkAgainst(expected, got, FILE)).not.toThrow();
  });

  it('lists every mismatch in one error', () => {
    const expected = [
      { name: 'layers.0.weight', shape: [4, 8] },
      { name: 'layers.0.bias', shape: [8] },
      { name: 'layers.2.weight', shape: [128, 512] },
      { name: 'layers.2.bias', shape: [512] },
      { name: 'layers.4.weight', shape: [10, 128] },
    ];
    let message = '';
    try {
      checkAgainst(expected, got, FILE);
    } catch (err) {
      expect(err).toBeInstanceOf(CheckpointError);
      message = (err as Error).message;
    }
    expect(message).toContain(FILE);
    expect(message).toContain('4 problems');
    expect(message).toContain('layers.2.weight: file has [256, 512], model expects [128, 512]');
    expect(message).toContain('layers.2.bias: file has [1, 512], model expects [512]');
    expect(message).toContain('layers.4.weight: missing from the file (model expects [10, 128])');
    expect(message).toContain('extra.weight: in the file [3] but not in the model');
    expect(message).not.toMatch(/layers\.0\./);
  });
});

describe('writeFileAtomic and readFileChecked', () => {
  const root = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const tempFiles = (dir: string) => readdirSync(dir).filter((n) => n.includes('.tmp-'));

  it('writes, replaces, and leaves no temporary file', async () => {
    const path = join(root, 'a.safetensors');
    const v1 = encodeSafetensors({ w: tensor([10], 1) });
    const v2 = encodeSafetensors({ w: tensor([20], 2) });
    await writeFileAtomic(path, v1);
    expect([...(await readFileChecked(path))]).toEqual([...v1]);
    await writeFileAtomic(path, v2);
    expect([...(await readFileChecked(path))]).toEqual([...v2]);
    expect(tempFiles(root)).toEqual([]);
  });

  it('readFileChecked says when the file does not exist or is a directory', async () => {
    await expect(readFileChecked(join(root, 'nope.safetensors'))).rejects.toThrow(/No such file: .*nope\.safetensors/);
    await expect(readFileChecked(root)).rejects.toThrow(/found a directory/);
  });

  it('a path whose parent is a file: throws naming the path, leaves nothing behind', async () => {
    const file = join(root, 'plain-file');
    writeFileSync(file, 'keep me');
    const path = join(file, 'model.safetensors');
    await expect(writeFileAtomic(path, new Uint8Array(16))).rejects.toThrow(new RegExp(`Could not .* ${path}: .*ENOTDIR`));
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('a directory removed before the write: throws naming the path', async () => {
    const dir = join(root, 'gone');
    mkdirSync(dir);
    await writeFileAtomic(join(dir, 'm.safetensors'), new Uint8Array(8));
    rmSync(dir, { recursive: true });
    const path = join(dir, 'm.safetensors');
    await expect(writeFileAtomic(path, new Uint8Array(8))).rejects.toThrow(new RegExp(`${path}: .*ENOENT`));
  });

  it('a write that fails half way (file size limit) leaves the previous file intact and no temp file', async () => {
    const dir = join(root, 'limited');
    mkdirSync(dir);
    const path = join(dir, 'model.safetensors');
    const previous = encodeSafetensors({ w: tensor([1000], 3) }, { version: 'previous' });
    await writeFileAtomic(path, previous);
    // The child may write at most 1 MiB per file (ulimit -f counts 1024-byte blocks); it tries 4 MB.
    const out = await runChild(['bash', '-c', 'ulimit -f 1024 && exec "$0" "$@"', process.execPath, '--import', 'tsx', CHILD, 'once', path, '4', '2']);
    expect(out.stdout).toMatch(new RegExp(`^error: Could not write ${path}: .*EFBIG`));
    expect([...readFileSync(path)]).toEqual([...previous]);
    expect(tempFiles(dir)).toEqual([]);
  });

  it('a writer killed at any point of a write leaves the target a complete checkpoint it wrote', async () => {
    // Kill points spread over one write (temp file created -> written -> flushed -> renamed), as
    // fractions of its measured duration, then one between writes. Every kill must leave a valid
    // target; at least one must land mid-write, leaving a temporary file (a kill at fraction 0
    // loses that race only if the whole write fits in the polling gap, so it is retried).
    const outcomes: string[] = [];
    const phases = [0, 0.25, 0.5, 0.75, 0.95, 1.5, 0, 0];
    for (let i = 0; i < phases.length; i++) {
      if (i >= 6 && outcomes.some((o) => o.includes('temp file left'))) break;
      const dir = join(root, `crash-${i}`);
      mkdirSync(dir);
      outcomes.push(await killWriter(dir, phases[i]));
    }
    expect(
      outcomes.some((o) => o.includes('temp file left')),
      outcomes.join('\n'),
    ).toBe(true);
  }, 300_000);
});

interface ChildOutput {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

function runChild(argv: string[]): Promise<ChildOutput> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ stdout, stderr, code, signal }));
  });
}

const MEGABYTES = 64;

/**
 * Start a child that rewrites a ~64 MB checkpoint in a loop. After its first complete write, time
 * one write (temporary file present) and one cycle (write plus encoding), then SIGKILL the child
 * `phase` write-durations after the next temporary file appears. Checks that the target is a
 * complete version the child wrote and that no temporary file replaced it; says what happened.
 */
async function killWriter(dir: string, phase: number): Promise<string> {
  const target = join(dir, 'model.safetensors');
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, 'loop', target, String(MEGABYTES)], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let wrote = 0;
  let stderr = '';
  let exited = '';
  child.stdout.on('data', (d: Buffer) => {
    for (const m of d.toString().matchAll(/wrote (\d+)/g)) wrote = Math.max(wrote, Number(m[1]));
  });
  child.stderr.on('data', (d) => (stderr += d));
  const closed = new Promise<void>((r) =>
    child.on('close', (code, signal) => {
      exited = `child exited (code ${code}, signal ${signal}): ${stderr}`;
      r();
    }),
  );
  const temps = () => readdirSync(dir).filter((n) => n.startsWith('.model.safetensors.tmp-'));
  const until = (done: () => boolean, what: string) => pollUntil(done, what, () => exited);
  let write = 0;
  try {
    await until(() => wrote >= 1, 'the first complete write');
    let first = '';
    await until(() => {
      first = temps()[0] ?? '';
      return first !== '';
    }, 'a temporary file');
    const t0 = performance.now();
    await until(() => !temps().includes(first), 'the temporary file to be renamed');
    write = performance.now() - t0;
    await until(() => temps().some((n) => n !== first), 'the next temporary file');
    await new Promise((r) => setTimeout(r, phase * write));
    child.kill('SIGKILL');
    await closed;
  } finally {
    child.kill('SIGKILL');
  }
  expect(child.signalCode, exited).toBe('SIGKILL');
  const leftover = temps();
  expect(leftover.length).toBeLessThanOrEqual(1);

  const bytes = readFileSync(target);
  const { tensors, metadata } = decodeSafetensors(bytes, target);
  const version = Number(metadata.version);
  // The child may have renamed one more version than it had reported when it was killed.
  expect(version).toBeGreaterThanOrEqual(1);
  expect(version).toBeLessThanOrEqual(wrote + 1);
  const w = tensors.get('layers.0.weight')!;
  expect(w.shape).toEqual([(MEGABYTES * 1024 * 1024) / 4096, 1024]);
  expect(
    w.data.every((x) => x === version),
    'every value is the version number',
  ).toBe(true);
  expect(tensors.get('layers.0.bias')!.data.every((x) => x === version)).toBe(true);
  const what = `killed ${phase} x ${write.toFixed(0)} ms into a write: target is version ${version}`;
  if (leftover.length === 0) return `${what}, no temp file`;
  const tmp = join(dir, leftover[0]);
  expect(statSync(tmp).ino, 'the temporary file is not the target').not.toBe(statSync(target).ino);
  return `${what}, temp file left with ${statSync(tmp).size} of ${bytes.length} bytes`;
}

/** Poll `done` every millisecond until it holds; fail when `abort` gives a reason, or after 90 s. */
async function pollUntil(done: () => boolean, what: string, abort: () => string): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (!done()) {
    const why = abort();
    if (why) throw new Error(`while waiting for ${what}: ${why}`);
    if (Date.now() > deadline) throw new Error(`timed out after 90 s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
