// GPU buffer pool: free lists keyed by (size, usage) so that a training loop that frees and
// re-allocates the same shapes every step stops calling createBuffer after its first step.
// It also keeps the exact count of bytes held on the GPU, which tests and benchmarks read.

/** Usage flags, resolved lazily: in Node the GPUBufferUsage global exists only after device creation. */
export const GPUBufferUsageFlags = {
  get storage(): number {
    return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  },
  get uniform(): number {
    return GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;
  },
  get readback(): number {
    return GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;
  },
};

export interface PoolStats {
  /** Bytes of every live GPU buffer the pool created (in use or free-listed). */
  bytesHeld: number;
  /** Bytes of buffers handed out and not yet released. */
  bytesInUse: number;
  /** Highest bytesHeld seen. */
  peakBytesHeld: number;
  buffersCreated: number;
  buffersReused: number;
}

/** Round sizes up so that near-equal requests share a free list; 4-byte alignment is WebGPU's rule. */
function roundSize(bytes: number): number {
  const aligned = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (aligned <= 4096) return aligned;
  // Above 4 KiB, round to 1/8 of the next power of two: at most 12.5% waste, far fewer distinct lists.
  const step = 2 ** Math.max(12, Math.floor(Math.log2(aligned)) - 3);
  return Math.ceil(aligned / step) * step;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private stats: PoolStats = { bytesHeld: 0, bytesInUse: 0, peakBytesHeld: 0, buffersCreated: 0, buffersReused: 0 };
  private live = new Set<GPUBuffer>();

  constructor(
    private device: GPUDevice,
    private maxBufferSize: number,
  ) {}

  /** A buffer of at least `bytes` bytes; `label` names it in GPU error messages and captures. */
  acquire(bytes: number, usage: number, label: string): GPUBuffer {
    const size = roundSize(bytes);
    if (size > this.maxBufferSize) {
      throw new Error(`Buffer "${label}" needs ${bytes} bytes, over the adapter's maxBufferSize limit of ${this.maxBufferSize} bytes ` + `(${(bytes / this.maxBufferSize).toFixed(2)}x the limit).`);
    }
    const key = `${size}:${usage}`;
    const list = this.free.get(key);
    let buf = list?.pop();
    if (buf) {
      this.stats.buffersReused++;
      buf.label = label;
    } else {
      buf = this.device.createBuffer({ size, usage, label });
      this.stats.buffersCreated++;
      this.stats.bytesHeld += size;
      this.stats.peakBytesHeld = Math.max(this.stats.peakBytesHeld, this.stats.bytesHeld);
    }
    this.live.add(buf);
    this.stats.bytesInUse += size;
    return buf;
  }

  /** Return a buffer to its free list. The caller guarantees no pending GPU work still uses it. */
  release(buf: GPUBuffer): void {
    if (!this.live.delete(buf)) return;
    this.stats.bytesInUse -= buf.size;
    const key = `${buf.size}:${buf.usage}`;
    let list = this.free.get(key);
    if (!list) {
      list = [];
      this.free.set(key, list);
    }
    list.push(buf);
  }

  /** Destroy every free-listed buffer (the ones in use stay). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.stats.bytesHeld -= b.size;
        b.destroy();
      }
    }
    this.free.clear();
  }

  /** Destroy everything, in use or not. */
  destroyAll(): void {
    this.trim();
    for (const b of this.live) {
      this.stats.bytesHeld -= b.size;
      b.destroy();
    }
    this.live.clear();
    this.stats.bytesInUse = 0;
  }

  /** Labels and sizes of the buffers handed out and not released: what to look at for a leak. */
  liveBuffers(): { label: string; size: number }[] {
    return [...this.live].map((b) => ({ label: b.label, size: b.size }));
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }

  resetPeak(): void {
    this.stats.peakBytesHeld = this.stats.bytesHeld;
  }
}
