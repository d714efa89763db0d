/** Plain SVG charts for the report: grouped bars, histograms with threshold lines. No chart library. */

export const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
export const colour = (i: number) => PALETTE[i % PALETTE.length] as string;

const fmt = (v: number) => (Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(2));

/** Grouped vertical bars: one group per category, one bar per series. */
export function groupedBars(o: { title: string; categories: string[]; series: Array<{ name: string; values: number[] }>; width?: number; height?: number; id?: string }): string {
  const W = o.width ?? 720;
  const H = o.height ?? 260;
  const m = { l: 44, r: 10, t: 28, b: 58 };
  const max = Math.max(1, ...o.series.flatMap((s) => s.values));
  const gw = (W - m.l - m.r) / Math.max(1, o.categories.length);
  const bw = Math.max(2, (gw * 0.8) / Math.max(1, o.series.length));
  const y = (v: number) => m.t + (H - m.t - m.b) * (1 - v / max);
  const parts: string[] = [];
  for (let t = 0; t <= 4; t++) {
    const v = (max * t) / 4;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e3e3e3"/><text x="${m.l - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="10">${fmt(v)}</text>`);
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

/** A histogram of values split into series (stacked), with vertical threshold lines. */
export function histogram(o: {
  title: string;
  series: Array<{ name: string; values: number[] }>;
  thresholds?: Array<{ value: number; label: string }>;
  bins?: number;
  range?: [number, number];
  width?: number;
  height?: number;
}): string {
  const W = o.width ?? 360;
  const H = o.height ?? 220;
  const m = { l: 36, r: 10, t: 28, b: 46 };
  const all = o.series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
  const th = (o.thresholds ?? []).map((t) => t.value);
  let lo = o.range?.[0] ?? Math.min(...all, ...th);
  let hi = o.range?.[1] ?? Math.max(...all, ...th);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) ((lo = 0), (hi = 1));
  if (hi <= lo) hi = lo + 1;
  const B = o.bins ?? 24;
  const counts = o.series.map((s) => {
    const c = new Array<number>(B).fill(0);
    for (const v of s.values) if (Number.isFinite(v)) { const b = Math.min(B - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * B))); c[b] = (c[b] as number) + 1; }
    return c;
  });
  const totals = Array.from({ length: B }, (_, b) => counts.reduce((s, c) => s + (c[b] as number), 0));
  const max = Math.max(1, ...totals);
  const x = (v: number) => m.l + ((W - m.l - m.r) * (v - lo)) / (hi - lo);
  const y = (v: number) => m.t + (H - m.t - m.b) * (1 - v / max);
  const bw = (W - m.l - m.r) / B;
  const parts: string[] = [];
  for (let b = 0; b < B; b++) {
    let acc = 0;
    counts.forEach((c, si) => {
      const v = c[b] as number;
      if (!v) return;
      parts.push(`<rect class="bar" x="${(m.l + b * bw).toFixed(1)}" y="${y(acc + v).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${(y(acc) - y(acc + v)).toFixed(1)}" fill="${colour(si)}"><title>${esc(o.series[si]?.name)}: ${v} in [${fmt(lo + (b * (hi - lo)) / B)}, ${fmt(lo + ((b + 1) * (hi - lo)) / B)})</title></rect>`);
      acc += v;
    });
  }
  for (const t of o.thresholds ?? []) {
    const tx = x(t.value).toFixed(1);
    parts.push(`<line class="threshold" x1="${tx}" x2="${tx}" y1="${m.t - 4}" y2="${H - m.b}" stroke="#c00" stroke-width="2" stroke-dasharray="5 3"/><text x="${tx}" y="${m.t - 6}" font-size="10" fill="#c00" text-anchor="middle">${esc(t.label)}</text>`);
  }
  for (let t = 0; t <= 4; t++) {
    const v = lo + ((hi - lo) * t) / 4;
    parts.push(`<text x="${x(v).toFixed(1)}" y="${H - m.b + 14}" font-size="10" text-anchor="middle">${fmt(v)}</text>`);
  }
  parts.push(`<text x="${m.l - 4}" y="${m.t + 8}" font-size="10" text-anchor="end">${max}</text>`);
  const legend = o.series.map((s, si) => `<rect x="${m.l + si * 110}" y="${H - 20}" width="10" height="10" fill="${colour(si)}"/><text x="${m.l + si * 110 + 14}" y="${H - 11}" font-size="11">${esc(s.name)}</text>`).join('');
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}"><text x="${m.l}" y="14" font-size="12" font-weight="bold">${esc(o.title)}</text><line x1="${m.l}" x2="${W - m.r}" y1="${y(0)}" y2="${y(0)}" stroke="#333"/>${parts.join('')}${legend}</svg>`;
}
