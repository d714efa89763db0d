/**
 * The stand-in answers of the classification methods' demos (ALIA, caption prompts, "Diversify, Don't
 * Fine-Tune"): what a VLM and an LLM would say about the procedural world, worked out from the request itself
 * (the image's pixels, the captions in a summary request, the class name) and the seed, so the same seed gives
 * the same answers. Each answerer recognises its request by the instruction text genaug's own clients send
 * (plan/captions.ts, plan/domains.ts, plan/ambiguity.ts, plan/prompts.ts) and returns the JSON they ask for.
 */
import sharp from 'sharp';

import { SHAPE_CLASSES } from '../generate/procedural-world.js';
import { itemSeed } from '../plan/core.js';
import { seededRandom } from '../util/random.js';
import { messageImages, messageText, type Answerer, type ChatRequest } from './standin.js';

/** The colour word of each procedural class (SHAPE_CLASSES order), as the tiny CLIP's text tower knows them. */
export const COLOUR_WORDS: Record<string, string> = { disk: 'magenta', square: 'blue', triangle: 'green', ring: 'orange', cross: 'purple', star: 'yellow' };

const LIGHT = ['under soft daylight', 'in a grainy photo', 'at low contrast', 'under warm indoor light', 'seen from above', 'in close-up'];

const lastUser = (req: ChatRequest) => [...req.messages].reverse().find((m) => m.role === 'user');

function pick<T>(list: readonly T[], seed: number, key: string): T {
  return list[Math.floor(seededRandom(itemSeed(seed, key))() * list.length)] as T;
}

/** Which classes' colours cover at least 0.4% of the image, largest first, and the background's tone. */
async function lookAt(dataUrl: string): Promise<{ classes: string[]; tone: string }> {
  const comma = dataUrl.indexOf(',');
  const bytes = Buffer.from(dataUrl.slice(comma + 1), 'base64');
  const W = 64;
  const H = 48;
  const raw = await sharp(bytes).removeAlpha().resize(W, H, { fit: 'fill' }).raw().toBuffer();
  const counts = new Map<string, number>();
  let edge = [0, 0, 0];
  let edgeN = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = (y * W + x) * 3;
      const px = [raw[p]! / 255, raw[p + 1]! / 255, raw[p + 2]! / 255];
      for (const c of SHAPE_CLASSES) {
        const d = (px[0]! - c.colour[0] / 255) ** 2 + (px[1]! - c.colour[1] / 255) ** 2 + (px[2]! - c.colour[2] / 255) ** 2;
        if (d < 0.04) counts.set(c.name, (counts.get(c.name) ?? 0) + 1);
      }
      if (x === 0 || y === 0 || x === W - 1 || y === H - 1) {
        edge = edge.map((v, k) => v + px[k]!);
        edgeN++;
      }
    }
  }
  const [r, g, b] = edge.map((v) => v / edgeN) as [number, number, number];
  const lum = 0.299 * r + 0.587 * g + 0.114 * b;
  const tone = lum > 0.9 ? 'plain white' : `${lum > 0.55 ? 'light' : 'dark'} ${r > b ? 'warm' : 'cool'} textured`;
  const classes = [...counts.entries()].filter(([, n]) => n >= 0.004 * W * H).sort((a, b) => b[1] - a[1]).map(([k]) => k);
  return { classes, tone };
}

/** VLM captions (plan/captions.ts CAPTION_INSTRUCTION): the shapes it sees by colour, the background, the light. */
export const captionAnswer: Answerer = async (req, seed) => {
  const m = lastUser(req);
  const text = messageText(m);
  const images = messageImages(m);
  if (!/Write a caption for this image/.test(text) || images.length !== 1) return undefined;
  const { classes, tone } = await lookAt(images[0]!);
  const what = classes.length ? classes.map((k) => `a ${COLOUR_WORDS[k]} ${k}`).join(' and ') : 'nothing in particular';
  return JSON.stringify({ caption: `${what} on a ${tone} background, ${pick(LIGHT, seed, `light:${images[0]!.length}:${images[0]!.slice(-64)}`)}` });
};

/** ALIA's domain summary (plan/domains.ts): the distinct settings the listed captions describe, without the objects. */
export const domainAnswer: Answerer = (req) => {
  const text = messageText(lastUser(req));
  if (!/Summarise them into objective descriptions of the settings/.test(text)) return undefined;
  const max = Number(/Give at most (\d+) settings/.exec(text)?.[1] ?? 10);
  const settings: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('- ')) continue;
    const at = line.indexOf(' on a ');
    if (at < 0) continue;
    // The scene (the background), without the camera words of that one photo.
    const s = line.slice(at + 1).split(',')[0]!.trim();
    if (!settings.includes(s)) settings.push(s);
  }
  return JSON.stringify({ settings: settings.slice(0, max) });
};

/**
 * Label-ambiguity candidates (plan/ambiguity.ts): the shape as it is drawn (its colour), and two other things the
 * name can mean, one of another colour: CLIP scoring against the real images should pick the first.
 */
export const meaningsAnswer: Answerer = (req) => {
  const text = messageText(lastUser(req));
  const m = /has a class named "([^"]+)"/.exec(text);
  if (!m || !/distinct things this name can mean/.test(text)) return undefined;
  const name = m[1]!;
  const colour = COLOUR_WORDS[name] ?? 'grey';
  const other = Object.values(COLOUR_WORDS).find((c) => c !== colour) ?? 'grey';
  return JSON.stringify({ meanings: [`a ${other} ${name} made of metal in a machine`, `a flat, coloured ${colour} ${name}`, `the word ${name} in a dictionary`] });
};

/** DDFT's contextual descriptions (plan/prompts.ts): one sentence per context, each naming the class. */
export const contextAnswer: Answerer = (req, seed) => {
  const text = messageText(lastUser(req));
  const m = /Write (\d+) distinct one-sentence descriptions of a realistic photo that shows a (.+?)(?: \(meaning: .*\))?\.\n/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const name = m[2]!;
  const places = ['on a wooden table', 'on a city pavement', 'in a sunny park', 'on a beach at dusk', 'on a kitchen counter', 'in the snow', 'on a red brick wall', 'in a forest clearing'];
  const r = seededRandom(itemSeed(seed, `context:${name}`));
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`a ${COLOUR_WORDS[name] ?? ''} ${name} ${places[(i + Math.floor(r() * places.length)) % places.length]}, ${LIGHT[i % LIGHT.length]}`.replace(/\s+/g, ' '));
  return JSON.stringify({ descriptions: out });
};

/** DDFT's style list (plan/prompts.ts). */
export const stylesAnswer: Answerer = (req) => {
  const text = messageText(lastUser(req));
  const m = /List (\d+) distinct visual styles/.exec(text);
  if (!m) return undefined;
  const all = ['painting', 'pencil sketch', 'cartoon', '3D render', 'embroidery', 'origami', 'mosaic', 'watercolour', 'woodcut print', 'clay model'];
  return JSON.stringify({ styles: all.slice(0, Number(m[1])) });
};

export const CLASSIFY_ANSWERERS: readonly Answerer[] = [captionAnswer, domainAnswer, meaningsAnswer, contextAnswer, stylesAnswer];
