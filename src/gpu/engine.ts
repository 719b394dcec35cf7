// The engine: one GPU device, its buffer pool, the pipeline cache, and the queue of recorded
// dispatches. Host code enqueues (run); only reads await. Everything above gpu/ goes through here.
import { isNode, requestDevice, type AdapterReport, type DeviceOptions } from './device.ts';
import { BufferPool, GPUBufferUsageFlags, type PoolStats } from './buffers.ts';
import { compileKernel, type BindingInfo, type Kernel } from './kernel.ts';
import { initShaderSources } from './shaders.ts';
import { Tensor, checkShape, shapeSize, shapeStr, type Shape } from './tensor.ts';

export type Workgroups = readonly [number, number?, number?];

/** A buffer argument: a Tensor, or a raw buffer with the bytes of it that the kernel may use. */
export type BufferArg = Tensor | { buffer: GPUBuffer; byteLength: number; label?: string };

/** One buffer binding of a dispatch: the shader's binding, and what is bound to it. */
interface BoundArg {
  binding: BindingInfo;
  arg: BufferArg;
}

/**
 * A validated, replayable dispatch: pipeline, bindings and workgroup counts, made once. The bind
 * group is created when the dispatch is first recorded, so a plan can build its dispatches
 * against planned tensors before a memory planner has given them buffers.
 */
export class Dispatch {
  private group: GPUBindGroup | null = null;

  constructor(
    readonly kernel: Kernel,
    private readonly args: BoundArg[],
    public workgroups: [number, number, number],
    private engine: Engine,
    private uniformBuffer: GPUBuffer | null,
  ) {}

  /** The tensors this dispatch binds, with the access the shader declares (read or read_write). */
  tensors(): { tensor: Tensor; access: 'read' | 'read_write'; name: string }[] {
    const out: { tensor: Tensor; access: 'read' | 'read_write'; name: string }[] = [];
    for (const a of this.args) if (a.arg instanceof Tensor) out.push({ tensor: a.arg, access: a.binding.access, name: a.binding.name });
    return out;
  }

  /** The bind group, created on first use; checks that no written buffer aliases another binding. */
  get bindGroup(): GPUBindGroup {
    if (!this.group) this.group = this.engine.createBindGroup(this.kernel, this.args, this.uniformBuffer);
    return this.group;
  }

  /** Rewrite the params uniform. Work recorded before this call still sees the old values. */
  setParams(values: Record<string, number>): void {
    if (!this.uniformBuffer) throw new Error(`Kernel ${this.kernel.name} has no params uniform.`);
    this.engine.flush();
    this.engine.device.queue.writeBuffer(this.uniformBuffer, 0, this.kernel.packParams(values));
  }

  /** Release the uniform buffer (deferred until pending work is submitted). */
  dispose(): void {
    if (this.uniformBuffer) this.engine.releaseBuffer(this.uniformBuffer);
    this.uniformBuffer = null;
    this.group = null;
  }
}

export interface EngineOptions extends DeviceOptions {
  /**
   * How to wait for the GPU in Node on a software adapter: 'quiet' (default) sleeps between
   * Dawn's completion checks, leaving the cores to the adapter's threads; 'spin' lets Dawn check
   * continuously, as it does by default. See `Engine.settle`.
   */
  wait?: 'quiet' | 'spin';
}

/** A quiet wait sleeps this long per turn of the event loop (milliseconds). */
const QUIET_POLL_MS = 1;
/** Never signalled: Atomics.wait on it is a plain sleep (made on first use; Node only). */
let sleeper: Int32Array | null = null;

/** Largest workgroup count per dimension that WebGPU guarantees. */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/**
 * Workgroup counts for `n` invocations of a 1-D kernel with `wg` invocations per workgroup,
 * split over x and y when one dimension would exceed 65,535. Kernels linearise with
 * `gid.x + gid.y * num_workgroups.x * WG`.
 */
