/** Type declarations of what native/binding/mask.cc exports (to be merged into addon.ts). */

export interface NativeMaskOptions {
  /** Threads (0 or absent: every core, at most one per mask). Results do not depend on it. */
  threads?: number;
}

export interface NativeComponentOptions extends NativeMaskOptions {
  /** Foreground connectivity, 4 or 8 (default 8); hole filling uses the dual for the background. */
  connectivity?: number;
}

export type NativeRleForm = 'none' | 'counts' | 'string';

export interface NativePostOptions extends NativeComponentOptions {
  invert?: boolean;
  largest?: boolean;
  fillHoles?: boolean;
  minArea?: number;
  minFraction?: number;
  maxFraction?: number;
  /** RLE of each result: 'none' (default), 'counts' (Uint32Array) or 'string'. */
  rle?: NativeRleForm;
  /** Return the resulting masks (default true). */
  mask?: boolean;
}

export interface NativeCornerOptions extends NativePostOptions {
  /** Max |difference| per channel (R, G, B) to the corner's colour, 0..255 (default 10). */
  tolerance?: number;
  /** Also return the background estimate. */
  background?: boolean;
}

export interface NativePostResult {
  /** n * h * w, 0/1 (absent with mask: false). */
  data?: Uint8Array;
  area: Float64Array;
  /** n x 4: [x, y, w, h] per mask. */
  bbox: Float64Array;
  components: Float64Array;
  ok: Uint8Array;
  reason: string[];
  rle?: Array<Uint32Array | string>;
  background?: Uint8Array;
}

export interface NativeLargest {
  data: Uint8Array;
  area: Float64Array;
  components: Float64Array;
}

export interface NativeStats {
  area: Float64Array;
  bbox: Float64Array;
}

export interface NativeCrop {
  /** bbox.h x bbox.w x 4, RGBA. */
  data: Uint8Array;
  /** [x, y, w, h]. */
  bbox: Float64Array;
}

export type NativeCounts = Uint32Array | string;

type Batch = [data: Uint8Array, n: number, h: number, w: number];
type Img = [data: Uint8Array, h: number, w: number, channels: number];
type IouArgs = [dt: NativeCounts[], gt: NativeCounts[], h: number, w: number, iscrowd: Uint8Array | null, opts?: NativeMaskOptions];

export interface NativeMask {
  maskInvert(...args: [...Batch, opts?: NativeMaskOptions]): Promise<Uint8Array>;
  maskInvertSync(...args: [...Batch, opts?: NativeMaskOptions]): Uint8Array;
  maskLargestComponent(...args: [...Batch, opts?: NativeComponentOptions]): Promise<NativeLargest>;
  maskLargestComponentSync(...args: [...Batch, opts?: NativeComponentOptions]): NativeLargest;
  maskFillHoles(...args: [...Batch, opts?: NativeComponentOptions]): Promise<Uint8Array>;
  maskFillHolesSync(...args: [...Batch, opts?: NativeComponentOptions]): Uint8Array;
  maskStats(...args: [...Batch, opts?: NativeMaskOptions]): Promise<NativeStats>;
  maskStatsSync(...args: [...Batch, opts?: NativeMaskOptions]): NativeStats;
  maskIou(...args: [a: Uint8Array, ...Batch, opts?: NativeMaskOptions]): Promise<Float64Array>;
  maskIouSync(...args: [a: Uint8Array, ...Batch, opts?: NativeMaskOptions]): Float64Array;
  maskCrop(...args: [...Img, mask: Uint8Array, bbox: Float64Array | null]): Promise<NativeCrop>;
  maskCropSync(...args: [...Img, mask: Uint8Array, bbox: Float64Array | null]): NativeCrop;
  maskCornerBackground(...args: [...Img, opts?: { tolerance?: number }]): Promise<Uint8Array>;
  maskCornerBackgroundSync(...args: [...Img, opts?: { tolerance?: number }]): Uint8Array;
  maskPostProcess(...args: [...Batch, opts?: NativePostOptions]): Promise<NativePostResult>;
  maskPostProcessSync(...args: [...Batch, opts?: NativePostOptions]): NativePostResult;
  maskCornerForeground(...args: [...Img, opts?: NativeCornerOptions]): Promise<NativePostResult>;
  maskCornerForegroundSync(...args: [...Img, opts?: NativeCornerOptions]): NativePostResult;
  rleEncode(...args: [...Batch, opts?: NativeMaskOptions & { form?: 'counts' | 'string' }]): Promise<NativeCounts[]>;
  rleEncodeSync(...args: [...Batch, opts?: NativeMaskOptions & { form?: 'counts' | 'string' }]): NativeCounts[];
  rleDecode(rles: NativeCounts[], h: number, w: number, opts?: NativeMaskOptions): Promise<Uint8Array>;
  rleDecodeSync(rles: NativeCounts[], h: number, w: number, opts?: NativeMaskOptions): Uint8Array;
  rleIou(...args: IouArgs): Promise<Float64Array>;
  rleIouSync(...args: IouArgs): Float64Array;
  rleFromString(s: string, h: number, w: number): Uint32Array;
  rleToString(counts: Uint32Array): string;
  rleArea(counts: NativeCounts, h: number, w: number): number;
  rleToBbox(counts: NativeCounts, h: number, w: number): Float64Array;
  rleMerge(rles: NativeCounts[], h: number, w: number, intersect: boolean, opts?: { form?: 'counts' | 'string' }): NativeCounts;
  rleFromPolygons(polygons: Float64Array[], h: number, w: number, opts?: { form?: 'counts' | 'string' }): NativeCounts;
}
