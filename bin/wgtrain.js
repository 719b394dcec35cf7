#!/usr/bin/env node
// The `wgtrain` command. Installed from the package, it runs the compiled CLI in dist/. In a
// checkout of the repository (src/ beside bin/; the package does not ship src/) it runs the
// TypeScript sources through tsx, so a fresh clone needs no build step and never runs a build
// older than its sources.
import { existsSync } from 'node:fs';

const checkout = existsSync(new URL('../src/cli/main.ts', import.meta.url));
if (checkout) {
  let tsx;
  try {
    tsx = await import('tsx/esm/api');
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    process.stderr.write('error: this checkout runs the CLI from its TypeScript sources through tsx, which is not installed: run `npm ci` (or `bash scripts/setup.sh`).\n');
    process.exit(1);
  }
  tsx.register();
  await import('../src/cli/main.ts');
} else {
  const built = new URL('../dist/cli/main.js', import.meta.url);
  if (!existsSync(built)) {
    process.stderr.write(`error: this copy of webgpu-train has no compiled CLI (${built.pathname} is missing): reinstall the package.\n`);
    process.exit(1);
  }
  await import(built.href);
}
