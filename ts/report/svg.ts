/** Plain SVG charts for the report: grouped bars, histograms with threshold lines. No chart library. */

export const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
export const colour = (i: number) => PALETTE[i % PALETTE.length] as string;

const fmt = (v: number) => (Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(2));

/** Decimals that show every multiple of `step` exactly (0.2 -> 1, 0.05 -> 2, 20 -> 0). */
export const stepDecimals = (step: number) => Math.max(0, -Math.floor(Math.log10(step) + 1e-9));

/** A tick value as its label: as many decimals as the step needs, no more (0.4 with step 0.2: "0.4"; 20: "20"). */
export const tickLabel = (v: number, step: number) => v.toFixed(stepDecimals(step));

/** A step of 1, 2 or 5 x 10^k near `raw` (the rule of d3's ticks: the factor whose log is nearest). */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const err = raw / p;
  return p * (err >= Math.sqrt(50) ? 10 : err >= Math.sqrt(10) ? 5 : err >= Math.sqrt(2) ? 2 : 1);
}

/**
 * Round tick values covering [lo, hi] in about `target` intervals: the step is
 * 1, 2 or 5 x 10^k (at least 1 when `integer`, for counts), and the first and
 * last ticks are the multiples of the step at or around lo and hi.
 */
export function niceTicks(lo: number, hi: number, target = 4, integer = false): { ticks: number[]; step: number; min: number; max: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) ((lo = 0), (hi = 1));
  if (hi <= lo) hi = lo + (integer ? 1 : Math.max(1e-9, Math.abs(lo) * 1e-3 || 1));
  let step = niceStep((hi - lo) / Math.max(1, target));
  if (integer) step = Math.max(1, Math.round(step));
  const d = stepDecimals(step);
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toFixed(d)));
  return { ticks, step, min: ticks[0] as number, max: ticks[ticks.length - 1] as number };
}

/** Histogram bins: the first edge, the width and the count; `index` puts a value in its bin. */
export interface Bins {
  start: number;
  width: number;
  count: number;
  integer: boolean;
  index(v: number): number;
}

/**
 * Bins over [lo, hi] in about `target` bins. Integer data (counts) get whole
 * bins: a width of 1 or more integers, edges at half-integers, so that every
 * bin holds the same number of possible values. Other data get a round width
 * (1, 2 or 5 x 10^k) with edges at its multiples. A value equal to the last
 * edge falls in the last bin.
 */
export function histogramBins(lo: number, hi: number, target: number, integer: boolean): Bins {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) ((lo = 0), (hi = 1));
  if (integer) {
    lo = Math.floor(lo);
    hi = Math.max(lo, Math.ceil(hi));
    const width = Math.max(1, Math.ceil((hi - lo + 1) / Math.max(1, target)));
    const count = Math.ceil((hi - lo + 1) / width);
    const start = lo - 0.5;
    return { start, width, count, integer, index: (v) => Math.min(count - 1, Math.max(0, Math.floor((v - start) / width))) };
  }
  if (hi <= lo) hi = lo + 1;
  const width = niceStep((hi - lo) / Math.max(1, target));
  const d = stepDecimals(width);
  const start = Number((Math.floor(lo / width + 1e-9) * width).toFixed(d));
  const count = Math.max(1, Math.ceil((hi - start) / width - 1e-9));
  return { start, width, count, integer, index: (v) => Math.min(count - 1, Math.max(0, Math.floor((v - start) / width + 1e-9))) };
}

/**
 * Where a label centred on x goes so that it stays inside [0, W]: centred
 * when it fits, else flush against the nearer side. The width is estimated
 * (0.6 em per character, wide enough for digits and lower case).
 */
export function placeLabel(x: number, text: string, fontSize: number, W: number, pad = 2): { x: number; anchor: 'start' | 'middle' | 'end'; width: number } {
  const width = 0.6 * fontSize * text.length;
  if (x - width / 2 < pad) return { x: pad, anchor: 'start', width };
  if (x + width / 2 > W - pad) return { x: W - pad, anchor: 'end', width };
  return { x, anchor: 'middle', width };
}

/** Grouped vertical bars: one group per category, one bar per series. */
export function groupedBars(o: { title: string; categories: string[]; series: Array<{ name: string; values: number[] }>; width?: number; height?: number; id?: string }): string {
  const W = o.width ?? 720;
  const H = o.height ?? 260;
  const m = { l: 44, r: 10, t: 28, b: 58 };
  const values = o.series.flatMap((s) => s.values);
  const axis = niceTicks(0, Math.max(...values, 0) || 1, 4, values.every((v) => Number.isInteger(v)));
  const max = axis.max;
  const gw = (W - m.l - m.r) / Math.max(1, o.categories.length);
  const bw = Math.max(2, (gw * 0.8) / Math.max(1, o.series.length));
  const y = (v: number) => m.t + (H - m.t - m.b) * (1 - v / max);
  const parts: string[] = [];
  for (const v of axis.ticks) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e3e3e3"/><text class="tick" x="${m.l - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="10">${tickLabel(v, axis.step)}</text>`);
  }
  o.categories.forEach((cat, ci) => {
    const gx = m.l + ci * gw + gw * 0.1;
    o.series.forEach((s, si) => {
      const v = s.values[ci] ?? 0;
      const x = gx + si * bw;
      parts.push(`<rect class="bar" x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${(y(0) - y(v)).toFixed(1)}" fill="${colour(si)}"><title>${esc(cat)} · ${esc(s.name)}: ${fmt(v)}</title></rect>`);
    });
    parts.push(`<text x="${(m.l + ci * gw + gw / 2).toFixed(1)}" y="${H - m.b + 14}" text-anchor="middle" font-size="11">${esc(cat)}</text>`);
  });
  const legend = o.series.map((s, si) => `<rect x="${m.l + si * 120}" y="${H - 22}" width="10" height="10" fill="${colour(si)}"/><text x="${m.l + si * 120 + 14}" y="${H - 13}" font-size="11">${esc(s.name)}</text>`).join('');
  return `<svg class="chart" ${o.id ? `id="${esc(o.id)}" ` : ''}xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}"><text x="${m.l}" y="16" font-size="13" font-weight="bold">${esc(o.title)}</text><line x1="${m.l}" x2="${W - m.r}" y1="${y(0)}" y2="${y(0)}" stroke="#333"/>${parts.join('')}${legend}</svg>`;
}

