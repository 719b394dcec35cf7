// What the engine needs from Node that a browser bundle must not import: an adapter from Dawn (the
// `webgpu` package) and files for the tuning cache. The library imports no Node module itself;
// node-host.ts provides these and installs them when it is imported, which the package's Node
// build of its main entry does (src/index.node.ts), as do the CLI, the benchmarks and the tests.

/** The Node services the engine calls; absent in a browser. */
export interface NodeHost {
  /** A WebGPU adapter found through Dawn; throws, saying how to get one, when there is none. */
  requestAdapter(opts: { powerPreference?: GPUPowerPreference }): Promise<GPUAdapter>;
  /** Where caches go by default: node_modules/.cache/webgpu-train/ of the package. */
  cacheDir: string;
  /** The text of a file, or null when it is missing or cannot be read. */
  readText(path: string): string | null;
  /** Replace a file's text atomically (a temporary file renamed over it), making its directory. */
  writeText(path: string, text: string): void;
}

let host: NodeHost | null = null;

/** Install the Node services (node-host.ts calls this when it is imported). */
export function setNodeHost(h: NodeHost): void {
  host = h;
}

/** The Node services; throws, saying what to import, when none were installed. */
export function nodeHost(): NodeHost {
  if (!host) {
    throw new Error(
      'This Node process has no WebGPU host: in Node the engine finds a GPU through Dawn (the `webgpu` package), ' +
        "which the Node build of 'webgpu-train' installs. Import the package by its name from Node (Node then loads " +
        "that build), not a browser bundle of it; from the sources, import 'src/gpu/node-host.ts' once.",
    );
  }
  return host;
}
