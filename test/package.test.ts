// The package as its users meet it: `npm pack` (which builds dist/ first, through prepack), the
// tarball installed into an empty project outside this repository, and the package used from
// there: the built main entry checked for Node modules, the README's examples run as written (the
// Node one from a plain ESM script, the browser one in a page Vite builds from the project and
// headless Chromium opens, and in Node too), `npx wgtrain`, and the declarations type-checked.
//
// Installing without the network: before `npm install --offline <tarball>`, the project's
// node_modules gets the package's production dependencies, each hard-linked (copied where links
// fail) from this checkout's node_modules, with their command links; the set is the entries of
// package-lock.json not marked dev. npm then finds every dependency of the tarball satisfied and
// fetches nothing (it runs with an empty cache of its own, so it could not). A module the package
// imports but does not declare is not in that set, and the project is outside this repository,
// so nothing resolves through the repository's node_modules: it fails here as it would for a user.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'puppeteer-core';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, serve } from './browser.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string> };

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment for commands run in the project: this process's, less npm's variables. Under
 * `npm test` they describe this checkout (npm_config_local_prefix and the like), and the project's
 * npm must not take them for its own.
 */
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

/** Run a command; its exit status and both streams, never a throw (a timeout kills it: status null). */
function exec(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Ran> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd, env: cleanEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** Throw with the command's output unless it exited 0. */
function ok(r: Ran, what: string): Ran {
  if (r.code !== 0) throw new Error(`${what} failed (exit status ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The first ```js block after the heading `heading` of README.md: the example as users read it. */
function readmeExample(heading: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README.md has no heading "${heading}"`);
  const block = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block) throw new Error(`README.md has no \`\`\`js block after "${heading}"`);
  return block[1];
}

/** Hard-link the files of `src` into `dst` (copies across file systems); `skip` names entries of src itself to leave out. */
function linkTree(src: string, dst: string, skip: string[] = []): void {
  mkdirSync(dst, { recursive: true });
  for (const ent of readdirSync(src, { withFileTypes: true })) {
    if (skip.includes(ent.name)) continue;
    const from = join(src, ent.name);
    const to = join(dst, ent.name);
    if (ent.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else if (ent.isDirectory()) linkTree(from, to);
    else {
      try {
        linkSync(from, to);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        copyFileSync(from, to);
      }
    }
  }
}

/** Give `project` the package's production dependencies from this checkout (see the header); returns how many. */
function provideDependencies(project: string): number {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  let n = 0;
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (!key.startsWith('node_modules/') || entry.dev) continue;
    const src = join(ROOT, key);
    if (!existsSync(src)) continue; // an optional dependency for another platform
    linkTree(src, join(project, key), ['node_modules']); // nested node_modules are entries of their own
    n++;
  }
  // The command links of those packages: without them npm would reinstall the packages that have commands.
  const bin = join(ROOT, 'node_modules', '.bin');
  mkdirSync(join(project, 'node_modules', '.bin'), { recursive: true });
  for (const name of readdirSync(bin)) {
    const target = readlinkSync(join(bin, name));
    if (existsSync(resolve(project, 'node_modules', '.bin', target))) symlinkSync(target, join(project, 'node_modules', '.bin', name));
  }
  return n;
}

/**
 * The module specifiers a compiled file imports: static imports and re-exports, dynamic imports
 * and require calls. A dynamic import or require of a computed name is returned as "<computed>",
 * since what it loads cannot be checked.
 */
function importsOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) {
      const arg = node.arguments[0];
      out.push(arg && ts.isStringLiteralLike(arg) ? arg.text : '<computed>');
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** Walk the import graph of the package's own files from `entry`: the files reached and the outside modules each imports. */
function importGraph(entry: string): { files: string[]; outside: Map<string, string[]> } {
  const files: string[] = [];
  const outside = new Map<string, string[]>();
  const stack = [entry];
  while (stack.length) {
    const file = stack.pop()!;
    if (files.includes(file)) continue;
    files.push(file);
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) stack.push(resolve(dirname(file), spec));
      else outside.set(spec, [...(outside.get(spec) ?? []), file]);
    }
  }
  return { files, outside };
}

const isNodeBuiltin = (spec: string) => spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]);

