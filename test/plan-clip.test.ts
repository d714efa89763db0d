import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { buildProgram } from '../ts/cli/main.js';
import { ClipModel } from '../ts/models/clip.js';
import { PlanJobSchema } from '../ts/plan/job.js';
import { readImage } from '../ts/io/images.js';
import { meaningText } from '../ts/plan/ambiguity.js';
import { makeImage, tinyClipWeights, writeClipFolder } from './clip-helpers.js';
import { fixtureDataset } from './plan-fixture.js';
import { tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-plan-clip-');

describe('genaug plan --strategy ambiguity --clip', () => {
  it('scores every candidate by the mean image-text cosine over the class images and keeps the best', async () => {
    const clipDir = await writeClipFolder(tmp.fresh('clip'), 'split', tinyClipWeights());
    const images = tmp.fresh('images');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(images);
    for (const [i, seed] of [[11, 3], [12, 4]] as const) {
      const im = makeImage(24, 20, seed);
      await sharp(Buffer.from(im.data), { raw: { width: im.width, height: im.height, channels: 3 } }).png().toFile(join(images, `img${i}.png`));
    }
    const coco = tmp.fresh('train.json');
    await writeFile(coco, JSON.stringify(fixtureDataset()));
    const out = tmp.fresh('plan.jsonl');
    const printed: string[] = [];
    await buildProgram({ print: (l) => printed.push(l) }).parseAsync(['node', 'genaug', 'plan', '--coco', coco, '--out', out, '--strategy', 'ambiguity', '--classes', 'crane', '--clip', clipDir, '--images', images]);
    const job = PlanJobSchema.parse(JSON.parse((await readFile(out, 'utf8')).trim()));
    expect(job.provenance.meaning_method).toBe('clip');
    const cands = job.provenance.candidates as Array<{ text: string; score: number }>;
    expect(cands).toHaveLength(5);
    // Oracle: the same model, the same decoded images, a plain mean of dot products per candidate.
    const model = await ClipModel.open(clipDir);
    const rgb = [await readImage(join(images, 'img11.png'), { maxSide: 448 }), await readImage(join(images, 'img12.png'), { maxSide: 448 })];
    const v = await model.embedImages(rgb);
    const t = await model.embedTexts(cands.map((c) => meaningText('crane', c.text)));
    const d = model.dim;
    const want = cands.map((_, k) => {
      let s = 0;
      for (let i = 0; i < 2; i++) for (let j = 0; j < d; j++) s += v[i * d + j]! * t[k * d + j]!;
      return s / 2;
    });
    await model.close();
    cands.forEach((c, k) => expect(c.score).toBeCloseTo(want[k]!, 5));
    const best = want.indexOf(Math.max(...want));
    expect(job.prompt).toBe(`a photo of a single crane, ${cands[best]!.text}`);
  });
});
