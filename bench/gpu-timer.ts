// Device-side timing of recorded dispatches, for the benchmarks and the step profile. With the
// adapter's 'timestamp-query' feature each group of dispatches runs in its own compute pass with
// timestamps written at its start and end; without it, each group is submitted alone and timed by
// the wall clock until the queue is idle (which adds submission and wake-up latency).
import type { Dispatch, Engine } from '../src/gpu/engine.ts';

export type TimingMethod = 'timestamp-query' | 'wall-clock per submission';

export class GpuTimer {
  readonly method: TimingMethod;

  constructor(private e: Engine) {
    this.method = e.adapter.features.includes('timestamp-query') ? 'timestamp-query' : 'wall-clock per submission';
  }

  /** Milliseconds each group of dispatches took, in order. Pending engine work is submitted first. */
  async time(groups: Dispatch[][]): Promise<number[]> {
    this.e.flush();
    await this.e.sync();
    return this.method === 'timestamp-query' ? this.timestamps(groups) : this.wallClock(groups);
  }

  private encode(pass: GPUComputePassEncoder, group: Dispatch[]): void {
    for (const d of group) {
      const [x, y, z] = d.workgroups;
      if (!x || !y || !z) continue;
      pass.setPipeline(d.kernel.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(x, y, z);
    }
  }

  private async timestamps(groups: Dispatch[][]): Promise<number[]> {
    const device = this.e.device;
    const count = 2 * groups.length;
    const querySet = device.createQuerySet({ label: 'bench:timestamps', type: 'timestamp', count });
    const resolve = device.createBuffer({ label: 'bench:timestamps-resolve', size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const readback = device.createBuffer({ label: 'bench:timestamps-read', size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const enc = device.createCommandEncoder({ label: 'bench:timed' });
      groups.forEach((g, i) => {
        const pass = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
        this.encode(pass, g);
        pass.end();
      });
      enc.resolveQuerySet(querySet, 0, count, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, readback, 0, count * 8);
      device.queue.submit([enc.finish()]);
      await readback.mapAsync(GPUMapMode.READ);
      const ns = new BigUint64Array(readback.getMappedRange().slice(0));
      readback.unmap();
      return groups.map((_, i) => Number(ns[2 * i + 1] - ns[2 * i]) / 1e6);
    } finally {
      querySet.destroy();
      resolve.destroy();
      readback.destroy();
    }
  }

  private async wallClock(groups: Dispatch[][]): Promise<number[]> {
    const device = this.e.device;
    const out: number[] = [];
    for (const g of groups) {
      const t0 = performance.now();
      const enc = device.createCommandEncoder({ label: 'bench:timed' });
      const pass = enc.beginComputePass();
      this.encode(pass, g);
      pass.end();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      out.push(performance.now() - t0);
    }
    return out;
  }
}
