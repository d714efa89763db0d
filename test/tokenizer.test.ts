/**
 * The CLIP tokenizer against the reference token ids in
 * ../shared/fixtures/clip-tokenizer (made by a reference CLIP tokenizer), and
 * the padding/truncation/mask rules a CLIP text encoder expects, plus a tiny
 * hand-made vocabulary whose merges are worked out by hand.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ClipTokenizer } from '../ts/models/tokenizer.js';
import { expectCode, tempFolder } from './helpers.js';

const FIXTURE = join(import.meta.dirname, '..', '..', 'shared', 'fixtures', 'clip-tokenizer');
const tmp = tempFolder('genaug-tok-');

const refs = JSON.parse(readFileSync(join(FIXTURE, 'reference-tokenizations.json'), 'utf8')) as Array<{ text: string; ids: number[] }>;

async function clip(): Promise<ClipTokenizer> {
  return ClipTokenizer.fromFile(join(FIXTURE, 'tokenizer.json'), join(FIXTURE, 'tokenizer_config.json'));
}

describe('ClipTokenizer on the real CLIP vocabulary', () => {
  it('gives the reference ids for every fixture text', async () => {
    const t = await clip();
    expect(refs.length).toBeGreaterThanOrEqual(7);
    for (const r of refs) expect(t.encode(r.text), r.text).toEqual(r.ids);
  });

  it('splits words into BPE pieces ending in </w>, drops white space, lower-cases', async () => {
    const t = await clip();
    expect(t.tokens(t.encode('a photo of a cat'))).toEqual(['<|startoftext|>', 'a</w>', 'photo</w>', 'of</w>', 'a</w>', 'cat</w>', '<|endoftext|>']);
    expect(t.encode('  A   PHOTO\n\tOF a Cat ')).toEqual(t.encode('a photo of a cat'));
    // Digits are single pieces; punctuation runs stay together.
    expect(t.tokens(t.encode('123')).slice(1, -1)).toEqual(['1</w>', '2</w>', '3</w>']);
    expect(t.encode('')).toEqual([t.bosId, t.eosId]);
    expect([t.bosId, t.eosId, t.padId]).toEqual([49406, 49407, 49407]);
  });

  it('maps literal special tokens to their ids', async () => {
    const t = await clip();
    const cat = t.encode('a cat').slice(1, -1);
    expect(t.encode('a cat<|endoftext|>a cat')).toEqual([49406, ...cat, 49407, ...cat, 49407]);
  });

  it('pads to 77 with the pad token and a 0 mask, truncates keeping the end token', async () => {
    const t = await clip();
    const long = Array.from({ length: 100 }, (_, i) => `w${i % 10}`).join(' ');
    const full = t.encode(long);
    expect(full.length).toBeGreaterThan(77);
    const b = t.encodeBatch([refs[0]!.text, long]);
    expect([b.rows, b.length, b.ids.length]).toEqual([2, 77, 154]);
    expect(b.truncated).toEqual([1]);
    const r0 = Array.from(b.ids.subarray(0, 77));
    expect(r0.slice(0, refs[0]!.ids.length)).toEqual(refs[0]!.ids);
    expect(r0.slice(refs[0]!.ids.length).every((v) => v === 49407)).toBe(true);
    expect(Array.from(b.attentionMask.subarray(0, 77))).toEqual(Array.from({ length: 77 }, (_, i) => (i < refs[0]!.ids.length ? 1 : 0)));
    const r1 = Array.from(b.ids.subarray(77));
    expect(r1).toEqual([...full.slice(0, 76), 49407]);
    expect(Array.from(b.attentionMask.subarray(77)).every((v) => v === 1)).toBe(true);
    const longest = t.encodeBatch(['a cat', 'a photo of a cat'], { padding: 'longest' });
    expect(longest.length).toBe(7);
    expect(Array.from(longest.ids.subarray(0, 7))).toEqual([49406, 320, 2368, 49407, 49407, 49407, 49407]);
    expect(Array.from(longest.attentionMask.subarray(0, 7))).toEqual([1, 1, 1, 1, 0, 0, 0]);
  });

  it('uses the pad token of tokenizer_config.json', async () => {
    const json = JSON.parse(readFileSync(join(FIXTURE, 'tokenizer.json'), 'utf8'));
    const t = ClipTokenizer.fromJSON(json, { pad_token: '!' });
    expect(t.padId).toBe(0);
    expect(t.encodeBatch(['a'], { contextLength: 5 }).ids).toEqual(new Int32Array([49406, 320, 49407, 0, 0]));
  });
});

describe('ClipTokenizer BPE rules on a hand-made vocabulary', () => {
  // Merges in rank order: "l o" first, then "lo w</w>", then "e r</w>"; "lower" then needs "lo w" which is absent.
  const vocab: Record<string, number> = {};
  const base = ['l', 'o', 'w', 'e', 'r', 'w</w>', 'r</w>', 'lo', 'low</w>', 'er</w>', '<|startoftext|>', '<|endoftext|>'];
  base.forEach((tok, i) => (vocab[tok] = i));
  const json = {
    added_tokens: [
      { id: 10, content: '<|startoftext|>', special: true },
      { id: 11, content: '<|endoftext|>', special: true },
    ],
    model: { type: 'BPE', vocab, merges: ['l o', 'lo w</w>', 'e r</w>'], end_of_word_suffix: '</w>', unk_token: '<|endoftext|>' },
  };

  it('applies merges by rank, and accepts "a b" merge strings', () => {
    const t = ClipTokenizer.fromJSON(json);
    // low -> l o w</w> -> lo w</w> -> low</w>
    expect(t.encode('low')).toEqual([10, 8, 11]);
    // lower -> l o w e r</w> -> lo w e r</w> -> lo w er</w>
    expect(t.encode('lower')).toEqual([10, 7, 2, 9, 11]);
    // An unknown letter maps to the unk token.
    expect(t.encode('z')).toEqual([10, 11, 11]);
  });

  it('rejects files that are not BPE tokenizers, and names a missing file', async () => {
    expect(() => ClipTokenizer.fromJSON({ model: { type: 'WordPiece', vocab: {}, merges: [] } })).toThrow(/BPE/);
    expect(() => ClipTokenizer.fromJSON({ model: { type: 'BPE', vocab: { a: 0 }, merges: [] } })).toThrow(/startoftext/);
    const missing = join(tmp.dir(), 'nope', 'tokenizer.json');
    await expectCode(ClipTokenizer.fromFile(missing), 'E_MODEL', /nope\/tokenizer\.json/);
    const bad = tmp.fresh('bad.json');
    await writeFile(bad, '{not json');
    await expectCode(ClipTokenizer.fromFile(bad), 'E_FORMAT', /not valid JSON/);
  });
});
