/**
 * The report's chart math (issue 22): round tick values, whole bins for
 * counts, labels inside the chart, outlines that survive a thumbnail. Every
 * expected value below is worked out by hand in the comment beside it.
 */
import { describe, expect, it } from 'vitest';

import { maskOutline } from '../ts/report/report.js';
import { groupedBars, histogram, histogramBins, niceTicks, placeLabel, tickLabel } from '../ts/report/svg.js';

/** The text of every tick label of an SVG, in order. */
const ticks = (svg: string) => [...svg.matchAll(/<text class="tick"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);

describe('niceTicks', () => {
  it('steps of 1, 2 or 5 x 10^k covering the data', () => {
    // 82 / 4 = 20.5 = 2.05 x 10: 2.05 is nearer 2 than 5 (sqrt(2) <= 2.05 < sqrt(10)), step 20; 82 rounds up to 100.
    expect(niceTicks(0, 82, 4)).toEqual({ ticks: [0, 20, 40, 60, 80, 100], step: 20, min: 0, max: 100 });
    // 123 / 4 = 30.75 (the old labels were 30.75, 61.5, ...): 3.075 < sqrt(10), step 20; 123 rounds up to 140.
    expect(niceTicks(0, 123, 4).ticks).toEqual([0, 20, 40, 60, 80, 100, 120, 140]);
    // 0.74 / 4 = 0.185 = 1.85 x 0.1: step 0.2; 0.13 rounds down to 0, 0.87 up to 1.
    expect(niceTicks(0.13, 0.87, 4).ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.13, 0.87, 4).ticks.map((v) => tickLabel(v, 0.2))).toEqual(['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']);
  });

  it('whole steps for counts', () => {
    // 3 / 4 = 0.75 = 7.5 x 0.1: step 1 (10 x 0.1).
    expect(niceTicks(0, 3, 4, true).ticks).toEqual([0, 1, 2, 3]);
    // 7 / 4 = 1.75: step 2; 7 rounds up to 8.
    expect(niceTicks(0, 7, 4, true).ticks).toEqual([0, 2, 4, 6, 8]);
    // 1 / 4 = 0.25 would be a step of 0.2: counts step by 1 at least.
    expect(niceTicks(0, 1, 4, true).ticks).toEqual([0, 1]);
  });
});

describe('histogramBins', () => {
  it('gives integer data whole bins with half-integer edges', () => {
    // 0..5 is 6 values: 6 bins of 1, from -0.5.
    const a = histogramBins(0, 5, 24, true);
    expect([a.start, a.width, a.count]).toEqual([-0.5, 1, 6]);
    expect([0, 1, 5].map((v) => a.index(v))).toEqual([0, 1, 5]);
    // 0..100 is 101 values in about 24 bins: ceil(101 / 24) = 5 values a bin, ceil(101 / 5) = 21 bins.
    const b = histogramBins(0, 100, 24, true);
    expect([b.start, b.width, b.count]).toEqual([-0.5, 5, 21]);
    expect([0, 4, 5, 9, 10, 100].map((v) => b.index(v))).toEqual([0, 0, 1, 1, 2, 20]);
  });

  it('gives other data a round width with edges at its multiples', () => {
    // 1 / 24 = 0.0417 = 4.17 x 0.01: width 0.05, 20 bins from 0; 1 itself goes in the last bin.
    const a = histogramBins(0, 1, 24, false);
    expect([a.start, a.width, a.count]).toEqual([0, 0.05, 20]);
    expect([0, 0.049, 0.05, 0.999, 1].map((v) => a.index(v))).toEqual([0, 0, 1, 19, 19]);
    // 0.74 / 24 = 0.0308: width 0.02; 0.13 starts the bin at 0.12; (0.87 - 0.12) / 0.02 = 37.5, so 38 bins.
    const b = histogramBins(0.13, 0.87, 24, false);
    expect([b.start, b.width, b.count]).toEqual([0.12, 0.02, 38]);
  });
});

