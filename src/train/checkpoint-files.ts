// A run's checkpoint files (Node): the newest always at the path the user gave (what --resume
// takes), written atomically; with keep K > 1 the K - 1 before it stay beside it, named by step
// (`ck-step1200.safetensors`), and older ones are removed. The one being replaced is kept by a hard
// link (no copy, and never a moment without a file at the path), or by an atomic copy on file
// systems without links.
import { link, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readFileChecked, tempPathFor, writeFileAtomic } from './atomic.ts';

export class CheckpointFiles {
  /** Step of the checkpoint now at `path`, when this run wrote it or resumed from it; null otherwise. */
  private current: number | null;

  constructor(
    readonly path: string,
    /** How many checkpoints to keep, the newest (at `path`) included. */
    readonly keep = 1,
    currentStep: number | null = null,
  ) {
    if (!(Number.isInteger(keep) && keep >= 1)) throw new Error(`CheckpointFiles: keep must be a positive integer, got ${keep}.`);
    this.current = currentStep;
  }

  /** `dir/ck-step1200.safetensors` for `dir/ck.safetensors`: where the checkpoint of a step is kept. */
  keptPath(step: number): string {
    const { stem, ext } = this.parts();
    return join(dirname(this.path), `${stem}-step${step}${ext}`);
  }

  private parts(): { stem: string; ext: string } {
    const name = basename(this.path);
    const ext = /\.safetensors$/i.exec(name)?.[0] ?? '';
    return { stem: name.slice(0, name.length - ext.length), ext };
  }

  /** Write the checkpoint of `step` at `path` (keeping the one it replaces when keep > 1), then prune. */
  async write(bytes: Uint8Array, step: number): Promise<void> {
    if (this.keep > 1 && this.current !== null && this.current !== step) await this.keepCurrent(this.current);
    await writeFileAtomic(this.path, bytes);
    this.current = step;
    await this.prune();
  }

  private async keepCurrent(step: number): Promise<void> {
    const kept = this.keptPath(step);
    const tmp = tempPathFor(kept);
    try {
      await link(this.path, tmp);
      await rename(tmp, kept);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // nothing to keep
      await writeFileAtomic(kept, await readFileChecked(this.path));
    }
  }

  /** The kept checkpoints beside `path` (not `path` itself), oldest first by time written. */
  async kept(): Promise<{ step: number; path: string; mtimeMs: number }[]> {
    const { stem, ext } = this.parts();
    const dir = dirname(this.path);
    const pattern = new RegExp(`^${escapeRegExp(stem)}-step(\\d+)${escapeRegExp(ext)}$`);
    const out: { step: number; path: string; mtimeMs: number }[] = [];
    for (const name of await readdir(dir)) {
      const m = pattern.exec(name);
      if (!m) continue;
      const path = join(dir, name);
      const s = await stat(path).catch(() => null);
      if (s?.isFile()) out.push({ step: Number(m[1]), path, mtimeMs: s.mtimeMs });
    }
    // By time written, not by step: after resuming from an older checkpoint, the new ones are the ones to keep.
    return out.sort((a, b) => a.mtimeMs - b.mtimeMs || a.step - b.step);
  }

  private async prune(): Promise<void> {
    const kept = await this.kept();
    for (const k of kept.slice(0, Math.max(0, kept.length - (this.keep - 1)))) await unlink(k.path).catch(() => {});
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