/**
 * A histogram of values split into series (stacked), with vertical threshold
 * lines. Integer values (counts; or `integer: true`) get whole bins; round
 * tick values on both axes; threshold labels stay inside the chart.
 */
export function histogram(o: {
  title: string;
  series: Array<{ name: string; values: number[] }>;
  thresholds?: Array<{ value: number; label: string }>;
  bins?: number;
  range?: [number, number];
  integer?: boolean;
  width?: number;
  height?: number;
}): string {
  const W = o.width ?? 360;
  const H = o.height ?? 220;
  const m = { l: 36, r: 12, t: 40, b: 46 };
  const all = o.series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
  const th = (o.thresholds ?? []).map((t) => t.value).filter((v) => Number.isFinite(v));
  const integer = o.integer ?? (all.length > 0 && all.every((v) => Number.isInteger(v)));
  let lo = o.range?.[0] ?? Math.min(...all, ...th);
  let hi = o.range?.[1] ?? Math.max(...all, ...th);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) ((lo = 0), (hi = 1));
  const bins = histogramBins(lo, hi, o.bins ?? 24, integer);
  const B = bins.count;
  const x0 = bins.start;
  const x1 = bins.start + B * bins.width;
  const counts = o.series.map((s) => {
    const c = new Array<number>(B).fill(0);
    for (const v of s.values) if (Number.isFinite(v)) { const b = bins.index(v); c[b] = (c[b] as number) + 1; }
    return c;
  });
  const totals = Array.from({ length: B }, (_, b) => counts.reduce((s, c) => s + (c[b] as number), 0));
  const yAxis = niceTicks(0, Math.max(1, ...totals), 4, true);
  const max = yAxis.max;
  const x = (v: number) => m.l + ((W - m.l - m.r) * (v - x0)) / (x1 - x0);
  const y = (v: number) => m.t + (H - m.t - m.b) * (1 - v / max);
  const bw = (W - m.l - m.r) / B;
  const edge = (b: number) => Number((x0 + b * bins.width).toFixed(stepDecimals(bins.width) + (integer ? 1 : 0)));
  const range = (b: number) => (integer ? (bins.width === 1 ? `${edge(b) + 0.5}` : `${edge(b) + 0.5} to ${edge(b + 1) - 0.5}`) : `[${edge(b)}, ${edge(b + 1)})`);
  const parts: string[] = [];
  for (const v of yAxis.ticks) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/><text class="tick" x="${m.l - 4}" y="${(y(v) + 4).toFixed(1)}" font-size="10" text-anchor="end">${v}</text>`);
  }
  for (let b = 0; b < B; b++) {
    let acc = 0;
    counts.forEach((c, si) => {
      const v = c[b] as number;
      if (!v) return;
      parts.push(`<rect class="bar" x="${(m.l + b * bw).toFixed(1)}" y="${y(acc + v).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${(y(acc) - y(acc + v)).toFixed(1)}" fill="${colour(si)}"><title>${esc(o.series[si]?.name)}: ${v} in ${range(b)}</title></rect>`);
      acc += v;
    });
  }
  for (const t of o.thresholds ?? []) {
    if (!Number.isFinite(t.value)) continue;
    const tx = Math.min(W - m.r, Math.max(m.l, x(t.value)));
    const label = placeLabel(tx, t.label, 10, W);
    parts.push(`<line class="threshold" x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${m.t - 2}" y2="${H - m.b}" stroke="#c00" stroke-width="2" stroke-dasharray="5 3"/><text class="threshold-label" x="${label.x.toFixed(1)}" y="${m.t - 6}" font-size="10" fill="#c00" text-anchor="${label.anchor}">${esc(t.label)}</text>`);
  }
  const xAxis = integer ? niceTicks(Math.ceil(x0), Math.floor(x1), 5, true) : niceTicks(x0, x1, 4);
  for (const v of xAxis.ticks.filter((v) => v >= x0 - 1e-9 && v <= x1 + 1e-9)) {
    const label = placeLabel(x(v), tickLabel(v, xAxis.step), 10, W);
    parts.push(`<text class="tick" x="${label.x.toFixed(1)}" y="${H - m.b + 14}" font-size="10" text-anchor="${label.anchor}">${tickLabel(v, xAxis.step)}</text>`);
  }
  const legend = o.series.map((s, si) => `<rect x="${m.l + si * 110}" y="${H - 20}" width="10" height="10" fill="${colour(si)}"/><text x="${m.l + si * 110 + 14}" y="${H - 11}" font-size="11">${esc(s.name)}</text>`).join('');
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}"><text x="${m.l}" y="16" font-size="12" font-weight="bold">${esc(o.title)}</text><line x1="${m.l}" x2="${W - m.r}" y1="${y(0)}" y2="${y(0)}" stroke="#333"/>${parts.join('')}${legend}</svg>`;
}
