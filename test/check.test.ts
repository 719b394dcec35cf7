// The check before each commit (`npm run check`: tsc --noEmit, then biome ci for the formatter and
// the linter) fails on each kind of fault it is there for. Each tool runs with this project's own
// configuration (tsconfig.json, biome.jsonc) on a small file in a temporary folder: a clean file
// passes, and a file with one deliberate type error, formatting difference or lint error fails,
// naming the fault.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);

/** Run a tool; its exit status and both streams together, never a throw. */
function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

const CLEAN = `export function half(x: number): number {
  return x / 2;
}
`;

describe('npm run check fails on a type error, a formatting difference and a lint error', () => {
  let root = '';
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'wgtrain-check-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /**
   * A folder holding `text` as `file.ts`, with the project's settings. Only what a folder outside
   * the checkout needs differs: no git ignore file to read, and no ambient type packages (they
   * resolve from the checkout's node_modules, which this folder is not below).
   */
  function folder(name: string, text: string): string {
    const dir = join(root, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'biome.json'), JSON.stringify({ extends: [join(ROOT, 'biome.jsonc')], vcs: { enabled: false } }));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: join(ROOT, 'tsconfig.json'), compilerOptions: { types: [] }, include: ['file.ts'] }));
    writeFileSync(join(dir, 'file.ts'), text);
    return dir;
  }
  const tsc = (dir: string) => run(process.execPath, [bin('tsc'), '--noEmit', '-p', dir], dir);
  const biome = (dir: string) => run(bin('biome'), ['ci', '--colors=off', 'file.ts'], dir);

  it('passes a clean file', async () => {
    const dir = folder('clean', CLEAN);
    const t = await tsc(dir);
    expect(t.code, t.out).toBe(0);
    const b = await biome(dir);
    expect(b.code, b.out).toBe(0);
  });

  it('fails on a type error', async () => {
    const t = await tsc(folder('types', CLEAN.replace('return x / 2;', "return x / '2';")));
    expect(t.code).not.toBe(0);
    expect(t.out).toMatch(/file\.ts\(2,\d+\): error TS2363/);
  });

  it('fails on a formatting difference', async () => {
    const dir = folder('format', CLEAN.replace('  return x / 2;', '    return x/2;'));
    expect((await tsc(dir)).code).toBe(0); // well-typed: only the formatter objects
    const b = await biome(dir);
    expect(b.code).not.toBe(0);
    expect(b.out).toMatch(/file\.ts format/);
    expect(b.out).toContain('File content differs from formatting output');
  });

  it('fails on a lint error', async () => {
    const dir = folder('lint', CLEAN.replace('  return x / 2;', '  if (x == 0) return 0;\n  return x / 2;'));
    expect((await tsc(dir)).code).toBe(0);
    const b = await biome(dir);
    expect(b.code).not.toBe(0);
    expect(b.out).toContain('lint/suspicious/noDoubleEquals');
    expect(b.out).not.toContain('File content differs');
  });
}, 300_000);