export function grid1d(n: number, wg: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  if (groups <= MAX_WORKGROUPS_PER_DIM) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_WORKGROUPS_PER_DIM);
  const x = Math.ceil(groups / y);
  if (y > MAX_WORKGROUPS_PER_DIM) throw new Error(`A dispatch of ${n} invocations needs more than 65535² workgroups.`);
  return [x, y, 1];
}

export class Engine {
  readonly pool: BufferPool;
  private kernels = new Map<string, Promise<Kernel>>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingRelease: GPUBuffer[] = [];
  private lostInfo: GPUDeviceLostInfo | null = null;
  private destroyed = false;
  /** Resolves when the device is lost (or destroyed). */
  readonly lost: Promise<GPUDeviceLostInfo>;
  /** Uncaptured GPU errors seen so far (validation, out-of-memory); the next read throws the first. */
  private gpuErrors: string[] = [];

  /** Whether waits for the GPU sleep between Dawn's completion checks (see `settle`). */
  readonly quietWaits: boolean;

  private constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterReport,
    wait: EngineOptions['wait'],
  ) {
    this.quietWaits = adapter.isSoftware && wait !== 'spin' && isNode;
    this.pool = new BufferPool(device, adapter.limits.maxBufferSize);
    this.lost = device.lost.then((info) => {
      this.lostInfo = info;
      return info;
    });
    device.addEventListener?.('uncapturederror', (ev: Event) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.gpuErrors.push(e.message);
    });
  }

  /** Start an engine on the best adapter available (see `requestDevice`). */
  static async create(opts: EngineOptions = {}): Promise<Engine> {
    await initShaderSources();
    const { device, adapter } = await requestDevice(opts);
    return new Engine(device, adapter, opts.wait);
  }

  /** Throws if the device was lost or destroyed: every GPU call goes through here first. */
  assertAlive(): void {
    if (this.destroyed) throw new Error('The engine was destroyed; create a new one.');
    if (this.lostInfo) throw new Error(`The GPU device was lost (${this.lostInfo.reason}): ${this.lostInfo.message || 'no message'}. Training state on the GPU is gone; resume from the last checkpoint.`);
  }

  get isLost(): boolean {
    return this.lostInfo !== null;
  }

  // ---- buffers and tensors -------------------------------------------------------------------

  /** A new tensor; with `data`, uploaded. Contents are unspecified without data (use `zeros`). */
  tensor(shape: Shape, data?: ArrayLike<number>, label = 'tensor'): Tensor {
    this.assertAlive();
    checkShape(shape, `Tensor "${label}"`);
    const size = shapeSize(shape);
    const bytes = size * 4;
    const limit = this.adapter.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(`Tensor "${label}" ${shapeStr(shape)} needs ${bytes} bytes, over the adapter's maxStorageBufferBindingSize limit of ${limit} bytes.`);
    }
    const t = new Tensor(this, [...shape], this.pool.acquire(bytes, GPUBufferUsageFlags.storage, label), label);
    if (data) this.write(t, data);
    return t;
  }

  /**
   * A tensor whose memory a planner assigns later (`Tensor.bind`): dispatches can be built on it
   * now and are bound when first recorded. Checked against the same limits as `tensor`.
   */
  planned(shape: Shape, label = 'planned'): Tensor {
    this.assertAlive();
    checkShape(shape, `Tensor "${label}"`);
    const bytes = shapeSize(shape) * 4;
    const limit = this.adapter.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(`Tensor "${label}" ${shapeStr(shape)} needs ${bytes} bytes, over the adapter's maxStorageBufferBindingSize limit of ${limit} bytes.`);
    }
    return new Tensor(this, [...shape], null, label);
  }

  zeros(shape: Shape, label = 'zeros'): Tensor {
    const t = this.tensor(shape, undefined, label);
    this.fill(t, 0);
    return t;
  }

  /** Fill a tensor with a constant (queued). */
  fill(t: Tensor, value: number): void {
    this.write(t, new Float32Array(t.size).fill(value));
  }

  /** Upload data into a tensor (queued: ordered with submitted work). */
  write(t: Tensor, data: ArrayLike<number>): void {
    this.assertAlive();
    if (data.length !== t.size) {
      throw new Error(`Tensor "${t.label}" ${shapeStr(t.shape)} holds ${t.size} values; ${data.length} were given.`);
    }
    const arr = data instanceof Float32Array ? data : Float32Array.from(data);
    // Work recorded so far must see the old contents, so submit it before the queued write.
    this.flush();
    this.device.queue.writeBuffer(t.buffer, 0, arr.buffer, arr.byteOffset, arr.byteLength);
  }

  /** Upload raw bytes into a buffer argument (a uniform such as the per-step values), ordered like `write`. */
  writeBuffer(dst: BufferArg, data: ArrayBuffer): void {
    this.assertAlive();
    if (data.byteLength > dst.byteLength) throw new Error(`Buffer "${dst.label ?? 'buffer'}" holds ${dst.byteLength} bytes; ${data.byteLength} were given.`);
    this.flush();
    this.device.queue.writeBuffer(dst.buffer, 0, data);
  }

  /** Copy `src` into `dst` (queued). */
  copy(src: Tensor, dst: Tensor): void {
    if (src.size !== dst.size) throw new Error(`copy: "${src.label}" ${shapeStr(src.shape)} and "${dst.label}" ${shapeStr(dst.shape)} differ in size.`);
    this.endPass();
    this.getEncoder().copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, src.byteLength);
  }

  /**
   * Copy a buffer argument's bytes into `dst` at `dstOffset`, recorded after the work so far and
   * submitted with it (e.g. into a staging buffer that is mapped later, without waiting).
   */
  copyToBuffer(src: BufferArg, dst: GPUBuffer, dstOffset = 0): void {
    this.endPass();
    this.getEncoder().copyBufferToBuffer(src.buffer, 0, dst, dstOffset, src.byteLength);
  }

  /** Read a tensor back to the CPU: submits pending work and waits for it. */
  async read(t: Tensor | BufferArg): Promise<Float32Array> {
    this.assertAlive();
    const bytes = t.byteLength;
    const staging = this.pool.acquire(bytes, GPUBufferUsageFlags.readback, `read:${t.label ?? 'buffer'}`);
    this.endPass();
    this.getEncoder().copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
    this.flush();
    try {
      await this.settle(Promise.race([staging.mapAsync(GPUMapMode.READ, 0, bytes), this.lost.then(() => undefined)]));
      this.assertAlive();
      this.throwGpuErrors();
      const out = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
      staging.unmap();
      return out;
    } finally {
      this.pool.release(staging);
    }
  }

  /** Give a buffer back to the pool once the work recorded so far has been submitted. */
  releaseBuffer(buf: GPUBuffer): void {
    if (this.encoder) this.pendingRelease.push(buf);
    else this.pool.release(buf);
  }

  /** Exact bytes of GPU memory held by this engine's buffers (in use and pooled). */
  get bytesHeld(): number {
    return this.pool.snapshot().bytesHeld;
  }

  stats(): PoolStats {
    return this.pool.snapshot();
  }

  // ---- kernels and dispatch ------------------------------------------------------------------

  /** The compiled kernel `family.entry` with the given override constants; compiled once, then cached. */
  kernel(family: string, entry: string, constants: Record<string, number> = {}): Promise<Kernel> {
    this.assertAlive();
    const key = `${family}.${entry}:${JSON.stringify(constants)}`;
    let k = this.kernels.get(key);
    if (!k) {
      k = compileKernel(this.device, family, entry, constants);
      k.catch(() => this.kernels.delete(key));
      this.kernels.set(key, k);
    }
    return k;
  }

  /**
   * Bind buffers (by the names the shader declares) and params to a kernel, checking them
   * against the shader's reflected bindings: every binding given, none extra, big enough, from
   * this engine. The bind group itself is made when the dispatch is first recorded (see Dispatch).
   */
  dispatch(kernel: Kernel, buffers: Record<string, BufferArg>, workgroups: Workgroups, params?: Record<string, number>): Dispatch {
    this.assertAlive();
    const args: BoundArg[] = [];
    const given = new Set(Object.keys(buffers));
    let uniformBuffer: GPUBuffer | null = null;
    for (const b of kernel.bindings) {
      if (b.kind === 'uniform' && b.name === 'params') {
        if (!params) throw new Error(`Kernel ${kernel.name}: params were not given (it declares params with ${[...kernel.uniform!.members.keys()].join(', ')}).`);
        const data = kernel.packParams(params);
        uniformBuffer = this.pool.acquire(data.byteLength, GPUBufferUsageFlags.uniform, `${kernel.name}:params`);
        this.device.queue.writeBuffer(uniformBuffer, 0, data);
        continue;
      }
      const arg = buffers[b.name];
      if (!arg) {
        throw new Error(`Kernel ${kernel.name}: binding "${b.name}" (@binding(${b.binding}), ${b.kind}, ${b.access}) was not given (given: ${[...given].join(', ') || 'none'}).`);
      }
      given.delete(b.name);
      const label = arg.label ?? 'buffer';
      const shape = arg instanceof Tensor ? ` ${shapeStr(arg.shape)}` : '';
      if (arg instanceof Tensor) {
        if (arg.engine !== this) throw new Error(`Kernel ${kernel.name}: binding "${b.name}" was given "${label}"${shape}, a tensor of another engine; tensors cannot move between engines (GPU devices).`);
        if (arg.disposed) throw new Error(`Kernel ${kernel.name}: binding "${b.name}" was given "${label}"${shape}, which was disposed.`);
      }
      const bytes = arg.byteLength;
      if (b.fixedBytes && bytes < b.fixedBytes) {
        throw new Error(`Kernel ${kernel.name}: binding "${b.name}" needs ${b.fixedBytes} bytes; "${label}"${shape} has ${bytes}.`);
      }
      if (b.stride && (bytes < b.stride || bytes % b.stride !== 0)) {
        throw new Error(`Kernel ${kernel.name}: binding "${b.name}" is an array of ${b.stride}-byte elements; "${label}"${shape} has ${bytes} bytes, not a whole number of them.`);
      }
      args.push({ binding: b, arg });
    }
    if (params && !uniformBuffer) throw new Error(`Kernel ${kernel.name} declares no params uniform, but params were given.`);
    if (given.size) {
      const declared = kernel.bindings.map((b) => b.name).join(', ');
      throw new Error(`Kernel ${kernel.name}: no binding named ${[...given].map((g) => `"${g}"`).join(', ')} (it declares: ${declared}).`);
    }
    const wg: [number, number, number] = [workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1];
    for (const n of wg) {
      if (!Number.isInteger(n) || n < 0 || n > MAX_WORKGROUPS_PER_DIM) {
        throw new Error(`Kernel ${kernel.name}: workgroup count ${JSON.stringify(wg)} is outside 0..${MAX_WORKGROUPS_PER_DIM} per dimension.`);
      }
    }
    const d = new Dispatch(kernel, args, wg, this, uniformBuffer);
    // Tensors that have memory already get their bind group now: errors surface where the dispatch is made.
    if (args.every((a) => !(a.arg instanceof Tensor) || a.arg.hasMemory)) void d.bindGroup;
    return d;
  }

  /**
   * The bind group of a dispatch's bindings (see Dispatch.bindGroup). A buffer bound as
   * read_write must not also be bound elsewhere in the same dispatch (WebGPU forbids it).
   */
  createBindGroup(kernel: Kernel, args: BoundArg[], uniformBuffer: GPUBuffer | null): GPUBindGroup {
    const entries: GPUBindGroupEntry[] = [];
    const writers = new Map<GPUBuffer, string>();
    const seen = new Map<GPUBuffer, string>();
    for (const { binding: b, arg } of args) {
      const label = arg.label ?? 'buffer';
      const buffer = arg.buffer;
      if (b.access === 'read_write') {
        const other = seen.get(buffer);
        if (other) throw new Error(`Kernel ${kernel.name}: "${label}" is bound as read_write "${b.name}" and also as "${other}"; a written buffer cannot alias another binding.`);
        writers.set(buffer, b.name);
      } else if (writers.has(buffer)) {
        throw new Error(`Kernel ${kernel.name}: "${label}" is bound as "${b.name}" and also as read_write "${writers.get(buffer)}"; a written buffer cannot alias another binding.`);
      }
      seen.set(buffer, b.name);
      entries.push({ binding: b.binding, resource: { buffer, offset: 0, size: arg.byteLength } });
    }
    const params = kernel.bindings.find((b) => b.kind === 'uniform' && b.name === 'params');
    if (params && uniformBuffer) entries.push({ binding: params.binding, resource: { buffer: uniformBuffer, size: kernel.uniform!.bytes } });
    entries.sort((a, b) => a.binding - b.binding);
    return this.device.createBindGroup({ label: kernel.name, layout: kernel.layout, entries });
  }

  /** Record dispatches into the current compute pass (nothing is submitted until a flush or read). */
  run(...dispatches: Dispatch[]): void {
    this.assertAlive();
    if (!this.pass) this.pass = this.getEncoder().beginComputePass();
    for (const d of dispatches) {
      const [x, y, z] = d.workgroups;
      if (x === 0 || y === 0 || z === 0) continue;
      this.pass.setPipeline(d.kernel.pipeline);
      this.pass.setBindGroup(0, d.bindGroup);
      this.pass.dispatchWorkgroups(x, y, z);
    }
  }

  /** Record a one-off dispatch and release its uniform after submission. */
  runOnce(d: Dispatch): void {
    this.run(d);
    d.dispose();
  }

  /** Submit everything recorded so far as one command buffer. */
  flush(): void {
    if (!this.encoder || this.lostInfo || this.destroyed) return;
    this.endPass();
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    for (const b of this.pendingRelease) this.pool.release(b);
    this.pendingRelease = [];
  }

  /** Submit and wait until the GPU has finished all work so far. */
  async sync(): Promise<void> {
    this.flush();
    await this.settle(Promise.race([this.device.queue.onSubmittedWorkDone(), this.lost]));
    this.assertAlive();
    this.throwGpuErrors();
  }

  /**
   * Await a promise that Dawn resolves (onSubmittedWorkDone, mapAsync) without spinning the main
   * thread, on a software adapter in Node; elsewhere just await it. Why: Dawn's Node binding
   * resolves such a promise by re-queueing setImmediate, so the main thread runs at full speed for
   * the whole wait; on a CPU adapter that spin takes a core's share from the threads doing the
   * GPU's work (bench/README.md, "Waiting for the GPU", has the figures).
   * Here each turn of the event loop first sleeps QUIET_POLL_MS (Atomics.wait: no CPU), so Dawn
   * still checks for completion about once per millisecond.
   */
  async settle<T>(p: Promise<T>): Promise<T> {
    if (!this.quietWaits) return p;
    let done = false;
    const q = p.finally(() => {
      done = true;
    });
    q.catch(() => {}); // the caller sees the rejection; none is "unhandled" meanwhile
    sleeper ??= new Int32Array(new SharedArrayBuffer(4));
    while (!done) {
      Atomics.wait(sleeper, 0, 0, QUIET_POLL_MS);
      await new Promise((r) => setImmediate(r));
    }
    return q;
  }

  private throwGpuErrors(): void {
    if (this.gpuErrors.length) {
      const errs = this.gpuErrors.splice(0);
      throw new Error(`GPU error${errs.length > 1 ? `s (${errs.length})` : ''}: ${errs[0]}`);
    }
  }

  private getEncoder(): GPUCommandEncoder {
    this.assertAlive();
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'engine' });
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Destroy the device and every buffer; a Node process can then exit by itself. */
  destroy(): void {
    if (this.destroyed) return;
    if (!this.lostInfo) {
      try {
        this.flush();
      } catch {
        /* the device may already be unusable */
      }
    }
    this.destroyed = true;
    this.pool.destroyAll();
    this.kernels.clear();
    this.device.destroy();
  }
}
