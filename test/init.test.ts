// Initialisers (statistics and seeding) and learning-rate schedules.
import { describe, expect, it } from 'vitest';
import { initialize } from '../src/nn/init.ts';
import { cosineWithWarmup, stepDecay } from '../src/optim/schedule.ts';
import { Rng } from '../src/util/random.ts';

function stats(a: Float32Array) {
  let m = 0;
  for (const v of a) m += v;
  m /= a.length;
  let s = 0;
  let max = 0;
  for (const v of a) {
    s += (v - m) ** 2;
    max = Math.max(max, Math.abs(v));
  }
  return { mean: m, std: Math.sqrt(s / a.length), max };
}

describe('initialisers', () => {
  const fanIn = 300;
  const fanOut = 100;
  const n = 200_000;
  // Sample statistics of 200k draws: the std of the sample std is about std/sqrt(2n) ~ 0.16%,
  // so 2% relative tolerance is generous yet catches a wrong formula (e.g. fanIn vs fanIn+fanOut).
  const cases: [Parameters<typeof initialize>[0], number, number | null][] = [
    ['glorot_uniform', Math.sqrt(2 / (fanIn + fanOut)), Math.sqrt(6 / (fanIn + fanOut))],
    ['glorot_normal', Math.sqrt(2 / (fanIn + fanOut)), null],
    ['he_uniform', Math.sqrt(2 / fanIn), Math.sqrt(6 / fanIn)],
    ['he_normal', Math.sqrt(2 / fanIn), null],
  ];
  for (const [kind, wantStd, bound] of cases) {
    it(`${kind}: mean 0, std ${wantStd.toFixed(4)}${bound ? `, within ±${bound.toFixed(4)}` : ''}`, () => {
      const s = stats(initialize(kind, n, fanIn, fanOut, new Rng(3)));
      expect(Math.abs(s.mean)).toBeLessThan(0.01 * wantStd * 5);
      expect(Math.abs(s.std / wantStd - 1)).toBeLessThan(0.02);
      if (bound) expect(s.max).toBeLessThanOrEqual(bound);
      else expect(s.max).toBeGreaterThan(3 * wantStd); // a normal has tails; a uniform would not
    });
  }
  it('zeros and ones', () => {
    expect(Array.from(initialize('zeros', 5, 1, 1, new Rng(1)))).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(initialize('ones', 3, 1, 1, new Rng(1)))).toEqual([1, 1, 1]);
  });
  it('same seed, same weights; other seed, other weights', () => {
    const a = initialize('he_normal', 100, 10, 10, new Rng(42));
    const b = initialize('he_normal', 100, 10, 10, new Rng(42));
    const c = initialize('he_normal', 100, 10, 10, new Rng(43));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});

describe('learning-rate schedules', () => {
  it('step decay multiplies by gamma every N steps', () => {
    const s = stepDecay(10, 0.5);
    expect(s(0, 1)).toBe(1);
    expect(s(9, 1)).toBe(1);
    expect(s(10, 1)).toBe(0.5);
    expect(s(25, 1)).toBe(0.25);
  });
  it('cosine with warm-up rises linearly, peaks at the base rate, ends at minLr', () => {
    const s = cosineWithWarmup(10, 110, 0.001);
    expect(s(0, 0.1)).toBeCloseTo(0.01, 12);
    expect(s(9, 0.1)).toBeCloseTo(0.1, 12);
    expect(s(10, 0.1)).toBeCloseTo(0.1, 12);
    expect(s(60, 0.1)).toBeCloseTo(0.001 + 0.5 * 0.099, 12);
    expect(s(110, 0.1)).toBeCloseTo(0.001, 12);
    expect(s(500, 0.1)).toBeCloseTo(0.001, 12);
  });
});
