// The CLI on an image folder this test writes (three classes, PNG and JPEG, mixed sizes and modes,
// a corrupt and a truncated file, a text file): train names what it skipped and learns the
// classes; evaluate and predict read the folder at the checkpoint's size; bad folders and options
// are refused, naming the folder or option and the reason.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPython } from './export-models.ts';
import { cli } from './helpers.ts';
import { writeImageFolder } from './image-fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'wgtrain-images-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('CLI: image folders', () => {
  it('trains on a folder of PNG and JPEG files, naming the files it skips; evaluates and predicts at the checkpoint size', async () => {
    const photos = join(root, 'photos');
    writeImageFolder(photos, {
      classes: { red: { rgb: [220, 40, 40] }, blue: { rgb: [40, 40, 220] }, grey: { rgb: [128, 128, 128], grey: true } },
      perClass: 12,
      badFiles: true,
    });
    const ckpt = join(root, 'photos.safetensors');
    const train = await cli(['train', '--dataset', photos, '--image-size', '12', '--val-split', '0.25', '--model', 'mlp', '--hidden', '32', '--epochs', '8', '--batch-size', '9', '--lr', '0.01', '--save', ckpt, '--quiet']);
    expect(train.code, train.stderr).toBe(0);
    expect(train.stderr).toMatch(/3 classes, 36 images read as 12x12 RGB/);
    expect(train.stderr).toMatch(/blue: 9 train \+ 3 validation; grey: 9 train \+ 3 validation; red: 9 train \+ 3 validation \(2 skipped\)/);
    expect(train.stderr).toMatch(/2 unreadable image files skipped:\n\s+red\/cut\.jpg: a truncated JPEG.*\n\s+red\/damaged\.png: the PNG decoder failed/);
    expect(train.stderr).toMatch(/red\/notes\.txt: not a PNG or JPEG file name/);
    expect(train.stderr).toMatch(/README\.md: not in a class folder/);
    expect(train.stderr).toMatch(/note: mixed sizes: 5 different sizes/);
    expect(train.stderr).toMatch(/note: mixed modes: 12 grey images/);
    expect(train.stderr).toMatch(/dataset photos: 27 train \/ 9 test samples of \[3, 12, 12\], classification \(3 classes\)/);
    // Three colours are easy: the 9 validation images are learned.
    const acc = Number(/test accuracy ([\d.]+)%/.exec(train.stdout)?.[1]);
    expect(acc, train.stdout).toBeGreaterThanOrEqual(88);

    // No --image-size: the checkpoint's [3, 12, 12] is used, and the same split (seed 0, 25% asked again).
    const ev = await cli(['evaluate', '--checkpoint', ckpt, '--dataset', photos, '--val-split', '0.25']);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(new RegExp(`photos test: loss [\\d.]+, accuracy ${acc.toFixed(2)}% \\(9 samples\\)`));
    const pr = await cli(['predict', '--checkpoint', ckpt, '--dataset', photos, '--count', '3', '--json']);
    expect(pr.code, pr.stderr).toBe(0);
    const lines = pr.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { label: string });
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(['blue', 'grey', 'red']).toContain(l.label);

    // Exported for PyTorch: the folder goes along as IDX files, decoded and split as in training, so
    // train.py evaluates the checkpoint on the same 9 validation images to the same accuracy.
    const pt = join(root, 'photos-pt');
    const ex = await cli(['export', '--checkpoint', ckpt, '--format', 'pytorch', '--out', pt]);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toContain(`data/ (the image folder ${photos} as IDX files, decoded and split as in training)`);
    const torch = await runPython([join(pt, 'train.py'), '--eval-only']);
    expect(torch.stdout).toMatch(new RegExp(`test accuracy ${acc.toFixed(2)}% \\(9 samples\\)`));
  }, 300_000);

  it('refuses a folder with one class, an empty class, too many images, and image options for other data', async () => {
    const one = join(root, 'one');
    writeImageFolder(one, { classes: { cats: { rgb: [1, 2, 3] } }, perClass: 2 });
    const r1 = await cli(['train', '--dataset', one, '--epochs', '1']);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(new RegExp(`error: ${one}: one class folder \\("cats"\\): a classifier needs two or more classes`));

    const empty = join(root, 'empty');
    writeImageFolder(empty, { classes: { cats: { rgb: [1, 2, 3] }, dogs: { rgb: [3, 2, 1] } }, perClass: 2 });
    mkdirSync(join(empty, 'birds'));
    const r2 = await cli(['train', '--dataset', empty, '--epochs', '1']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/a class folder holds no PNG or JPEG images: birds\/ \(nothing\)/);

    // 4 images at 3x20000x20000 are 4.5 GiB decoded: refused before any file is decoded.
    const two = join(root, 'two');
    writeImageFolder(two, { classes: { cats: { rgb: [1, 2, 3] }, dogs: { rgb: [3, 2, 1] } }, perClass: 2 });
    const r3 = await cli(['train', '--dataset', two, '--image-size', '20000', '--epochs', '1']);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/4 images at 3x20000x20000 need 4\.5 GiB decoded, over the limit of 2 GiB: 1 image fit \(the first one past it is cats\/cats-01\.jpg\)/);

    const r4 = await cli(['train', '--dataset', 'mnist', '--image-size', '16', '--epochs', '1']);
    expect(r4.code).toBe(2);
    expect(r4.stderr).toMatch(/--image-size applies to image folders; "mnist" is not one/);
    const r5 = await cli(['train', '--dataset', one, '--val-split', '1', '--epochs', '1']);
    expect(r5.code).toBe(2);
    expect(r5.stderr).toMatch(/--val-split must be in \(0, 1\)/);
  }, 120_000);
});
