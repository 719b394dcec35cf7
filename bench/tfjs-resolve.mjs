// A Node module-resolution hook for TF.js's ES-module files. tfjs-core's package entry point for
// Node is a CommonJS bundle without gradients; its gradients ship only as ES modules whose
// imports omit the `.js` extension (and `./gradients` names both a file and a folder), which
// Node's resolver refuses. This hook tries `<specifier>.js` first for relative imports made from
// inside @tensorflow packages, so that `register_all_gradients.js` can be imported in Node.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Node `resolve` hook: relative, extensionless imports inside @tensorflow/* resolve to `.js` files. */
export async function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith('.') && context.parentURL?.includes('/node_modules/@tensorflow/') && !/\.[cm]?js$/.test(specifier)) {
    const url = new URL(`${specifier}.js`, context.parentURL);
    if (existsSync(fileURLToPath(url))) return nextResolve(url.href, context);
  }
  return nextResolve(specifier, context);
}
