/**
 * Instance pools for copy-paste: reading one, mapping its categories onto a
 * destination COCO dataset's, and decoding its RGBA crops (with an LRU cache
 * bounded in bytes).
 *
 * Two layouts are read:
 * - genaug's (`genaug annotate`): POOL/index.json
 *   {"categories": {"<name>": [{"file": "instances/<name>/x.png", "bbox": [x, y, w, h], ...}]}},
 *   paths relative to POOL. Category names are matched to the destination's.
 * - X-Paste / DiverGen's: {"<cat_id_0based>": ["*<path>.png", ...]}. The key
 *   is the contiguous 0-based index of the destination category in ascending
 *   id order (detectron2's mapping; for LVIS, id - 1). A leading `*` marks a
 *   preprocessed RGBA crop; `img|mask` entries are not supported and are
 *   skipped with a record. Relative paths are taken from the JSON's folder.
 *
 * Category names match when equal, else when equal after lower-casing,
 * dropping an LVIS `_(sense)` suffix and turning `_` into spaces, else when
 * they equal one of the destination category's `synonyms` so normalised. An
 * unknown category is skipped with a record, unless `addCategories` is set:
 * then it is appended to the destination categories with new ids (max id + 1,
 * ..., in name order) and uses the random-scale rule (it has no size prior).
 * An empty category, an entry with a zero-size crop, a crop whose alpha is
 * zero everywhere (checked once here, `checkAlpha`), or one that cannot be
 * read is skipped with a record, so sampling only draws usable instances.
 * Every skip is returned in `skipped` (once per crop, not per draw).
 */
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';

import { readTextFile } from '../io/atomic.js';
import type { CocoCategory } from '../io/coco.js';
import { imageInfo, readImage } from '../io/images.js';
import { checkWithin } from '../io/roots.js';
import { GenaugError } from '../native/errors.js';

export interface PoolInstance {
  /** Absolute path of the RGBA crop. */
  file: string;
  width: number;
  height: number;
}

export interface PoolCategory {
  /** The pool's name (or key) for it. */
  name: string;
  /** The destination category id it maps to. */
  categoryId: number;
  instances: PoolInstance[];
}

export interface PoolSkip {
  kind: 'unknown-category' | 'empty-category' | 'zero-size' | 'empty-alpha' | 'unreadable' | 'unsupported-entry' | 'bad-entry' | 'outside-root';
  category?: string;
  file?: string;
  message: string;
}

export interface InstancePool {
  /** The folder paths are resolved from. */
  root: string;
  /** The folder every crop must lie in (the roots rule): ReadPoolOptions.root, else the index's folder. */
  cropRoot: string;
  /** Non-empty categories, by destination category id. */
  categories: PoolCategory[];
  /** Categories appended to the destination's (addCategories). */
  addedCategories: CocoCategory[];
  skipped: PoolSkip[];
}

export interface ReadPoolOptions {
  /**
   * The folder every crop file must lie in (the roots rule, io/roots.ts): an entry naming a file elsewhere
   * (an absolute path, `..`, a link out of it) is skipped as 'outside-root' with the reason. Default: the
   * index's own folder. An X-Paste index that names its crops by absolute path needs the folder holding them.
   */
  root?: string;
  /** Append pool categories the destination lacks, instead of skipping them (default false). */
  addCategories?: boolean;
  /** Files whose size is read from the PNG header at once (default 16). */
  concurrency?: number;
  /**
   * Decode the alpha of every crop that has one and skip crops whose alpha is
   * zero everywhere (as the reference's clean_pool does), so sampling only
   * draws usable instances (default true). Off: such crops stay in the pool
   * and each draw of one is skipped at render time.
   */
  checkAlpha?: boolean;
  /** Decode the checked crops into this cache (a renderer on this thread then reads them from it). */
  cache?: CropCache;
}

/** Whether a crop has a non-zero alpha somewhere (true for crops without an alpha channel). */
async function hasVisibleAlpha(file: string, cache?: CropCache): Promise<boolean> {
  if (!(await imageInfo(file)).hasAlpha) return true;
  if (cache) {
    try {
      await cache.get(file);
      return true;
    } catch (e) {
      if (e instanceof GenaugError && e.detail?.kind === 'empty-alpha') return false;
      throw e;
    }
  }
  const { data } = await readImage(file, { channels: 4 });
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
  return false;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The name as matched: lower case, no LVIS `_(sense)` suffix, `_` as spaces, single spaces. */
export function normalizeCategoryName(name: string): string {
  return name.replace(/_\([^)]*\)$/, '').replace(/[_\s]+/g, ' ').trim().toLowerCase();
}

