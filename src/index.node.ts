// The package's main entry as Node loads it (the "node" condition of its exports): the library of
// index.ts, with Dawn (the `webgpu` package) installed as the GPU, so that `Engine.create()` finds
// an adapter in Node as navigator.gpu does in a browser.
import './gpu/node-host.ts';

export * from './index.ts';
