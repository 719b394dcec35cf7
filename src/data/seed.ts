// Derived seeds: one number from a user seed and a position (epoch, sample index), so that any
// epoch's order or any sample's augmentation can be recreated on its own, e.g. after a resume,
// without replaying the random stream that came before it.

/** A well-mixed 32-bit seed from any number of integer parts (murmur3's finaliser after each part). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    // Parts beyond 32 bits (large sample counts never get there, but seeds might) fold in too.
    const hi = Math.floor(p / 4294967296);
    if (hi !== 0) h = Math.imul(h ^ hi, 0x27d4eb2f) ^ (h >>> 15);
  }
  return h >>> 0;
}
