// The GPU layer: adapter report, buffer pool accounting, dispatch validation against the reflected
// shader, WGSL compile errors, and dispatch grids larger than 65,535 workgroups.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { grid1d } from '../src/gpu/engine.ts';
import { defineShader } from '../src/gpu/shaders.ts';
import { reluForward } from '../src/kernels/activation.ts';
import { matmul } from '../src/kernels/matmul.ts';
import { randomUniform } from '../src/util/random.ts';
import { getEngine } from './helpers.ts';

describe('adapter', () => {
  it('reports name, software flag, features and limits', async () => {
    const e = await getEngine();
    expect(e.adapter.name.length).toBeGreaterThan(0);
    expect(typeof e.adapter.isSoftware).toBe('boolean');
    if (/swiftshader/i.test(e.adapter.description + e.adapter.architecture)) expect(e.adapter.isSoftware).toBe(true);
    expect(e.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(e.adapter.limits.maxComputeWorkgroupsPerDimension).toBeGreaterThanOrEqual(65535);
    expect(Array.isArray(e.adapter.features)).toBe(true);
  });
});

describe('buffer pool', () => {
  it('counts bytes exactly and reuses freed buffers of the same size', async () => {
    const e = await getEngine();
    await e.sync();
    e.pool.trim();
    const before = e.stats();
    const a = e.tensor([1000], undefined, 'a'); // 4000 bytes -> rounded to 4000 (16-aligned, <= 4 KiB)
    const afterA = e.stats();
    expect(afterA.bytesHeld - before.bytesHeld).toBe(4000);
    expect(afterA.bytesInUse - before.bytesInUse).toBe(4000);
    a.dispose();
    await e.sync();
    expect(e.stats().bytesInUse).toBe(before.bytesInUse);
    expect(e.stats().bytesHeld).toBe(afterA.bytesHeld); // kept in the free list
    const b = e.tensor([1000], undefined, 'b');
    expect(e.stats().buffersCreated).toBe(afterA.buffersCreated); // reused, not created
    expect(e.stats().buffersReused).toBe(afterA.buffersReused + 1);
    b.dispose();
    await e.sync();
    e.pool.trim();
    expect(e.stats().bytesHeld).toBe(before.bytesHeld);
  });

  it('refuses a tensor over the storage binding limit, naming the limit and the size', async () => {
    const e = await getEngine();
    const limit = e.adapter.limits.maxStorageBufferBindingSize;
    const n = Math.floor(limit / 4) + 1;
    expect(() => e.tensor([n], undefined, 'huge')).toThrow(new RegExp(`"huge".*${n * 4} bytes.*maxStorageBufferBindingSize.*${limit}`));
  });

  it('rejects a write of the wrong length and use after dispose', async () => {
    const e = await getEngine();
    const t = e.tensor([2, 3], undefined, 'w');
    expect(() => e.write(t, [1, 2, 3])).toThrow(/"w" \[2, 3\] holds 6 values; 3 were given/);
    t.dispose();
    expect(() => t.buffer).toThrow(/"w" \[2, 3\] was used after dispose/);
  });
});

describe('dispatch validation', () => {
  it('names the kernel and binding for a missing, unknown, too-small or aliased buffer', async () => {
    const e = await getEngine();
    const k = await e.kernel('activation', 'relu_forward', { WG: 256 });
    const x = e.tensor([8], undefined, 'x');
    const y = e.tensor([8], undefined, 'y');
    expect(() => e.dispatch(k, { x }, [1], { n: 8, alpha: 0 })).toThrow(/activation\.relu_forward: binding "y".*was not given/);
    expect(() => e.dispatch(k, { x, y, z: y }, [1], { n: 8, alpha: 0 })).toThrow(/activation\.relu_forward: no binding named "z"/);
    expect(() => e.dispatch(k, { x, y: { buffer: y.buffer, byteLength: 2, label: 'tiny' } }, [1], { n: 8, alpha: 0 })).toThrow(/binding "y".*"tiny" has 2 bytes/);
    expect(() => e.dispatch(k, { x, y: x }, [1], { n: 8, alpha: 0 })).toThrow(/read_write "y" and also as "x"|"x" is bound as read_write "y"/);
    expect(() => e.dispatch(k, { x, y }, [1], { n: 8 })).toThrow(/params\.alpha was not given/);
    expect(() => e.dispatch(k, { x, y }, [70000], { n: 8, alpha: 0 })).toThrow(/workgroup count/);
    x.dispose();
    y.dispose();
  });

  it('reports a WGSL compile error with the kernel name and line', async () => {
    const e = await getEngine();
    defineShader('broken', '@compute @workgroup_size(1) fn main() {\n  let a: f32 = undefined_thing;\n}\n');
    await expect(e.kernel('broken', 'main')).rejects.toThrow(/WGSL compile error in kernel broken\.main[\s\S]*line 2/);
  });

  it('expands #include, and maps a compile error in an included piece to its file and line', async () => {
    const e = await getEngine();
    defineShader('_twice', 'fn twice(v: f32) -> f32 {\n  return 2.0 * v;\n}');
    defineShader(
      'uses_twice',
      '#include "_twice.wgsl"\n#include "_twice.wgsl"\nstruct Params { n: u32 }\n@group(0) @binding(0) var<uniform> params: Params;\n' +
        '@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n' +
        '@compute @workgroup_size(1) fn main() { y[0] = twice(f32(params.n)); }\n',
    );
    const y = e.tensor([1], undefined, 'y');
    e.runOnce(e.dispatch(await e.kernel('uses_twice', 'main'), { y }, [1], { n: 21 }));
    expect((await y.read())[0]).toBe(42); // included once, though named twice
    y.dispose();

    defineShader('_bad_piece', 'fn ok() {}\nfn bad() -> f32 {\n  return nothing_here;\n}');
    defineShader('uses_bad', '// a comment\n#include "_bad_piece.wgsl"\n@compute @workgroup_size(1) fn main() {}\n');
    await expect(e.kernel('uses_bad', 'main')).rejects.toThrow(/WGSL compile error in kernel uses_bad\.main[\s\S]*shaders\/_bad_piece\.wgsl line 3/);
  });

  it('names a missing or circular #include with the file and line', async () => {
    const e = await getEngine();
    defineShader('no_piece', '\n#include "_not_there.wgsl"\n');
    await expect(e.kernel('no_piece', 'main')).rejects.toThrow(/shaders\/no_piece\.wgsl line 2: cannot #include "_not_there\.wgsl"/);
    defineShader('_loop_a', '#include "_loop_b.wgsl"');
    defineShader('_loop_b', '#include "_loop_a.wgsl"');
    await expect(e.kernel('_loop_b', 'main')).rejects.toThrow(/includes itself \(_loop_b -> _loop_a -> _loop_b\)/);
  });

  it('names the missing entry point', async () => {
    const e = await getEngine();
    await expect(e.kernel('activation', 'nope')).rejects.toThrow(/no compute entry point "nope".*relu_forward/);
  });
});

describe('dispatch grids', () => {
  it('splits more than 65,535 workgroups over two dimensions', () => {
    expect(grid1d(256 * 65535, 256)).toEqual([65535, 1, 1]);
    const [x, y] = grid1d(256 * 65536, 256);
    expect(y).toBe(2);
    expect(x * y).toBeGreaterThanOrEqual(65536);
    expect(x).toBeLessThanOrEqual(65535);
  });

  it('runs a kernel over more than 65,535*256 elements correctly', async () => {
    const e = await getEngine();
    const n = 256 * 65535 + 1000; // needs 65,539 workgroups
    const src = new Float32Array(n);
    for (let i = 0; i < n; i++) src[i] = (i % 7) - 3;
    const x = e.tensor([n], src, 'x');
    const y = e.zeros([n], 'y');
    e.runOnce(await reluForward(e, x, y));
    const out = await y.read();
    let bad = -1;
    for (let i = 0; i < n; i++)
      if (out[i] !== Math.max(0, src[i])) {
        bad = i;
        break;
      }
    expect(bad).toBe(-1);
    x.dispose();
    y.dispose();
  });
});

describe('waiting for the GPU', () => {
  // Main-thread CPU seconds (Linux: /proc/self/task/<pid>/stat, utime + stime in clock ticks of 1/100 s).
  function mainThreadSeconds(): number | null {
    try {
      const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
      const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return null;
    }
  }

  it('on a software adapter, sync sleeps while the work runs instead of spinning the main thread', async (ctx) => {
    const e = await getEngine();
    if (!e.quietWaits || mainThreadSeconds() === null) ctx.skip();
    const n = 512;
    const [a, b, c] = [e.tensor([n, n], randomUniform(n * n, 1), 'a'), e.tensor([n, n], randomUniform(n * n, 2), 'b'), e.tensor([n, n], undefined, 'c')];
    const d = await matmul(e, a, b, c, { variant: 'blocked' });
    e.run(d);
    await e.sync(); // compiled and warm
    const cpu0 = mainThreadSeconds()!;
    const t0 = performance.now();
    for (let i = 0; i < 6; i++) e.run(d);
    await e.sync();
    const wall = (performance.now() - t0) / 1000;
    const mainCpu = mainThreadSeconds()! - cpu0;
    // A spinning wait keeps the main thread busy for the whole wall time; a quiet one for a small part.
    expect(wall).toBeGreaterThan(0.1);
    expect(mainCpu / wall).toBeLessThan(0.35);
    // And the result is complete when the wait returns.
    const got = await c.read();
    expect(Number.isFinite(got[n * n - 1])).toBe(true);
    d.dispose();
    for (const t of [a, b, c]) t.dispose();
  });
});
