// Kernels: a WGSL entry point compiled once into a compute pipeline whose bind group layout comes
// from reflecting the shader (wgsl_reflect), plus the checks that make a bad dispatch fail with
// the kernel's and the binding's name instead of a validation error from deep inside the driver.
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { shaderLineOrigin, shaderSource } from './shaders.ts';

/** One buffer binding an entry point declares. */
export interface BindingInfo {
  name: string;
  group: number;
  binding: number;
  kind: 'uniform' | 'storage';
  access: 'read' | 'read_write';
  /** Bytes of the fixed part (a struct, or a fixed-size array); 0 for a runtime-sized array. */
  fixedBytes: number;
  /** Element stride of a runtime-sized array; 0 otherwise. */
  stride: number;
}

interface UniformMember {
  offset: number;
  type: string;
}

/** A compiled entry point. Create with `Engine.kernel`; pipelines are cached by family, entry and constants. */
export class Kernel {
  constructor(
    /** `family.entry`, e.g. `matmul.matmul_forward`. */
    readonly name: string,
    readonly pipeline: GPUComputePipeline,
    readonly layout: GPUBindGroupLayout,
    readonly bindings: BindingInfo[],
    /** Members of the uniform struct bound as `params`, when the entry point has one. */
    readonly uniform: { bytes: number; members: Map<string, UniformMember> } | null,
  ) {}

  /** Pack named values into the entry point's `params` uniform struct, by the reflected layout. */
  packParams(values: Record<string, number>, into?: ArrayBuffer): ArrayBuffer {
    if (!this.uniform) throw new Error(`Kernel ${this.name} has no params uniform, but params were given.`);
    const buf = into ?? new ArrayBuffer(this.uniform.bytes);
    const view = new DataView(buf);
    for (const [name, m] of this.uniform.members) {
      if (!(name in values)) {
        if (name.startsWith('_')) continue; // padding members
        throw new Error(`Kernel ${this.name}: params.${name} was not given (given: ${Object.keys(values).join(', ')}).`);
      }
      const v = values[name];
      if (m.type === 'u32') {
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`Kernel ${this.name}: params.${name} = ${v} is not a u32.`);
        view.setUint32(m.offset, v, true);
      } else if (m.type === 'i32') view.setInt32(m.offset, v, true);
      else if (m.type === 'f32') view.setFloat32(m.offset, v, true);
      else throw new Error(`Kernel ${this.name}: params.${name} has type ${m.type}; only u32, i32 and f32 members are supported.`);
    }
    for (const k of Object.keys(values)) {
      if (!this.uniform.members.has(k)) throw new Error(`Kernel ${this.name}: params has no member "${k}".`);
    }
    return buf;
  }
}

const reflections = new Map<string, WgslReflect>();

function reflect(family: string): WgslReflect {
  let r = reflections.get(family);
  if (!r) {
    try {
      r = new WgslReflect(shaderSource(family));
    } catch (e) {
      throw new Error(`Shader family "${family}" could not be parsed for reflection: ${(e as Error).message}`);
    }
    reflections.set(family, r);
  }
  return r;
}

/** The buffer bindings of one entry point, read from the WGSL. */
export function reflectEntry(family: string, entry: string): { bindings: BindingInfo[]; uniform: Kernel['uniform'] } {
  const r = reflect(family);
  const fn = r.entry.compute.find((e) => e.name === entry);
  if (!fn) {
    const have = r.entry.compute.map((e) => e.name).join(', ');
    throw new Error(`Shader family "${family}" has no compute entry point "${entry}" (it has: ${have}).`);
  }
  const bindings: BindingInfo[] = [];
  let uniform: Kernel['uniform'] = null;
  for (const v of fn.resources) {
    const isUniform = v.resourceType === 0;
    const isStorage = v.resourceType === 1;
    if (!isUniform && !isStorage) throw new Error(`Kernel ${family}.${entry}: binding "${v.name}" is not a buffer; only buffers are supported.`);
    const t = v.type as unknown as { isArray?: boolean; count?: number; stride?: number; members?: { name: string; offset: number; type: { name: string } }[] };
    const runtimeArray = Boolean(t.isArray && !t.count);
    bindings.push({
      name: v.name,
      group: v.group,
      binding: v.binding,
      kind: isUniform ? 'uniform' : 'storage',
      access: v.access === 'read_write' || v.access === 'write' ? 'read_write' : 'read',
      fixedBytes: runtimeArray ? 0 : v.size,
      stride: runtimeArray ? (t.stride ?? 4) : 0,
    });
    if (isUniform && v.name === 'params' && t.members) {
      const members = new Map<string, UniformMember>();
      for (const m of t.members) members.set(m.name, { offset: m.offset, type: m.type.name });
      uniform = { bytes: Math.max(16, v.size), members };
    }
  }
  bindings.sort((a, b) => a.group - b.group || a.binding - b.binding);
  for (const b of bindings) {
    if (b.group !== 0) throw new Error(`Kernel ${family}.${entry}: binding "${b.name}" is in group ${b.group}; kernels use group 0 only.`);
  }
  return { bindings, uniform };
}

/** Compile an entry point, reporting WGSL errors with the kernel's name and the compiler's messages. */
export async function compileKernel(device: GPUDevice, family: string, entry: string, constants: Record<string, number> = {}): Promise<Kernel> {
  const name = `${family}.${entry}`;
  const { bindings, uniform } = reflectEntry(family, entry);
  const code = shaderSource(family);
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: family, code });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length) {
    await device.popErrorScope();
    const lines = errors
      .map((m) => {
        const o = shaderLineOrigin(family, m.lineNum);
        return `  ${o.file === family ? '' : `shaders/${o.file}.wgsl `}line ${o.line}:${m.linePos}: ${m.message}`;
      })
      .join('\n');
    throw new Error(`WGSL compile error in kernel ${name} (shaders/${family}.wgsl):\n${lines}`);
  }
  const layout = device.createBindGroupLayout({
    label: name,
    entries: bindings.map((b) => ({
      binding: b.binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b.kind === 'uniform' ? 'uniform' : b.access === 'read_write' ? 'storage' : 'read-only-storage' },
    })),
  });
  const pipeline = device.createComputePipeline({
    label: Object.keys(constants).length ? `${name} ${JSON.stringify(constants)}` : name,
    layout: device.createPipelineLayout({ label: name, bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: entry, constants },
  });
  const err = await device.popErrorScope();
  if (err) throw new Error(`Kernel ${name} failed to build a pipeline${Object.keys(constants).length ? ` with constants ${JSON.stringify(constants)}` : ''}: ${err.message}`);
  return new Kernel(name, pipeline, layout, bindings, uniform);
}