/** name -> destination category, by the matching rules above. */
export function categoryMatcher(categories: readonly CocoCategory[]): (name: string) => CocoCategory | undefined {
  const sorted = [...categories].sort((a, b) => a.id - b.id);
  const exact = new Map<string, CocoCategory>();
  const normal = new Map<string, CocoCategory>();
  const synonym = new Map<string, CocoCategory>();
  for (const c of sorted) {
    if (!exact.has(c.name)) exact.set(c.name, c);
    const n = normalizeCategoryName(c.name);
    if (!normal.has(n)) normal.set(n, c);
    for (const s of Array.isArray(c.synonyms) ? c.synonyms : []) {
      if (typeof s !== 'string') continue;
      const k = normalizeCategoryName(s);
      if (!synonym.has(k)) synonym.set(k, c);
    }
  }
  return (name) => exact.get(name) ?? normal.get(normalizeCategoryName(name)) ?? synonym.get(normalizeCategoryName(name));
}

interface RawEntry {
  category: string;
  file: string;
  width?: number;
  height?: number;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return out;
}

/**
 * Reads a pool: a folder with index.json, or an index file (genaug's or
 * X-Paste's layout), and maps it onto `destination` (the destination
 * dataset's categories).
 */
export async function readInstancePool(path: string, destination: readonly CocoCategory[], o: ReadPoolOptions = {}): Promise<InstancePool> {
  let indexPath = resolve(path);
  try {
    if ((await stat(indexPath)).isDirectory()) indexPath = join(indexPath, 'index.json');
  } catch (e) {
    throw new GenaugError('E_IO', `instance pool ${path}: could not read it (${(e as Error).message})`, { path });
  }
  const root = dirname(indexPath);
  let raw: unknown;
  try {
    // Only a regular file (a FIFO named as the pool is E_IO, not a wait).
    raw = JSON.parse(await readTextFile(indexPath, `instance pool index ${indexPath}`));
  } catch (e) {
    if (e instanceof GenaugError) throw e;
    const what = e instanceof SyntaxError ? 'is not valid JSON' : 'could not be read';
    throw new GenaugError(e instanceof SyntaxError ? 'E_FORMAT' : 'E_IO', `instance pool index ${indexPath} ${what}: ${(e as Error).message}`, { path: indexPath });
  }
  const skipped: PoolSkip[] = [];
  const entries: RawEntry[] = [];
  const names: string[] = [];
  // Pool category name -> destination category.
  const resolved = new Map<string, CocoCategory>();
  const match = categoryMatcher(destination);
  const sortedDest = [...destination].sort((a, b) => a.id - b.id);

  if (isObject(raw) && isObject(raw.categories)) {
    for (const [name, list] of Object.entries(raw.categories)) {
      names.push(name);
      const m = match(name);
      if (m) resolved.set(name, m);
      if (!Array.isArray(list)) {
        skipped.push({ kind: 'bad-entry', category: name, message: `${indexPath}: categories["${name}"] must be an array of instances` });
        continue;
      }
      list.forEach((e, i) => {
        const file = isObject(e) ? e.file : undefined;
        if (typeof file !== 'string' || !file) {
          skipped.push({ kind: 'bad-entry', category: name, message: `${indexPath}: categories["${name}"][${i}] needs a "file" string` });
          return;
        }
        const bbox = isObject(e) ? e.bbox : undefined;
        const dims = Array.isArray(bbox) && bbox.length === 4 && bbox.every((v) => typeof v === 'number') ? { width: bbox[2] as number, height: bbox[3] as number } : {};
        entries.push({ category: name, file: isAbsolute(file) ? file : join(root, file), ...dims });
      });
    }
  } else if (isObject(raw) && Object.keys(raw).every((k) => /^\d+$/.test(k))) {
    for (const [key, list] of Object.entries(raw)) {
      names.push(key);
      const m = sortedDest[Number(key)];
      if (m) resolved.set(key, m);
      if (!Array.isArray(list)) {
        skipped.push({ kind: 'bad-entry', category: key, message: `${indexPath}: "${key}" must be an array of paths` });
        continue;
      }
      list.forEach((e, i) => {
        if (typeof e !== 'string' || !e) {
          skipped.push({ kind: 'bad-entry', category: key, message: `${indexPath}: "${key}"[${i}] must be a path string` });
          return;
        }
        if (!e.startsWith('*')) {
          skipped.push({ kind: 'unsupported-entry', category: key, file: e, message: `${indexPath}: "${key}"[${i}] is an img|mask entry; genaug reads preprocessed RGBA crops ("*path.png") only` });
          return;
        }
        const file = e.slice(1);
        entries.push({ category: key, file: isAbsolute(file) ? file : join(root, file) });
      });
    }
  } else {
    throw new GenaugError(
      'E_FORMAT',
      `instance pool index ${indexPath} is neither genaug's {"categories": {name: [{file, ...}]}} nor X-Paste's {"<cat_id_0based>": ["*path.png", ...]}`,
      { path: indexPath },
    );
  }

  const added: CocoCategory[] = [];
  const unknown = names.filter((n) => !resolved.has(n));
  if (o.addCategories) {
    let nextId = destination.reduce((m, c) => Math.max(m, c.id), 0) + 1;
    for (const n of [...unknown].sort()) {
      const c: CocoCategory = { id: nextId++, name: n, supercategory: 'object' };
      added.push(c);
      resolved.set(n, c);
    }
  } else {
    for (const n of unknown) {
      skipped.push({ kind: 'unknown-category', category: n, message: `pool category "${n}" matches no destination category; its instances are skipped (use addCategories / --add-categories to append it)` });
    }
  }

  // Crop sizes: from the index's box when it has one, else from the PNG header.
  const usable = entries.filter((e) => resolved.has(e.category));
  const cropRoot = resolve(o.root ?? root);
  const sized = await mapLimit(usable, o.concurrency ?? 16, async (e): Promise<PoolInstance | PoolSkip> => {
    try {
      await checkWithin(cropRoot, e.file, 'crop');
    } catch (err) {
      return { kind: 'outside-root', category: e.category, file: e.file, message: `${(err as Error).message}; name the folder holding the crops with --pool-root` };
    }
    let { width, height } = e;
    if (width === undefined || height === undefined) {
      try {
        ({ width, height } = await imageInfo(e.file));
      } catch (err) {
        return { kind: 'unreadable', category: e.category, file: e.file, message: `${e.file}: could not read the crop (${(err as Error).message})` };
      }
    }
    if (!(width > 0 && height > 0)) return { kind: 'zero-size', category: e.category, file: e.file, message: `${e.file}: the crop is ${width} x ${height}; zero-size crops are skipped` };
    if (o.checkAlpha ?? true) {
      let visible: boolean;
      try {
        visible = await hasVisibleAlpha(e.file, o.cache);
      } catch (err) {
        return { kind: 'unreadable', category: e.category, file: e.file, message: `${e.file}: could not read the crop (${(err as Error).message})` };
      }
      if (!visible) return { kind: 'empty-alpha', category: e.category, file: e.file, message: `${e.file}: the crop's alpha is zero everywhere (nothing to paste); it is never sampled` };
    }
    return { file: e.file, width, height };
  });
  const byCategory = new Map<string, PoolInstance[]>();
  sized.forEach((r, i) => {
    if ('kind' in r) skipped.push(r);
    else {
      const name = usable[i]!.category;
      let list = byCategory.get(name);
      if (!list) byCategory.set(name, (list = []));
      list.push(r);
    }
  });
  const categories: PoolCategory[] = [];
  for (const n of names) {
    const dest = resolved.get(n);
    if (!dest) continue;
    const instances = byCategory.get(n) ?? [];
    if (instances.length === 0) {
      skipped.push({ kind: 'empty-category', category: n, message: `pool category "${n}" has no usable instance; it is never sampled` });
      continue;
    }
    const same = categories.find((c) => c.categoryId === dest.id);
    if (same) same.instances.push(...instances);  // two pool names for one destination category
    else categories.push({ name: n, categoryId: dest.id, instances });
  }
  categories.sort((a, b) => a.categoryId - b.categoryId);
  return { root, cropRoot, categories, addedCategories: added, skipped };
}

