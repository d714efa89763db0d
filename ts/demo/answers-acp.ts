/**
 * The demo stand-in's answers for Auto Cherry-Picker (`genaug demo --preset acp`), deterministic from the seed and
 * the request, in the forms the real clients ask for:
 * - the scene graph request (plan/scenes.ts SCENE_TASK): every object described by its class colour, the objects
 *   in a row, each "left of" the next, a caption tagging each as word(id);
 * - the layout request (LAYOUT_TASK): one box per object, left to right as the relations say, sized and placed from
 *   a hash of the request and the seed;
 * - the VLM's descriptions (curate/score.ts JUDGE_PROMPTS, an image attached): it looks at the pixels: the shape
 *   classes whose colour fills part of the image or of the asked <box> region; a black image is "completely black";
 * - the LLM judge's grades (JUDGE_PROMPTS.grade): 0-5 by how many of the intended classes were seen (over the
 *   intended or seen classes, whichever are more); a description of a black image gets a refusal with no score,
 *   as a judge answers what it cannot grade, which the run records as CLIS-I's −1 sentinel.
 */
import sharp from 'sharp';

import { SHAPE_CLASSES } from '../generate/procedural-world.js';
import { JUDGE_PROMPTS } from '../curate/score.js';
import { mixSeed, seededRandom } from '../util/random.js';
import { messageImages, messageText, type Answerer, type ChatRequest } from './standin.js';

const COLOUR_WORDS: Record<string, string> = { disk: 'magenta', square: 'blue', triangle: 'green', ring: 'orange', cross: 'purple', star: 'yellow' };

const classOfId = (id: string) => id.replace(/-\d+$/, '');

/** A 31-bit hash of a string (FNV-1a), to seed answers by request. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 1) & 0x7fffffff;
}

const system = (req: ChatRequest) => messageText(req.messages.find((m) => m.role === 'system'));
const lastUser = (req: ChatRequest) => messageText([...req.messages].reverse().find((m) => m.role === 'user'));

/** ACP's scene graph for {objects: [ids]}. */
export const sceneGraphAnswer: Answerer = (req) => {
  if (!system(req).startsWith('You design scenes for a layout-conditioned image generator')) return undefined;
  const ids = (JSON.parse(messageText(req.messages[1])) as { objects: string[] }).objects;
  const attribute = (id: string) => `a ${COLOUR_WORDS[classOfId(id)] ?? 'plain'} ${classOfId(id)}`;
  const relations = ids.slice(1).map((id, i) => ({ subject: [ids[i]!], object: [id], relation: 'left of' }));
  return JSON.stringify({
    attributes: ids.map((id) => ({ object: id, attribute: attribute(id) })),
    groups: [ids],
    layers_of_depth: [{ layer: 'Foreground', groups: [ids] }],
    relations: [{ caption: 'the objects stand in a row from left to right', relations }],
    caption: `${ids.map((id) => `${attribute(id)}(${id})`).join(ids.length > 2 ? ', then ' : ' and ')} on a white ground, in a row from left to right.`.replace(/^a/, 'A'),
  });
};

/** ACP's layout for {objects: ["id: attribute"], ...}: boxes left to right. */
export const layoutAnswer: Answerer = (req, seed) => {
  if (!system(req).startsWith('You place objects in an image')) return undefined;
  const user = messageText(req.messages[1]);
  const ids = (JSON.parse(user) as { objects: string[] }).objects.map((o) => o.split(':')[0]!);
  const r = seededRandom(mixSeed(seed, hash(user)));
  const slot = 0.96 / ids.length;
  const round = (v: number) => Math.round(v * 1000) / 1000;
  const Layout = ids.map((id, i) => {
    const s = Math.min(slot * 0.9, 0.5) * (0.75 + 0.25 * r());
    const x = 0.02 + i * slot + (slot - s) * r();
    const y = 0.08 + (0.84 - s) * r();
    return { object: id, bbox: [round(x), round(y), round(s), round(s)] };
  });
  return JSON.stringify({ Layout });
};

