/**
 * A progress line on stderr for long runs: redrawn in place on a terminal,
 * one line per 10 % otherwise (logs stay readable). Silent with quiet.
 */
export class Progress {
  private readonly start = Date.now();
  private lastPct = -1;
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'rows',
    private readonly quiet = false,
    /** Units already done when the run started (a resumed run): the rate and ETA count only this run's. */
    private readonly already = 0,
    /** Show the rate (units per second) too. */
    private readonly showRate = false,
  ) {
    this.tty = Boolean(process.stderr.isTTY);
  }

  /** `detail`: shown after the counts on a terminal (e.g. the sampler steps of the requests in flight). */
  private detail = '';

  update(done: number, detail?: string): void {
    if (detail !== undefined) this.detail = detail;
    if (this.quiet || this.total <= 0) return;
    const pct = Math.floor((100 * done) / this.total);
    const now = Date.now();
    if (this.tty) {
      if (now - this.lastDraw < 100 && done < this.total) return;
      this.lastDraw = now;
      process.stderr.write(`\r${this.line(done)}\x1b[K`);
      if (done >= this.total) process.stderr.write('\n');
    } else if (Math.floor(pct / 10) > Math.floor(this.lastPct / 10) || (done >= this.total && this.lastPct < 100)) {
      process.stderr.write(`${this.line(done)}\n`);
    }
    this.lastPct = pct;
  }

  private line(done: number): string {
    const secs = (Date.now() - this.start) / 1000;
    const frac = Math.min(1, done / this.total);
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const rate = secs > 0 ? (done - this.already) / secs : 0;
    const eta = rate > 0 && done < this.total ? ` eta ${formatSeconds((this.total - done) / rate)}` : '';
    const perSec = this.showRate ? ` ${rate.toFixed(2)}/s` : '';
    return `${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${this.total} ${this.unit} ${formatSeconds(secs)}${perSec}${eta}${this.tty && this.detail ? ` ${this.detail}` : ''}`;
  }
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60).toString().padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${(m % 60).toString().padStart(2, '0')}m`;
}
