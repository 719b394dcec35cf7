// GPU memory as the device sees it, the same way for every library: bytes of the GPUBuffers that
// were created and not yet destroyed, and their peak. Counted by wrapping Dawn's
// GPUDevice.createBuffer and GPUBuffer.destroy in the benchmark child (no library is changed);
// a buffer dropped without destroy() counts as held, as its memory is until it is collected.
// Also: devices with WebGPU's default limits instead of the adapter's, for the memory check.

interface Counts {
  /** Bytes of live buffers now. */
  live: number;
  /** Highest `live` since the last reset. */
  peak: number;
  /** Largest single buffer created since the last reset. */
  largest: number;
}

const counts: Counts = { live: 0, peak: 0, largest: 0 };
const sizes = new WeakMap<GPUBuffer, number>();
let installed = false;

async function dawnClasses(): Promise<{ GPUDevice: typeof GPUDevice; GPUBuffer: typeof GPUBuffer; GPUAdapter: typeof GPUAdapter }> {
  const { globals } = await import('webgpu');
  return globals as unknown as { GPUDevice: typeof GPUDevice; GPUBuffer: typeof GPUBuffer; GPUAdapter: typeof GPUAdapter };
}

/** Start counting (before the library creates its device); later calls do nothing. */
export async function trackDeviceMemory(): Promise<void> {
  if (installed) return;
  installed = true;
  const { GPUDevice: Device, GPUBuffer: Buffer } = await dawnClasses();
  const create = Device.prototype.createBuffer;
  const destroy = Buffer.prototype.destroy;
  Device.prototype.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor): GPUBuffer {
    const b = create.call(this, desc);
    sizes.set(b, desc.size);
    counts.live += desc.size;
    counts.peak = Math.max(counts.peak, counts.live);
    counts.largest = Math.max(counts.largest, desc.size);
    return b;
  };
  Buffer.prototype.destroy = function (this: GPUBuffer): undefined {
    const n = sizes.get(this);
    if (n !== undefined) {
      counts.live -= n;
      sizes.delete(this);
    }
    return destroy.call(this);
  };
}

/** The counts now. */
export function deviceMemory(): Counts {
  return { ...counts };
}

/** Start a new peak (and largest buffer) from what is held now; returns the bytes held now. */
export function resetDevicePeak(): number {
  counts.peak = counts.live;
  counts.largest = 0;
  return counts.live;
}
