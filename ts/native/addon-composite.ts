/** Type declarations of what native/binding/composite.cc exports (merged into NativeAddon in addon.ts). */

export interface NativeCompositeInstanceIn {
  rgba: Uint8Array;
  width: number;
  height: number;
  targetWidth: number;
  targetHeight: number;
  flip?: boolean;
  cx: number;
  cy: number;
}

export interface NativeCompositeSceneIn {
  image: Uint8Array;
  width: number;
  height: number;
  masks?: Uint8Array[];
  /** 4 numbers [x, y, w, h] per box: a box-only scene. */
  boxes?: Float64Array;
  instances?: NativeCompositeInstanceIn[];
  /** Output block, at least height * width * (3 + masks + instances) bytes, overwritten (allocated by the addon when absent). */
  out?: Uint8Array;
}

export interface NativeCompositeOptions {
  blend?: 'basic' | 'alpha' | 'gaussian';
  sigma?: number;
  keepMaxShift?: number;
  keepMinArea?: number;
  threads?: number;
  maskThreshold?: number;
  maskFormat?: 'full' | 'box';
  /** The resize's row kernel (every level gives the same bytes); 'auto': the process's level. */
  isa?: 'auto' | 'scalar' | 'avx2' | 'avx512';
}

export interface NativeCompositeInstanceOut {
  source: 'real' | 'pasted';
  index: number;
  mask: Uint8Array;
  bbox: [number, number, number, number];
  area: number;
}

export interface NativeCompositeDrop {
  source: 'real' | 'pasted';
  index: number;
  reason: string;
}

export interface NativeCompositeSceneOut {
  image: Uint8Array;
  width: number;
  height: number;
  boxOnly: boolean;
  instances: NativeCompositeInstanceOut[];
  dropped: NativeCompositeDrop[];
}

export interface NativeComposite {
  compositeBatch(scenes: NativeCompositeSceneIn[], opts?: NativeCompositeOptions): Promise<NativeCompositeSceneOut[]>;
  compositeBatchSync(scenes: NativeCompositeSceneIn[], opts?: NativeCompositeOptions): NativeCompositeSceneOut[];
}