describe('the npm package, installed from its tarball into an empty project', () => {
  let work = '';
  let project = '';
  let tarball = '';
  let installed = '';

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'wgtrain-package-'));
    const t0 = Date.now();
    ok(await exec('npm', ['pack', '--pack-destination', work, '--loglevel=error'], ROOT, 240_000), 'npm pack');
    const tgz = readdirSync(work).filter((f) => f.endsWith('.tgz'));
    expect(tgz).toEqual([`${pkg.name}-${pkg.version}.tgz`]);
    tarball = join(work, tgz[0]);
    const t1 = Date.now();

    project = join(work, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2));
    const deps = provideDependencies(project);
    ok(await exec('npm', ['install', '--offline', '--cache', join(work, 'npm-cache'), '--no-audit', '--no-fund', '--loglevel=error', tarball], project, 120_000), 'npm install of the tarball');
    installed = join(project, 'node_modules', pkg.name);
    console.info(`package: npm pack (with the build) ${((t1 - t0) / 1000).toFixed(1)} s, install ${((Date.now() - t1) / 1000).toFixed(1)} s (${deps} dependencies provided)`);
  }, 400_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('holds the build, the command and the docs, and no tests or sources', () => {
    const r = readdirSync(installed, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    const files = r.map((e) => relative(installed, join(e.parentPath, e.name)));
    for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'bin/wgtrain.js', 'dist/index.js', 'dist/index.d.ts', 'dist/index.node.js', 'dist/node.js', 'dist/node.d.ts', 'dist/cli/main.js', 'dist/export/python/train.py']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /^(test|src|bench|demo|shaders|scripts)\//.test(f) || /\.test\.|(?<!\.d)\.ts$/.test(f))).toEqual([]);
    // Every module has its declarations and a source map.
    for (const js of files.filter((f) => f.endsWith('.js') && f.startsWith('dist/'))) {
      if (js === 'dist/gpu/shader-files.js') continue; // generated from shaders/: no TypeScript source to map to
      expect(files, js).toContain(js.replace(/\.js$/, '.d.ts'));
      expect(files, js).toContain(`${js}.map`);
    }
  });

  it("the main entry's import graph reaches no Node module: what a browser bundle gets", () => {
    const exportsMap = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).exports;
    const browserEntry = join(installed, exportsMap['.'].default.default);
    const { files, outside } = importGraph(browserEntry);
    const node = [...outside].filter(([spec]) => isNodeBuiltin(spec) || spec === '<computed>' || spec === 'webgpu');
    expect(node.map(([spec, from]) => `${spec} (imported by ${from.map((f) => relative(installed, f)).join(', ')})`)).toEqual([]);
    // The packages it does import must work in a browser: a new one belongs on this list only once
    // it is known to (the page test below bundles them all).
    expect([...outside.keys()].sort()).toEqual(['fflate', 'onnx-proto', 'wgsl_reflect/wgsl_reflect.module.js']);
    expect(files.length).toBeGreaterThan(50);
    // The Node entries do reach Dawn and the file system: the graph walk sees what it should.
    expect([...importGraph(join(installed, exportsMap['.'].node.default)).outside.keys()]).toContain('node:fs');
  });

  it('carries the text of every WGSL file of shaders/', async () => {
    const { loadShaderFiles } = (await import(join(installed, 'dist', 'gpu', 'shader-files.js'))) as { loadShaderFiles(): Promise<Record<string, string>> };
    const built = await loadShaderFiles();
    const dir = join(ROOT, 'shaders');
    const expected = Object.fromEntries(
      readdirSync(dir)
        .filter((f) => f.endsWith('.wgsl'))
        .map((f) => [f.slice(0, -5), readFileSync(join(dir, f), 'utf8')]),
    );
    expect(Object.keys(built).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, text] of Object.entries(expected)) expect(built[name], name).toBe(text);
  });

  it("runs the README's Node example as written: the digits to at least 90% test accuracy", async () => {
    writeFileSync(join(project, 'readme-node.mjs'), readmeExample('### In Node'));
    const t0 = Date.now();
    const r = ok(await exec(process.execPath, ['readme-node.mjs'], project, 300_000), "the README's Node example");
    const result = /\{ loss: ([\d.e-]+), accuracy: ([\d.]+), n: (\d+) \}/.exec(r.stdout);
    expect(result, r.stdout).not.toBeNull();
    console.info(`package: README Node example in ${((Date.now() - t0) / 1000).toFixed(1)} s: test loss ${Number(result![1]).toFixed(3)}, accuracy ${result![2]} on ${result![3]} digits`);
    expect(Number(result![3])).toBeGreaterThan(1000);
    expect(Number(result![2])).toBeGreaterThanOrEqual(0.9);
    expect(r.stderr).toMatch(/WebGPU adapter: /); // the engine says which adapter it used
  }, 300_000);

  it("runs the README's browser example in Node unchanged (the main entry's Node build)", async () => {
    writeFileSync(join(project, 'readme-browser.mjs'), readmeExample('### In a browser'));
    const r = ok(await exec(process.execPath, ['readme-browser.mjs'], project, 180_000), "the README's browser example in Node");
    const accuracy = /^accuracy ([\d.]+)$/m.exec(r.stdout);
    expect(accuracy, r.stdout).not.toBeNull();
    expect(Number(accuracy![1])).toBeGreaterThanOrEqual(0.9);
  }, 180_000);

  it('runs `npx wgtrain` from the compiled CLI: help, and a short training run that saves a checkpoint', async () => {
    const help = ok(await exec('npx', ['--offline', 'wgtrain', '--help'], project, 60_000), 'npx wgtrain --help');
    expect(help.stdout).toMatch(/Usage: wgtrain/);
    expect(help.stdout).toMatch(/train/);
    const trained = ok(await exec('npx', ['--offline', 'wgtrain', 'train', '--dataset', 'mnist', '--epochs', '1', '--hidden', '32', '--batch-size', '128', '--save', 'ck.safetensors'], project, 240_000), 'npx wgtrain train');
    expect(`${trained.stdout}${trained.stderr}`).toMatch(/accuracy/i);
    expect(existsSync(join(project, 'ck.safetensors'))).toBe(true);
  }, 300_000);

  it('declares its types: both README examples type-check against the package with strict settings and no skipLibCheck', async () => {
    const dir = join(project, 'typed');
    mkdirSync(dir);
    writeFileSync(join(dir, 'readme-node.ts'), readmeExample('### In Node'));
    writeFileSync(join(dir, 'readme-browser.ts'), readmeExample('### In a browser'));
    // Names a user of the README reaches for, from both entries.
    writeFileSync(
      join(dir, 'names.ts'),
      `import { attention, scaledSoftmax, slice, broadcast, LayerNorm, Attention, TransformerBlock, VisionTransformer, ResNet, BasicBlock, Model, Module, Trainer, exportOnnx, type Dataset, type Value } from 'webgpu-train';
import { loadDataset, CheckpointFiles, exportPytorch, writeFileAtomic } from 'webgpu-train/node';
export const used = [attention, scaledSoftmax, slice, broadcast, LayerNorm, Attention, TransformerBlock, VisionTransformer, ResNet, BasicBlock, Model, Module, Trainer, exportOnnx, loadDataset, CheckpointFiles, exportPytorch, writeFileAtomic];
export type Used = [Dataset, Value];
`,
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: [], strict: true, noEmit: true, skipLibCheck: false },
        include: ['*.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    ok(await exec(process.execPath, [tsc, '-p', 'tsconfig.json'], dir, 120_000), 'tsc on the examples');
  }, 120_000);

  describe('in a page that Vite builds from the project (headless Chromium, WebGPU)', () => {
    let browser: Browser | null = null;
    let server: Server | null = null;

    afterAll(async () => {
      await browser?.close();
      await new Promise((r) => (server ? server.close(r) : r(undefined)));
    });

    it("runs the README's browser example as written and trains", async () => {
      const web = join(project, 'web');
      mkdirSync(web);
      writeFileSync(join(web, 'main.js'), readmeExample('### In a browser'));
      writeFileSync(join(web, 'index.html'), '<!doctype html>\n<html><head><meta charset="utf-8"><title>webgpu-train</title></head>\n<body><script type="module" src="./main.js"></script></body></html>\n');
      const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
      ok(await exec(process.execPath, [vite, 'build', 'web', '--logLevel', 'warn'], project, 120_000), 'vite build of the page');
      const dist = join(web, 'dist');
      expect(existsSync(join(dist, 'index.html'))).toBe(true);
      let url: string;
      ({ server, url } = await serve(dist));
      browser = await launchChromium('The package test', join(work, 'chromium'));
      const page = await browser.newPage();
      const lines: string[] = [];
      const errors: string[] = [];
      page.on('console', (m) => lines.push(m.text()));
      page.on('pageerror', (e) => errors.push((e as Error).message));
      const t0 = Date.now();
      await page.goto(url, { waitUntil: 'load' });
      const until = Date.now() + 120_000;
      while (!lines.some((l) => l.startsWith('accuracy ')) && errors.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
      expect(errors, `page log:\n${lines.join('\n')}`).toEqual([]);
      const losses = lines
        .map((l) => /^step \d+: loss ([\d.]+)$/.exec(l))
        .filter((m) => m !== null)
        .map((m) => Number(m[1]));
      const accuracy = lines.map((l) => /^accuracy ([\d.]+)$/.exec(l)).find((m) => m !== null);
      expect(accuracy, `page log:\n${lines.join('\n')}`).toBeDefined();
      console.info(`package: README browser example in Chromium, ${((Date.now() - t0) / 1000).toFixed(1)} s: loss ${losses[0]} -> ${losses.at(-1)}, accuracy ${accuracy![1]}`);
      expect(losses.length).toBe(6);
      expect(losses.at(-1)!).toBeLessThan(0.5 * losses[0]);
      expect(Number(accuracy![1])).toBeGreaterThanOrEqual(0.9);
      await page.close();
    }, 240_000);
  });
});