/** The classes whose colour covers at least `minFraction` of the window (and 4 pixels), most pixels first. */
function classesSeen(rgb: Buffer, W: number, win: [number, number, number, number], minFraction: number): string[] {
  const [x0, y0, x1, y1] = win;
  const counts = new Map<string, number>();
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const p = 3 * (y * W + x);
      const c = [rgb[p]!, rgb[p + 1]!, rgb[p + 2]!];
      if (Math.max(...c) - Math.min(...c) < 50) continue; // white, grey or black: no shape
      let best = SHAPE_CLASSES[0]!;
      let bestD = Infinity;
      for (const k of SHAPE_CLASSES) {
        const d = (k.colour[0] - c[0]!) ** 2 + (k.colour[1] - c[1]!) ** 2 + (k.colour[2] - c[2]!) ** 2;
        if (d < bestD) ((bestD = d), (best = k));
      }
      counts.set(best.name, (counts.get(best.name) ?? 0) + 1);
    }
  }
  const need = Math.max(4, minFraction * (x1 - x0) * (y1 - y0));
  return [...counts].filter(([, n]) => n >= need).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k]) => k);
}

const phrase = (k: string) => `a ${COLOUR_WORDS[k] ?? ''} ${k}`.replace(/\s+/g, ' ');

/** The VLM: describes the attached image, or the <box> region of it, by the shape colours it finds. */
export const describeAnswer: Answerer = async (req) => {
  const user = [...req.messages].reverse().find((m) => m.role === 'user');
  const images = messageImages(user);
  if (images.length !== 1) return undefined;
  const text = messageText(user);
  const region = /<box>\((\d+),(\d+)\),\((\d+),(\d+)\)<\/box>/.exec(text);
  if (text !== JUDGE_PROMPTS.describe && !region) return undefined;
  const m = /^data:image\/[a-z]+;base64,(.*)$/s.exec(images[0]!);
  if (!m) return undefined;
  const { data, info } = await sharp(Buffer.from(m[1]!, 'base64')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const W = info.width;
  const H = info.height;
  let sum = 0;
  for (let q = 0; q < data.length; q++) sum += data[q]!;
  if (sum / data.length < 16) return 'The image is completely black.';
  if (region) {
    const g = region.slice(1).map(Number) as [number, number, number, number];
    const win: [number, number, number, number] = [Math.floor(((g[0] + 1) / 1000) * W), Math.floor(((g[1] + 1) / 1000) * H), Math.min(W, Math.ceil(((g[2] + 1) / 1000) * W)), Math.min(H, Math.ceil(((g[3] + 1) / 1000) * H))];
    const seen = classesSeen(data, W, win, 0.08);
    return seen.length ? `${phrase(seen[0]!)} filling the region.`.replace(/^a/, 'A') : 'Plain white background; there is no object in this region.';
  }
  const seen = classesSeen(data, W, [0, 0, W, H], 0.01);
  return seen.length ? `A white image showing ${seen.map(phrase).join(' and ')}.` : 'Plain white background; there is no object in the image.';
};

const classWords = (text: string) => SHAPE_CLASSES.map((k) => k.name).filter((k) => new RegExp(`\\b${k}\\b`, 'i').test(text));

/** The LLM judge: grades what was seen against what was intended (JUDGE_PROMPTS.grade). */
export const gradeAnswer: Answerer = (req) => {
  const text = lastUser(req);
  if (!text.startsWith('You compare an intended description with what a vision model saw.')) return undefined;
  const m = /Intended: "([\s\S]*?)"\. Seen: "([\s\S]*?)"\. Judge/.exec(text);
  if (!m) return undefined;
  if (/completely black/i.test(m[2]!)) return 'I cannot grade this: the description says the image is completely black, so nothing in it can be compared.';
  const intended = classWords(m[1]!);
  const seen = classWords(m[2]!);
  const agree = intended.filter((k) => seen.includes(k)).length;
  const score = Math.round((5 * agree) / Math.max(1, intended.length, seen.length));
  return JSON.stringify({ score, explanation: `${agree} of the ${intended.length} intended object classes were seen${seen.length > agree ? `, and ${seen.length - agree} others` : ''}.` });
};

/** Every ACP answerer, in the order the stand-in tries them. */
export const ACP_ANSWERERS: readonly Answerer[] = [sceneGraphAnswer, layoutAnswer, describeAnswer, gradeAnswer];