describe('placeLabel', () => {
  it('keeps a label inside the chart', () => {
    // 'max 0.95': 8 characters x 6 px = 48 px; centred on 355 it would end at 379 > 360 - 2.
    expect(placeLabel(355, 'max 0.95', 10, 360)).toEqual({ x: 358, anchor: 'end', width: 48 });
    // 'min': 18 px; centred on 5 it would start at -4.
    expect(placeLabel(5, 'min', 10, 360)).toEqual({ x: 2, anchor: 'start', width: 18 });
    expect(placeLabel(180, 'min 0.6', 10, 360).anchor).toBe('middle');
  });
});

describe('the charts', () => {
  it('a histogram of counts has whole bins and whole, round ticks; a threshold label at the edge stays inside', () => {
    const svg = histogram({ title: 'k-NN agreement', series: [{ name: 'kept', values: [0, 1, 1, 2, 3, 3, 3] }], thresholds: [{ value: 3, label: 'min 3 of 3' }], width: 360 });
    // 0..3: 4 bins of one value each, every one non-empty: 4 bars.
    expect(svg.match(/<rect class="bar"/g)).toHaveLength(4);
    expect(svg).toContain('kept: 3 in 3<');
    // y: counts up to 3 -> 0, 1, 2, 3; x: the integers 0..3.
    expect(ticks(svg)).toEqual(['0', '1', '2', '3', '0', '1', '2', '3']);
    const label = svg.match(/<text class="threshold-label" x="([\d.]+)"[^>]*text-anchor="(\w+)"/);
    expect(label).not.toBeNull();
    const [x, anchor] = [Number(label![1]), label![2]];
    const w = 0.6 * 10 * 'min 3 of 3'.length;
    const [left, right] = anchor === 'end' ? [x - w, x] : anchor === 'start' ? [x, x + w] : [x - w / 2, x + w / 2];
    expect(left).toBeGreaterThanOrEqual(0);
    expect(right).toBeLessThanOrEqual(360);
  });

  it('a histogram of scores gets round bins and round tick labels', () => {
    const values = [0.13, 0.2, 0.35, 0.5, 0.61, 0.87];
    const svg = histogram({ title: 'similarity', series: [{ name: 'kept', values }] });
    // 6 values, 1 each: y ticks 0, 1; x from 0.12 to 0.12 + 38 x 0.02 = 0.88, ticks at multiples of 0.2 inside it.
    expect(ticks(svg)).toEqual(['0', '1', '0.2', '0.4', '0.6', '0.8']);
    expect(svg).toContain('kept: 1 in [0.12, 0.14)');
  });

  it('grouped bars get round tick values', () => {
    const svg = groupedBars({ title: 'samples', categories: ['a', 'b'], series: [{ name: 'n', values: [123, 40] }] });
    expect(ticks(svg)).toEqual(['0', '20', '40', '60', '80', '100', '120', '140']);
    const seconds = groupedBars({ title: 'seconds', categories: ['a'], series: [{ name: 's', values: [0.37] }] });
    // 0.37 / 4 = 0.0925 = 9.25 x 0.01 >= sqrt(50): step 0.1.
    expect(ticks(seconds)).toEqual(['0.0', '0.1', '0.2', '0.3', '0.4']);
  });
});

describe('maskOutline', () => {
  it('is `thickness` pixels wide, inside the mask, the image border counting as outside', () => {
    const W = 20;
    const square = new Uint8Array(W * W);
    for (let y = 5; y < 15; y++) for (let x = 5; x < 15; x++) square[y * W + x] = 1;
    const count = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);
    // A 10 x 10 square: 1 px ring = 100 - 8 x 8 = 36; 2 px ring = 100 - 6 x 6 = 64.
    expect(count(maskOutline(square, W, W, 1))).toBe(36);
    expect(count(maskOutline(square, W, W, 2))).toBe(64);
    const o = maskOutline(square, W, W, 2);
    expect(o.every((v, q) => !v || square[q] === 1)).toBe(true);
    // A mask filling a 4 x 4 image: its border pixels are the outline, 16 - 2 x 2 = 12.
    expect(count(maskOutline(new Uint8Array(16).fill(1), 4, 4, 1))).toBe(12);
  });
});
