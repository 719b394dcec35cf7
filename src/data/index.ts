// The browser-safe face of data/: types, parsers, batching and augmentation. Node file access is
// in node.ts, imported separately so that bundles for the browser never pull in node:fs.
export * from './dataset.ts';
export * from './idx.ts';
export * from './cifar.ts';
export * from './image-file.ts';
export * from './image-folder.ts';
export * from './csv.ts';
export * from './csv-features.ts';
export * from './conform.ts';
export * from './mnist.ts';
export * from './augment.ts';
export * from './batcher.ts';
export * from './seed.ts';
