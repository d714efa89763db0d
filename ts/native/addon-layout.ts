/** Type declarations of what native/binding/layout.cc exports (CLIS-L). */

export interface NativeLayoutOptions {
  tau?: number;
  penaltyT?: number;
  highSim?: number;
  lowWeight?: number;
  rankDivisor?: number;
  faithful?: boolean;
  balance?: boolean;
  symmetry?: boolean;
  threads?: number;
  cancel?: Int32Array;
}

export interface NativeLayoutScores {
  score: Float64Array;
  confidence: Float64Array;
  status: Int32Array;
  failedPair: Int32Array;
  pairScore: Float64Array;
  pairConfidence: Float64Array;
}

type LayoutArgs = [
  poolStart: Int32Array,
  poolSubject: Int32Array,
  poolObject: Int32Array,
  poolSubjectBox: Float32Array,
  poolObjectBox: Float32Array,
  poolSymmetric: Uint8Array,
  poolNames: number,
  objectStart: Int32Array,
  objectName: Int32Array,
  objectBox: Float32Array,
  relationStart: Int32Array,
  relationPredicate: Int32Array,
  relationSubject: Int32Array,
  relationObject: Int32Array,
  layoutNames: number,
  sim: Float32Array,
  options: NativeLayoutOptions,
];

export interface NativeLayout {
  clisLayout(...args: LayoutArgs): Promise<NativeLayoutScores>;
  clisLayoutSync(...args: LayoutArgs): NativeLayoutScores;
}
