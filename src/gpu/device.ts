// Finding a GPU: one function that returns a ready device in the browser (navigator.gpu) and in
// Node (Dawn through the `webgpu` package), with the adapter described honestly: its name, whether
// it is a software rasteriser, the optional features we enabled and the limits we requested.
// Dawn itself is reached through the Node host (node-host.ts), so that this file imports nothing
// a browser bundle cannot take.
import { nodeHost } from './host.ts';

/** What the engine knows about the adapter it runs on. */
export interface AdapterReport {
  /** Human-readable name, e.g. "nvidia / ada" or "google / swiftshader". */
  name: string;
  vendor: string;
  architecture: string;
  description: string;
  /** True for CPU implementations (SwiftShader, lavapipe, WARP): figures from them are not GPU figures. */
  isSoftware: boolean;
  /** Where the device came from. */
  runtime: 'node' | 'browser';
  /** Optional features requested on the device. */
  features: string[];
  /** The limits requested on the device (the adapter's maxima for the ones we use). */
  limits: Record<string, number>;
}

export interface DeviceOptions {
  powerPreference?: GPUPowerPreference;
  /** Refuse a software adapter instead of using it. */
  requireHardware?: boolean;
  /**
   * The device's limits: 'adapter' (default) asks for everything the adapter offers; 'default'
   * takes WebGPU's default limits, which every WebGPU device has (to check that a model runs on
   * any of them).
   */
  limits?: 'adapter' | 'default';
  /** Print a line saying which adapter is in use (and that it is software, when it is). Default true in Node. */
  log?: (line: string) => void;
}

const LIMITS_WE_USE = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
] as const;

const OPTIONAL_FEATURES = ['timestamp-query', 'subgroups', 'shader-f16'] as const;

/** Debian's chromium package ships SwiftShader's Vulkan driver here. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const SOFTWARE_NAMES = /swiftshader|llvmpipe|lavapipe|softpipe|warp|microsoft basic/i;

export const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

/** Describe an adapter; `isSoftware` uses the fallback flag and the known software driver names. */
export function describeAdapter(adapter: GPUAdapter, runtime: 'node' | 'browser'): Omit<AdapterReport, 'features' | 'limits'> {
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const vendor = info.vendor || 'unknown';
  const architecture = info.architecture || '';
  const description = info.description || '';
  const fallback = Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  const isSoftware = fallback || SOFTWARE_NAMES.test(`${vendor} ${architecture} ${description} ${info.device ?? ''}`);
  return { name: architecture ? `${vendor} / ${architecture}` : vendor, vendor, architecture, description, isSoftware, runtime };
}

/**
 * Create a GPU device with the adapter's real limits and the optional features it offers.
 * Throws a message that says how to get an adapter when there is none.
 */
export async function requestDevice(opts: DeviceOptions = {}): Promise<{ device: GPUDevice; adapter: AdapterReport }> {
  let adapter: GPUAdapter | null;
  let runtime: 'node' | 'browser';
  if (!isNode) {
    runtime = 'browser';
    if (typeof navigator === 'undefined' || !navigator.gpu) {
      throw new Error('This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome, Edge or Safari, served over https or localhost.');
    }
    adapter = await navigator.gpu.requestAdapter({ powerPreference: opts.powerPreference });
    if (!adapter) throw new Error('WebGPU is present but no adapter was found: the GPU may be blocklisted or disabled in the browser settings.');
  } else {
    runtime = 'node';
    adapter = await nodeHost().requestAdapter(opts);
  }
  const base = describeAdapter(adapter, runtime);
  if (opts.requireHardware && base.isSoftware) {
    throw new Error(`Adapter "${base.name}" (${base.description}) is a software adapter and a hardware one was required.`);
  }
  const features = OPTIONAL_FEATURES.filter((f) => adapter!.features.has(f));
  const limits: Record<string, number> = {};
  for (const k of LIMITS_WE_USE) limits[k] = (adapter.limits as unknown as Record<string, number>)[k];
  const device = await adapter.requestDevice({
    label: 'engine',
    requiredFeatures: features as GPUFeatureName[],
    requiredLimits: opts.limits === 'default' ? {} : limits,
  });
  // The limits the device was given (what its kernels must fit), which are the adapter's unless a
  // caller asked for less.
  const granted: Record<string, number> = {};
  for (const k of LIMITS_WE_USE) granted[k] = (device.limits as unknown as Record<string, number>)[k];
  const report: AdapterReport = { ...base, features: [...features], limits: granted };
  const log = opts.log ?? (runtime === 'node' ? (s: string) => process.stderr.write(`${s}\n`) : undefined);
  const software = report.isSoftware ? ' [SOFTWARE adapter: runs on the CPU, figures are not GPU figures]' : '';
  log?.(`WebGPU adapter: ${report.name}${report.description ? ` (${report.description})` : ''}${software}`);
  return { device, adapter: report };
}
