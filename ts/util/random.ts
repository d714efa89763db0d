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
