/** Types of scripts/chaos.mjs for the tests that import it. */
export declare const STAGES: string[];
export declare const PHASES: string[];
export interface ChaosEvent {
  attempt: number;
  signal: 'SIGKILL' | 'SIGTERM';
  planned: string;
  landed: string;
  delayMs: number;
  code: number | null;
  exitSignal: string | null;
}
export interface ChaosResult {
  images: number;
  seed: number;
  kills: number;
  sigterms: number;
  attempts: number;
  perPhase: Record<string, { SIGKILL: number; SIGTERM: number }>;
  referenceSeconds: number;
  seconds: number;
  compare?: { files: number; differing: number; missing: number; extra: number; journals: Record<string, { lines: number; unique: number; endsWithNewline: boolean }> };
  record: ChaosEvent[];
  failures: string[];
  work: string;
}
export declare function chaos(o?: {
  images?: number;
  seed?: number;
  kills?: number;
  sigterms?: number;
  phases?: string[];
  termStages?: string[];
  work?: string;
  keep?: boolean;
  log?: (line: string) => void;
}): Promise<ChaosResult>;
