// The engine's Node host: WebGPU adapters from Dawn (the `webgpu` package), with SwiftShader as the
// software driver on machines without a GPU, and the files of the tuning cache. Importing this
// module installs it (see host.ts); the package's Node build of its main entry does so, and so do
// the CLI, the benchmarks and the tests. Node only: the browser build never reaches this file.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SWIFTSHADER_ICD } from './device.ts';
import { setNodeHost } from './host.ts';

// Dawn's instance (the object `create` returns) must outlive its adapters and devices: when the
// garbage collector reclaims it, Dawn tears down threads a live device still uses and aborts the
// process. So the process keeps one instance (two when the first found no driver) and reuses it
// for every engine it creates.
let nodeGpu: GPU | null = null;
const rejectedInstances: GPU[] = [];

/** Whether Linux shows a GPU device node: a DRM render node (AMD, Intel, ...) or NVIDIA's. */
function hasGpuDeviceNode(): boolean {
  try {
    if (readdirSync('/dev/dri').some((n) => n.startsWith('renderD'))) return true;
  } catch {
    /* no /dev/dri */
  }
  return existsSync('/dev/nvidia0') || existsSync('/dev/nvidiactl');
}

async function requestAdapter(opts: { powerPreference?: GPUPowerPreference }): Promise<GPUAdapter> {
  // Loaded on first use: Dawn's native module takes a moment to load, and commands that never
  // touch the GPU (the CLI's --help) should not pay for it.
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  let adapter: GPUAdapter | null = null;
  if (!nodeGpu) {
    // Prefer a hardware adapter; only when none is found do we point the Vulkan loader at SwiftShader.
    // On Linux a GPU the Vulkan loader can drive shows up as a device node; with none, probing the
    // installed drivers only finds CPU ones that Dawn rejects, with a warning on stderr (Mesa's
    // lavapipe), so go straight to SwiftShader.
    if (!process.env.VK_ICD_FILENAMES && process.platform === 'linux' && existsSync(SWIFTSHADER_ICD) && !hasGpuDeviceNode()) {
      process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    }
    nodeGpu = webgpu.create([]) as GPU;
    if (!process.env.VK_ICD_FILENAMES) adapter = await nodeGpu.requestAdapter({ powerPreference: opts.powerPreference });
    if (!adapter && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
      process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
      rejectedInstances.push(nodeGpu);
      nodeGpu = webgpu.create([]) as GPU;
    }
  }
  if (!adapter) adapter = await nodeGpu.requestAdapter({ powerPreference: opts.powerPreference });
  if (!adapter) {
    throw new Error(
      'No WebGPU adapter found. Node needs a Vulkan driver: on a machine with a GPU install its vendor driver; ' +
        'on a machine without one, install SwiftShader with `apt-get install -y chromium libvulkan1` ' +
        `(it provides ${SWIFTSHADER_ICD}; in a checkout of webgpu-train, \`bash scripts/setup.sh\` does this).`,
    );
  }
  return adapter;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function writeText(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

// This file sits two levels below the package root, in src/gpu/ and in dist/gpu/ alike.
const cacheDir = fileURLToPath(new URL('../../node_modules/.cache/webgpu-train/', import.meta.url));

setNodeHost({ requestAdapter, cacheDir, readText, writeText });
