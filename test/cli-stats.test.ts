// `train --stats-every N` through the CLI: a checkpoint whose first hidden layer is made dead (its
// biases set far negative before the ReLU) is resumed with statistics on. The warnings name the
// dead layer; the metrics JSON holds the series, checked against the final checkpoint's tensors;
// the picture's points carry the JSON's values.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from '../src/train/safetensors.ts';
import { Rng } from '../src/util/random.ts';
import { cli, expectClose } from './helpers.ts';

/** Three classes of 4-feature points around separate centres. */
function pointsCsv(n: number, seed: number): string {
  const r = new Rng(seed);
  const lines = ['a,b,c,d,kind'];
  for (let i = 0; i < n; i++) {
    const k = r.int(3);
    lines.push(`${[0, 1, 2, 3].map((j) => (2 * Math.cos(k + j) + r.normal()).toFixed(3)).join(',')},k${k}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The SVG's points as `panel|step|name` -> value, read from their accessible labels. */
function svgPoints(svg: string): Map<string, number> {
  const out = new Map<string, number>();
  const unescapeHtml = (t: string) =>
    t
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, '&');
  for (const [, escaped] of svg.matchAll(/aria-label="step: ([^"]*)"/g)) {
    const label = unescapeHtml(escaped);
    const m = /^(-?[\d.e+-]+); (.+?): (-?[\d.e+-]+); (?:parameter|weight|activation): (.+)$/.exec(label);
    if (m) out.set(`${m[2]}|${m[1]}|${m[4]}`, Number(m[3]));
  }
  return out;
}

describe('CLI: per-layer statistics', () => {
  it('a dead hidden layer is named in the warnings; the JSON series and the picture hold the recorded values', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtrain-stats-'));
    const csv = join(dir, 'points.csv');
    writeFileSync(csv, pointsCsv(300, 8)); // 240 train rows: 15 steps of 16 per epoch
    const ckpt = join(dir, 'dead.safetensors');
    // A constant learning rate: a cosine schedule planned for the first run's single epoch would stop at its end.
    const common = ['--dataset', csv, '--target', 'kind', '--hidden', '16', '--batch-size', '16', '--schedule', 'constant', '--save', ckpt, '--quiet'];
    const first = await cli(['train', ...common, '--epochs', '1']);
    expect(first.code, first.stderr).toBe(0);

    // Kill the hidden layer: every pre-activation of its ReLU is then far below zero.
    const file = decodeSafetensors(readFileSync(ckpt), ckpt);
    const bias = [...file.tensors.keys()].find((k) => k.endsWith('.bias'))!;
    const layer = bias.replace(/\.bias$/, '');
    expect(layer).toBe('layers.1');
    file.tensors.get(bias)!.data.fill(-30);
    writeFileSync(ckpt, encodeSafetensors([...file.tensors], file.metadata));

    const metrics = join(dir, 'dead.json');
    const run = await cli(['train', ...common, '--resume', ckpt, '--epochs', '3', '--stats-every', '4', '--metrics-out', metrics]);
    expect(run.code, run.stderr).toBe(0);
    // Steps 15..44 run; statistics at the multiples of 4 among them.
    expect(run.stderr).toContain("warning: step 16: layers.2: 100% of this ReLU's outputs (after layers.1) are zero: the layer is dead");
    expect(run.stderr).toContain('warning: step 16: layers.1.weight: the gradient is exactly zero: this parameter does not learn');
    expect(run.stderr).toMatch(/layer statistics: 8 snapshots, every 4 steps; 4 warnings/);
    expect(run.stderr).toContain(`(pictures: ${join(dir, 'dead.svg')}, ${join(dir, 'dead.confusion.svg')}, ${join(dir, 'dead.stats.svg')})`);

    const s = JSON.parse(readFileSync(metrics, 'utf8')).stats;
    expect(s.every).toBe(4);
    expect(s.steps).toEqual([16, 20, 24, 28, 32, 36, 40, 44]);
    expect(s.warnings.map((w: { name: string; kind: string }) => `${w.name} ${w.kind}`)).toEqual(['layers.1.weight zero-gradient', 'layers.1.bias zero-gradient', 'layers.3.weight zero-gradient', 'layers.2 dead-activation']);
    expect(s.activations).toEqual([{ name: 'layers.2', producer: 'layers.1', kind: 'relu', shape: [16], deadFraction: new Array(8).fill(1), mean: new Array(8).fill(0) }]);
    expect(s.params.map((p: { name: string }) => p.name)).toEqual(['layers.1.weight', 'layers.1.bias', 'layers.3.weight', 'layers.3.bias']);
    expect(s.params[0].grad.norm).toEqual(new Array(8).fill(0));
    expect(s.params[3].grad.norm.every((v: number) => v > 0)).toBe(true);

    // Step 44 is the run's last: its snapshot is of the weights the final checkpoint holds.
    const saved = decodeSafetensors(readFileSync(ckpt), ckpt).tensors;
    for (const p of s.params) {
      const w = saved.get(p.name)!.data;
      const last = (k: string) => p.value[k].at(-1);
      const mean = w.reduce((a, b) => a + b, 0) / w.length;
      const norm = Math.sqrt(w.reduce((a, b) => a + b * b, 0));
      expect([last('min'), last('max')], p.name).toEqual([Math.min(...w), Math.max(...w)]);
      // f32 sums on the GPU in another order than here: 1e-5 relative.
      expectClose([last('mean'), last('norm')], [mean, norm], { atol: 1e-6, rtol: 1e-5 }, `${p.name} at step 44`);
      const counts: number[] = p.value.histogram.counts.at(-1);
      expect(counts).toHaveLength(32);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(w.length);
      expect(p.value.histogram.lo.at(-1)).toBe(last('min'));
    }

    // Every point drawn carries a value of the JSON: weight and gradient norms, weights' update ratios, dead shares.
    const drawn = svgPoints(readFileSync(join(dir, 'dead.stats.svg'), 'utf8'));
    const want: [string, number, string, number][] = [];
    s.steps.forEach((step: number, i: number) => {
      for (const p of s.params) {
        want.push(['weight norm', step, p.name, p.value.norm[i]], ['gradient norm', step, p.name, p.grad.norm[i]]);
        if (p.decay) want.push(['update ratio ||Δw||/||w||', step, p.name, p.updateRatio[i]]);
      }
      want.push(['dead fraction (outputs <= 0)', step, 'layers.2 (ReLU after layers.1)', 1]);
    });
    expect(drawn.size).toBe(want.length);
    for (const [panel, step, name, value] of want) {
      const got = drawn.get(`${panel}|${step}|${name}`);
      expect(got, `${panel} at step ${step} for ${name}`).toBeDefined();
      expectClose([got!], [value], { atol: 1e-12, rtol: 1e-9 }, `${panel} at step ${step} for ${name}`); // labels keep 12 digits
    }
  });
});
