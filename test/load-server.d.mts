/** Types of test/load-server.mjs (plain JavaScript so that scripts/load.mjs runs it without a build). */
export type Fault = 'slow' | 'hang' | 'drop' | 'cut' | '500' | '502' | '503' | '429s' | '429d';
export type Action = Fault | 'ok' | 'doomed';

export const FAULTS: Fault[];

export function pngFor(seed: number, prompt: string, width?: number, height?: number): Buffer;

export interface HostileOptions {
  seed?: number;
  delayMs?: number;
  slowMs?: number;
  faults?: Partial<Record<Fault, number>>;
  maxFaults?: number;
  retryAfterS?: number;
  retryAfterDateMs?: number;
  doomed?: number[];
  record?: boolean;
  port?: number;
}

export interface HostileStats {
  requests: number;
  inFlight: number;
  /** Most requests in flight at once (counted after the connections closed in the same event-loop turn). */
  maxInFlight: number;
  /** The same counted at each arrival. */
  maxInFlightRaw: number;
  ok: number;
  faults: Record<Fault, number>;
  doomed: number;
}

export interface ServerEvent {
  /** ms since the epoch (fractional). */
  t: number;
  type: 'arrive' | 'end';
  job?: number;
  attempt?: number;
  action?: Action;
  /** An end: the client closed the connection before any answer (t is when the server noticed). */
  byClient?: boolean;
}

export interface RetryAfterEvent {
  t: number;
  job: number;
  attempt: number;
  form: 's' | 'date';
  header: string;
  /** The time the header names (ms since the epoch). */
  until: number;
}

export interface HostileServer {
  url: string;
  stats: HostileStats;
  events: ServerEvent[];
  retryAfters: RetryAfterEvent[];
  attempts: Map<number, number>;
  actionFor(job: number, attempt: number): Action;
  close(): Promise<void>;
}

export function hostileServer(o?: HostileOptions): Promise<HostileServer>;