export interface RgbaCrop {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A least-recently-used cache bounded by the total byte size of its values. */
export class LruCache<K, V> {
  private readonly map = new Map<K, { value: V; bytes: number }>();
  private total = 0;

  constructor(
    readonly maxBytes: number,
    private readonly sizeOf: (v: V) => number,
  ) {}

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  set(key: K, value: V): void {
    const bytes = this.sizeOf(value);
    const old = this.map.get(key);
    if (old) {
      this.total -= old.bytes;
      this.map.delete(key);
    }
    if (bytes > this.maxBytes) return;  // never fits: not cached
    this.map.set(key, { value, bytes });
    this.total += bytes;
    for (const [k, e] of this.map) {
      if (this.total <= this.maxBytes) break;
      this.map.delete(k);
      this.total -= e.bytes;
    }
  }
}

/** Decodes an RGBA crop (io/images: any format, alpha added as 255 when absent). E_FORMAT for an empty alpha. */
export async function decodeCrop(file: string): Promise<RgbaCrop> {
  const { data, width, height } = await readImage(file, { channels: 4 });
  let any = false;
  for (let i = 3; i < data.length; i += 4) {
    if (data[i] !== 0) {
      any = true;
      break;
    }
  }
  if (!any) throw new GenaugError('E_FORMAT', `${file}: the crop's alpha is zero everywhere (nothing to paste)`, { path: file, kind: 'empty-alpha' });
  return { data, width, height };
}

/** Decoded crops of one thread, cached up to `maxBytes` (default 256 MiB); failures are cached too. */
export class CropCache {
  private readonly lru: LruCache<string, RgbaCrop | GenaugError>;

  constructor(maxBytes = 256 * 2 ** 20) {
    this.lru = new LruCache(maxBytes, (v) => (v instanceof GenaugError ? 64 : v.data.byteLength + 64));
  }

  async get(file: string): Promise<RgbaCrop> {
    let v = this.lru.get(file);
    if (!v) {
      try {
        v = await decodeCrop(file);
      } catch (e) {
        v = e instanceof GenaugError ? e : new GenaugError('E_IO', `${file}: ${(e as Error).message}`, { path: file });
      }
      this.lru.set(file, v);
    }
    if (v instanceof GenaugError) throw v;
    return v;
  }

  get bytes(): number {
    return this.lru.bytes;
  }
}
