/**
 * Seeded randomness for everything genaug draws (demo data, sampling): the
 * same seed gives the same sequence on every machine and thread count.
 */

/** A xorshift32 generator returning floats in (0, 1). Seed 0 is replaced by 1. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
}

/** A standard normal draw (Box-Muller) from a uniform generator. */
export function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(random())) * Math.cos(2 * Math.PI * random());
}

/** Mixes (seed, index, salt) into a 32-bit seed; the same inputs give the same seed everywhere. */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    let x = (p >>> 0) ^ ((p / 4294967296) >>> 0);
    for (let k = 0; k < 4; k++) {
      h ^= x & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
      x >>>= 8;
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h >>> 0 || 1;
}
