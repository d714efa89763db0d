/** A small COCO dataset with hand-computable priors, shared by the plan tests. */
import { parseCoco, type CocoIndex } from '../ts/io/coco.js';

/**
 * 10 images of 200×100. person (id 1, synset person.n.01) in images 1–8 and a
 * crowd box in 10; dog (id 2, LVIS def) in 1 (twice) and 2; frisbee (id 3) in
 * 3; crane (id 4) in 11–12 (added images); teddy_bear (id 5) in none. Image 9
 * is empty.
 */
export function fixtureDataset(): Record<string, unknown> {
  const images = Array.from({ length: 12 }, (_, i) => ({ id: i + 1, file_name: `img${i + 1}.png`, width: 200, height: 100 }));
  let id = 0;
  const ann = (image_id: number, category_id: number, bbox: number[], iscrowd = 0) => ({ id: ++id, image_id, category_id, bbox, area: bbox[2]! * bbox[3]!, iscrowd });
  const annotations = [
    ann(1, 1, [20, 10, 40, 50]),
    ann(1, 2, [150, 50, 60, 60]),
    ann(1, 2, [100, 20, 10, 10]),
    ann(2, 1, [10, 10, 50, 50]),
    ann(2, 2, [100, 40, 40, 40]),
    ann(3, 1, [60, 20, 30, 60]),
    ann(3, 3, [10, 10, 20, 10]),
    ...[4, 5, 6, 7, 8].map((im) => ann(im, 1, [50, 10, 40, 80])),
    ann(10, 1, [0, 0, 200, 100], 1),
    ann(11, 4, [20, 20, 100, 60]),
    ann(12, 4, [40, 10, 80, 80]),
  ];
  return {
    images,
    annotations,
    categories: [
      { id: 1, name: 'person', synset: 'person.n.01' },
      { id: 2, name: 'dog', def: 'a domestic dog' },
      { id: 3, name: 'frisbee' },
      { id: 4, name: 'crane' },
      { id: 5, name: 'teddy_bear' },
    ],
  };
}

export function fixtureCoco(): CocoIndex {
  return parseCoco(fixtureDataset(), 'fixture.json');
}
