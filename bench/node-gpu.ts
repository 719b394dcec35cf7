// WebGPU for the peer libraries in Node: they look for `navigator.gpu`, which Node lacks. This
// installs Dawn (the `webgpu` package) there, choosing a driver the way our engine does (a
// hardware adapter first, SwiftShader only when there is none), and describes the adapter.
import { describeAdapter, SWIFTSHADER_ICD } from '../src/gpu/device.ts';
import type { AdapterInfo } from './common.ts';
import { existsSync } from 'node:fs';

// Dawn's instance must outlive the devices made from it: keep it for the life of the process.
const instances: GPU[] = [];

/** Put a Dawn-backed `navigator.gpu` on globalThis and return a description of its adapter. */
export async function installNavigatorGpu(): Promise<AdapterInfo> {
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  let gpu = webgpu.create([]) as GPU;
  let adapter = process.env.VK_ICD_FILENAMES ? null : await gpu.requestAdapter();
  if (!adapter) {
    if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    instances.push(gpu);
    gpu = webgpu.create([]) as GPU;
    adapter = await gpu.requestAdapter();
  }
  if (!adapter) throw new Error('No WebGPU adapter in Node: install a Vulkan driver or SwiftShader (bash scripts/setup.sh).');
  instances.push(gpu);
  Object.defineProperty(globalThis, 'navigator', {
    value: { gpu, userAgent: `Node.js/${process.versions.node}`, hardwareConcurrency: (await import('node:os')).cpus().length },
    configurable: true,
    writable: true,
  });
  const d = describeAdapter(adapter, 'node');
  return { ...d, features: [...adapter.features].sort() };
}
